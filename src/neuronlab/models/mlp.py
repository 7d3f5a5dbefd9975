"""Multi-layer perceptrons of the lesson.

Every net returns raw logits (the loss is computed on logits for numerical stability); the lesson's
sigmoid/softmax is :func:`probabilities`, the one probability head (metrics, predict, export, figures).
Each net describes itself as plain values (``config()``), so a checkpoint rebuilds it without pickles.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from neuronlab.models.checks import check_net_args, check_size

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
}


def probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Logits ``(N, 1)`` -> ``(N,)`` P(class 1) by sigmoid (a single-output binary net); ``(N, C)`` ->
    ``(N, C)`` softmax. Torch only, traceable: the exported files run this same head."""
    return torch.sigmoid(logits.squeeze(-1)) if logits.shape[-1] == 1 else torch.softmax(logits, dim=-1)


class MLP(nn.Module):
    """input -> [Linear -> activation -> dropout] x len(hidden_sizes) -> Linear (logits).

    Inputs of any shape ``(N, ...)`` are flattened to ``(N, input_size)``, so images and points both work.
    """

    flatten = False  # an ``nn.Flatten`` as the first layer (part of the state_dict's layer numbering)

    def __init__(
        self,
        input_size: int,
        hidden_sizes: Sequence[int],
        output_size: int,
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        check_net_args(  # as the entry points do before torch; strict: checkpoints bring these values too
            input_size=input_size,
            hidden_sizes=hidden_sizes,
            output_size=output_size,
            activation=activation,
            dropout=dropout,
        )
        self.input_size, self.hidden_sizes, self.output_size = input_size, list(hidden_sizes), output_size
        self.activation, self.dropout = activation, float(dropout)
        layers: list[nn.Module] = [nn.Flatten()] if self.flatten else []
        width = input_size
        for hidden in self.hidden_sizes:
            layers += [nn.Linear(width, hidden), ACTIVATIONS[activation]()]
            if self.dropout > 0:
                layers.append(nn.Dropout(self.dropout))
            width = hidden
        layers.append(nn.Linear(width, output_size))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], -1)
        if x.shape[1] != self.input_size:
            raise ValueError(
                f"{type(self).__name__} expects {self.input_size} input features, got {x.shape[1]}"
            )
        return self.layers(x)

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        return probabilities(self(x))

    def config(self) -> dict[str, Any]:
        """Plain values that rebuild this net: its class (in :data:`NETS`) and constructor arguments."""
        return {
            "_target_": f"{type(self).__module__}.{type(self).__qualname__}",
            "input_size": self.input_size,
            "hidden_sizes": list(self.hidden_sizes),
            "output_size": self.output_size,
            "activation": self.activation,
            "dropout": self.dropout,
        }


class SimpleNN(MLP):
    """The lesson's XOR network: 2 inputs, 4 hidden (ReLU), 1 output (sigmoid applied outside the loss)."""

    def __init__(
        self,
        input_size: int = 2,
        hidden_size: int = 4,
        output_size: int = 1,
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        check_size("model.hidden_size", hidden_size)
        super().__init__(input_size, [hidden_size], output_size, activation, dropout)

    def config(self) -> dict[str, Any]:
        cfg = super().config()
        cfg["hidden_size"] = cfg.pop("hidden_sizes")[0]
        return cfg


class ModernNetwork(MLP):
    """The lesson's 'modern' MLP: 784-256-128-10 with ReLU and dropout, on flattened inputs."""

    def __init__(
        self,
        input_size: int = 784,
        hidden_sizes: Sequence[int] = (256, 128),
        output_size: int = 10,
        activation: str = "relu",
        dropout: float = 0.2,
    ) -> None:
        super().__init__(input_size, hidden_sizes, output_size, activation, dropout)


class MNISTClassifier(ModernNetwork):
    """The lesson's MNIST classifier: ``nn.Flatten``, then :class:`ModernNetwork` (same defaults)."""

    flatten = True


NETS: dict[str, type[MLP]] = {
    f"{cls.__module__}.{cls.__qualname__}": cls for cls in (MLP, SimpleNN, ModernNetwork, MNISTClassifier)
}
"""The allow-list of classes a stored net description (``config()``'s ``_target_``) may name."""
