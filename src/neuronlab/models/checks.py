"""The nets' argument checks, without torch: ``MLP`` calls them when it is built, and the entry points
before torch is imported (an error within a second). One home for each rule, so the two agree."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from neuronlab.config import is_int
from neuronlab.errors import ConfigError

# the names mlp.ACTIVATIONS maps to torch modules (tests/test_train.py checks that they are the same)
ACTIVATIONS = ("relu", "sigmoid", "tanh", "gelu", "leaky_relu")
MAX_WIDTH = 1 << 16  # a layer wider than this is a typo (or a hostile checkpoint), not an MLP
MAX_LAYERS = 64


def check_size(name: str, value: Any) -> None:
    """An integer in ``1..MAX_WIDTH`` (strict types: these values also come back from checkpoints)."""
    if not (is_int(value) and 0 < value <= MAX_WIDTH):
        raise ConfigError(f"{name}={value!r} must be an integer > 0 (at most {MAX_WIDTH})")


def check_hidden_sizes(value: Any) -> None:
    """A non-empty list of at most ``MAX_LAYERS`` layer widths."""
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise ConfigError(f"model.hidden_sizes={value!r} must be a list of integers > 0, e.g. [256,128]")
    if not 0 < len(value) <= MAX_LAYERS:
        raise ConfigError(
            f"model.hidden_sizes={list(value)} must be a non-empty list of at most {MAX_LAYERS} sizes"
        )
    for h in value:
        if not (is_int(h) and 0 < h <= MAX_WIDTH):
            raise ConfigError(
                f"model.hidden_sizes={list(value)} must hold integers > 0 (and <= {MAX_WIDTH}): "
                f"model.hidden_sizes={h!r} is not"
            )


def check_activation(value: Any) -> None:
    if not isinstance(value, str) or value not in ACTIVATIONS:
        raise ConfigError(f"model.activation={value!r} is not known; allowed: {', '.join(ACTIVATIONS)}")


def check_dropout(value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value < 1.0:  # nan fails
        raise ConfigError(f"model.dropout={value!r} must be a number in [0, 1)")


_CHECKS: dict[str, Callable[[Any], None]] = {
    "input_size": lambda v: check_size("model.input_size", v),
    "output_size": lambda v: check_size("model.output_size", v),
    "hidden_size": lambda v: check_size("model.hidden_size", v),
    "hidden_sizes": check_hidden_sizes,
    "activation": check_activation,
    "dropout": check_dropout,
}


def check_net_args(**values: Any) -> None:
    """Raise :class:`ConfigError` on the first bad net argument among ``values`` (others: the signature)."""
    for key, value in values.items():
        if key in _CHECKS:
            _CHECKS[key](value)
