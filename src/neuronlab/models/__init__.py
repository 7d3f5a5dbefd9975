"""The lesson's networks as plain ``torch.nn.Module``s: no Lightning, no Hydra, usable from a notebook.

Imported lazily (PEP 562): ``neuronlab.models.checks`` is read before torch is imported."""

from importlib import import_module
from typing import Any

__all__ = ["ACTIVATIONS", "MLP", "NETS", "MNISTClassifier", "ModernNetwork", "SimpleNN", "probabilities"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.mlp"), name)
