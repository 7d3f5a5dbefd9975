"""LightningDataModules: the logic gates and the MNIST family, served from memory."""

from neuronlab.data.gates import GATES, GatesDataModule
from neuronlab.data.idx import IDXError, read_idx
from neuronlab.data.loader import InMemoryLoader
from neuronlab.data.mnist import DATASETS, MNISTDataModule

__all__ = [
    "DATASETS",
    "GATES",
    "GatesDataModule",
    "IDXError",
    "InMemoryLoader",
    "MNISTDataModule",
    "read_idx",
]
