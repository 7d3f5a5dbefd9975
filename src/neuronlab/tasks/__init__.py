"""The LightningModules: loss, metrics, steps and optimizers around a plain net (``Classifier``), and
the opt-in grouped optimizer steps beside it (``GroupedClassifier``), and those groups captured as CUDA
graphs on a GPU (``GraphClassifier``)."""

from neuronlab.tasks.classifier import Classifier, describe_factory
from neuronlab.tasks.graphs import GraphClassifier
from neuronlab.tasks.grouped import GroupedClassifier

__all__ = ["Classifier", "GraphClassifier", "GroupedClassifier", "describe_factory"]
