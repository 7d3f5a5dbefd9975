"""neuronlab: the 'from one neuron to MNIST' lesson as real, reproducible experiments.

Kept import-light on purpose (no torch here) so the NumPy-only ``neuronlab.scratch`` stays fast to import.
"""

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """``neuronlab.train`` / ``eval`` / ``predict``: the entry modules, callable from a notebook
    (``neuronlab.train(overrides=["experiment=mnist"])``, see :mod:`neuronlab.api`); imported on first use."""
    if name in ("train", "eval", "predict"):
        import importlib

        return importlib.import_module(f"neuronlab.{name}")
    raise AttributeError(f"module 'neuronlab' has no attribute {name!r}")
