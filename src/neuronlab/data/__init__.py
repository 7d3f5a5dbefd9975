"""LightningDataModules: the logic gates and the MNIST family, served from memory."""

from neuronlab.data.base import DataFacts, InMemoryDataModule
from neuronlab.data.gates import GATES, GatesDataModule
from neuronlab.data.idx import IDXError, read_idx
from neuronlab.data.loader import InMemoryLoader
from neuronlab.data.mnist import DATASETS, FashionMNISTDataModule, MNISTDataModule

__all__ = [
    "DATASETS",
    "GATES",
    "DataFacts",
    "FashionMNISTDataModule",
    "GatesDataModule",
    "IDXError",
    "InMemoryDataModule",
    "InMemoryLoader",
    "MNISTDataModule",
    "read_idx",
]
