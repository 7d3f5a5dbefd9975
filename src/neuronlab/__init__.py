"""neuronlab: the 'from one neuron to MNIST' lesson as real, reproducible experiments.

``neuronlab.train([...])``, ``eval`` and ``predict`` are :mod:`neuronlab.api`'s functions, loaded on first
use so that ``import neuronlab`` stays light (no torch, no Hydra). The command modules share the names:
a submodule loaded before the first such call holds the name; ``neuronlab.api.train`` is always the
function.
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
