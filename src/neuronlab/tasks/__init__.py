"""The LightningModule(s): loss, metrics, steps and optimizers around a plain net."""

from neuronlab.tasks.classifier import Classifier, describe_factory

__all__ = ["Classifier", "describe_factory"]
