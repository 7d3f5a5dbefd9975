"""The DataModules' argument checks and the plain facts they need, without torch: each DataModule calls
them when it is built, and the entry points before torch is imported (an error within a second). One
home for each rule, so the two agree."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

from neuronlab.config import is_int
from neuronlab.errors import ConfigError
from neuronlab.show import shown

# a stored run (checkpoint, saved overrides) may not ask for more copies of the gates' four points, or more
# worker processes: a file from someone else must not make a run take all the memory or processes
MAX_COUNTS = {"repeats": 100_000, "num_workers": 64}

MESSAGE_LIMIT = 500  # a message naming a stored value: a line, not a flood

# the gates' truth tables: labels of the points (0,0), (0,1), (1,0), (1,1)
GATES: dict[str, list[int]] = {
    "xor": [0, 1, 1, 0],
    "and": [0, 0, 0, 1],
    "or": [0, 1, 1, 1],
    "nand": [1, 1, 1, 0],
    "nor": [1, 0, 0, 0],
}

# the names of neuronlab.data.mnist.DATASETS, torch-free (tests/test_entry_errors.py checks they match)
DATASET_NAMES = ("mnist", "fashion_mnist")
AUGMENTATIONS = ("affine",)


def _require(ok: bool, message: str) -> None:
    if not ok:  # the value may come from a checkpoint: printed escaped and capped
        raise ConfigError(shown(message, MESSAGE_LIMIT))


def _batch_size(key: str, null: str) -> Callable[[Any], None]:
    return lambda v: _require(
        v is None or (is_int(v) and v > 0), f"data.{key}={v} must be a positive integer (or null: {null})"
    )


def _choice(key: str, allowed: tuple[str | None, ...]) -> Callable[[Any], None]:
    names = ", ".join("null" if a is None else a for a in allowed)
    return lambda v: _require(v in allowed, f"data.{key}={v!r} is not known; allowed: {names}")


_CHECKS: dict[str, Callable[[Any], None]] = {
    "batch_size": _batch_size("batch_size", "all at once"),
    "eval_batch_size": _batch_size("eval_batch_size", "the training batch size"),
    "steps_per_execution": lambda v: _require(
        is_int(v) and v > 0,
        f"data.steps_per_execution={v} must be a positive integer (1: one optimizer step per Lightning step)",
    ),
    "gate": _choice("gate", tuple(GATES)),
    "repeats": lambda v: _require(is_int(v) and v > 0, f"data.repeats={v!r} must be a positive integer"),
    "noise": lambda v: _require(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v >= 0,
        f"data.noise={v!r} must be a number >= 0",
    ),
    "name": _choice("name", (None, *DATASET_NAMES)),
    "augment": _choice("augment", (None, *AUGMENTATIONS)),
    "val_size": lambda v: _require(is_int(v) and v >= 0, f"data.val_size={v!r} must be an integer >= 0"),
    "num_workers": lambda v: _require(
        is_int(v) and v >= 0, f"data.num_workers={v!r} must be an integer >= 0"
    ),
    "download": lambda v: _require(isinstance(v, bool), f"data.download={v!r} must be true or false"),
    "data_dir": lambda v: _require(
        v is None or (isinstance(v, str | os.PathLike) and bool(str(v))),
        f"data.data_dir={v!r} must be a folder",
    ),
}


def check_data_args(**values: Any) -> None:
    """Raise :class:`ConfigError` on the first bad DataModule argument among ``values`` (others: the
    signature)."""
    for key, value in values.items():
        if key in _CHECKS:
            _CHECKS[key](value)
