"""neuronlab: the 'from one neuron to MNIST' lesson as real, reproducible experiments.

``neuronlab.train([...])``, ``neuronlab.eval([...])`` and ``neuronlab.predict([...])`` are the notebook
functions of :mod:`neuronlab.api`, loaded on first use: ``import neuronlab`` stays light (no torch, no
Hydra), so the NumPy-only ``neuronlab.scratch`` stays fast to import.

The command modules have the same names (``python -m neuronlab.train``). Python names a package's
attribute after a submodule when it loads that submodule, so the functions take the names once
:mod:`neuronlab.api` has loaded the three modules; a later ``import neuronlab.train`` finds its module
loaded and renames nothing. (Code that imports a command module, ``from neuronlab.train import run``,
before its first ``neuronlab.train`` finds that module under the name; ``neuronlab.api.train`` is the
function whatever was imported.)
"""

__version__ = "0.1.0"

_FUNCTIONS = ("train", "eval", "predict")


def __getattr__(name: str) -> object:
    """``neuronlab.train`` / ``eval`` / ``predict``: :mod:`neuronlab.api`'s functions, on first use."""
    if name in _FUNCTIONS:
        import importlib

        api = importlib.import_module("neuronlab.api")  # loads the command modules first
        globals().update({function: getattr(api, function) for function in _FUNCTIONS})
        return globals()[name]
    raise AttributeError(f"module 'neuronlab' has no attribute {name!r}")
