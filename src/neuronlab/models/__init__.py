"""The lesson's networks as plain ``torch.nn.Module``s: no Lightning, no Hydra, usable from a notebook."""

from neuronlab.models.mlp import (
    ACTIVATIONS,
    MLP,
    NETS,
    MNISTClassifier,
    ModernNetwork,
    SimpleNN,
    build_net,
    probabilities,
)

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "NETS",
    "MNISTClassifier",
    "ModernNetwork",
    "SimpleNN",
    "build_net",
    "probabilities",
]
