"""Check a composed config before anything is built: a bad value names its key, the value and what is
allowed, instead of failing deep inside Lightning minutes later."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig, OmegaConf

from neuronlab.errors import NeuronlabError

_MISSING = object()


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


# key, type check, range check, what is allowed
Rule = tuple[str, Callable[[Any], bool], Callable[[Any], bool], str]
RULES: list[Rule] = [
    ("seed", lambda v: v is None or _is_int(v), lambda v: v is None or v >= 0, "an integer >= 0 or null"),
    ("optimizer.lr", _is_number, lambda v: v > 0, "a number > 0"),
    ("optimizer.weight_decay", _is_number, lambda v: v >= 0, "a number >= 0"),
    ("optimizer.momentum", _is_number, lambda v: 0 <= v < 1, "a number in [0, 1)"),
    ("model.dropout", _is_number, lambda v: 0 <= v < 1, "a number in [0, 1)"),
    ("model.input_size", _is_int, lambda v: v > 0, "an integer > 0"),
    ("model.output_size", _is_int, lambda v: v > 0, "an integer > 0"),
    ("model.hidden_size", _is_int, lambda v: v > 0, "an integer > 0"),
    (
        "model.hidden_sizes",
        lambda v: isinstance(v, list | tuple) and all(_is_int(h) for h in v),
        lambda v: len(v) > 0 and all(h > 0 for h in v),
        "a non-empty list of integers > 0, e.g. [256,128]",
    ),
    ("model.compile", lambda v: isinstance(v, bool), lambda v: True, "true or false"),
    ("data.batch_size", lambda v: v is None or _is_int(v), lambda v: v is None or v > 0, "an integer > 0"),
    (
        "data.eval_batch_size",
        lambda v: v is None or _is_int(v),
        lambda v: v is None or v > 0,
        "an integer > 0",
    ),
    ("data.val_size", _is_int, lambda v: v >= 0, "an integer >= 0"),
    ("data.repeats", _is_int, lambda v: v > 0, "an integer > 0"),
    ("data.noise", _is_number, lambda v: v >= 0, "a number >= 0"),
    ("data.num_workers", _is_int, lambda v: v >= 0, "an integer >= 0"),
    ("data.steps_per_execution", _is_int, lambda v: v > 0, "an integer > 0"),
    ("trainer.max_epochs", _is_int, lambda v: v > 0 or v == -1, "an integer > 0 (or -1: no limit)"),
    (
        "trainer.min_epochs",
        lambda v: v is None or _is_int(v),
        lambda v: v is None or v >= 0,
        "an integer >= 0",
    ),
    (
        "trainer.devices",
        lambda v: _is_int(v) or isinstance(v, str | list),
        lambda v: not _is_int(v) or v > 0 or v == -1,
        "an integer > 0, -1 (all), 'auto' or a list of device ids",
    ),
    ("trainer.num_nodes", _is_int, lambda v: v > 0, "an integer > 0"),
]


def validate(cfg: DictConfig) -> None:
    """Raise :class:`NeuronlabError` naming the first bad key, its value and what is allowed."""
    for key, type_ok, range_ok, allowed in RULES:
        value = OmegaConf.select(cfg, key, default=_MISSING)
        if value is _MISSING:
            continue
        if OmegaConf.is_config(value):
            value = OmegaConf.to_container(value, resolve=True)
        if not (type_ok(value) and range_ok(value)):
            raise NeuronlabError(f"{key}={value!r} is not allowed: expected {allowed}")
