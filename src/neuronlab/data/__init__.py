"""LightningDataModules: the logic gates and the MNIST family, served from memory.

Imported lazily (PEP 562): ``neuronlab.data.checks`` is read before torch is imported."""

from importlib import import_module
from typing import Any

_WHERE = {
    "DATASETS": "mnist",
    "GATES": "checks",
    "DataFacts": "base",
    "FashionMNISTDataModule": "mnist",
    "GatesDataModule": "gates",
    "IDXError": "idx",
    "InMemoryDataModule": "base",
    "InMemoryLoader": "loader",
    "MNISTDataModule": "mnist",
    "read_idx": "idx",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
