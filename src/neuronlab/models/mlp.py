"""Multi-layer perceptrons of the lesson.

Every net returns raw logits (the loss is computed on logits for numerical stability); the sigmoid/softmax
the lesson shows is applied where probabilities are wanted (``predict_proba``). Each net can describe
itself as plain values (``config()``) so a checkpoint can rebuild it without pickling any object.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
}


def _activation(name: str) -> nn.Module:
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(
            f"model.activation={name!r} is not known; allowed: {', '.join(ACTIVATIONS)}"
        ) from None


class MLP(nn.Module):
    """input -> [Linear -> activation -> dropout] x len(hidden_sizes) -> Linear (logits).

    Inputs of any shape ``(N, ...)`` are flattened to ``(N, input_size)``, so images and points both work.
    """

    def __init__(
        self,
        input_size: int,
        hidden_sizes: Sequence[int],
        output_size: int,
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        hidden_sizes = [int(h) for h in hidden_sizes]
        for name, value in (("input_size", input_size), ("output_size", output_size)):
            if int(value) <= 0:
                raise ValueError(f"model.{name}={value} must be a positive integer")
        if any(h <= 0 for h in hidden_sizes):
            raise ValueError(f"model hidden sizes {hidden_sizes} must all be positive integers")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"model.dropout={dropout} must be in [0, 1)")
        self.input_size = int(input_size)
        self.hidden_sizes = hidden_sizes
        self.output_size = int(output_size)
        self.activation = activation
        self.dropout = float(dropout)
        layers: list[nn.Module] = []
        width = self.input_size
        for hidden in hidden_sizes:
            layers += [nn.Linear(width, hidden), _activation(activation)]
            if self.dropout > 0:
                layers.append(nn.Dropout(self.dropout))
            width = hidden
        layers.append(nn.Linear(width, self.output_size))
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
        """Probabilities: sigmoid for a single-logit (binary) net, softmax otherwise."""
        logits = self(x)
        return torch.sigmoid(logits) if self.output_size == 1 else torch.softmax(logits, dim=-1)

    def config(self) -> dict[str, Any]:
        """Plain values that rebuild this net with :func:`build_net` (safe in a checkpoint)."""
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
    """The lesson's MNIST classifier: ``nn.Flatten`` then the same MLP as :class:`ModernNetwork`
    (same constructor, same defaults)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.layers.insert(0, nn.Flatten())


def build_net(config: dict[str, Any]) -> MLP:
    """Rebuild a net from :meth:`MLP.config` values; only classes of ``neuronlab.models`` are accepted."""
    config = dict(config)
    target = str(config.pop("_target_", ""))
    module_name, _, class_name = target.rpartition(".")
    if not module_name.startswith("neuronlab.models"):
        raise ValueError(f"not a neuronlab network: {target!r}")
    cls = getattr(importlib.import_module(module_name), class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, MLP)):
        raise ValueError(f"not a neuronlab network: {target!r}")
    return cls(**config)
