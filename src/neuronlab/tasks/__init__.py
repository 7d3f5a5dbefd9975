"""The LightningModules: loss, metrics, steps and optimizers around a plain net (``Classifier``), and
the opt-in grouped optimizer steps beside it (``GroupedClassifier``)."""

from neuronlab.tasks.classifier import Classifier, describe_factory
from neuronlab.tasks.grouped import GroupedClassifier

__all__ = ["Classifier", "GroupedClassifier", "describe_factory"]
