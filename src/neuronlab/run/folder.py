"""A run folder's layout, in one place, and its record ``result.json`` (the one writer, the one reader).

::

    <run>/.hydra/config.yaml hydra.yaml overrides.yaml   the composed config (Hydra's record)
    <run>/checkpoints/best.ckpt last.ckpt interrupted.ckpt
    <run>/tensorboard/  csv/  mlflow_run_id               what the loggers write
    <run>/result.json  environment.json  <command>.log    the outcome, the packages, the run's log

A run folder may come from someone else: ``result.json`` is read through :mod:`neuronlab.io.read`
and its values are checked by whoever uses them.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from lightning_utilities.core.rank_zero import rank_zero_only  # Lightning's own, without importing it

from neuronlab.io.files import atomic_write_json
from neuronlab.io.read import UnreadableFile, read_json

RESULT = "result.json"
ENVIRONMENT = "environment.json"
RECORD = ".hydra"  # Hydra's record of the composed config
CHECKPOINTS = "checkpoints"
BEST, LAST, INTERRUPTED = "best.ckpt", "last.ckpt", "interrupted.ckpt"
TENSORBOARD = "tensorboard"
# what a run writes in its folder: none of it may be a symbolic link
WRITTEN = (RECORD, CHECKPOINTS, TENSORBOARD, "csv", RESULT, ENVIRONMENT, "mlflow_run_id")

if not hasattr(rank_zero_only, "rank"):  # what Lightning sets on import (it keeps a value set before it)
    _RANK_KEYS = ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")
    rank_zero_only.rank = next((int(os.environ[k]) for k in _RANK_KEYS if k in os.environ), 0)


def overrides_file(run_dir: Path) -> Path:
    return run_dir / RECORD / "overrides.yaml"


def config_file(run_dir: Path) -> Path:
    return run_dir / RECORD / "config.yaml"


def best_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint the run tested, as its ``result.json`` names it (a file of its ``checkpoints/``),
    else ``checkpoints/best.ckpt``; ``None`` if the run has neither."""
    named = (read_result_or_none(run_dir) or {}).get("best_checkpoint")
    if isinstance(named, str) and named:
        found = run_dir / CHECKPOINTS / Path(named).name  # only a name inside this run's checkpoints
        if found.is_file() and not found.is_symlink():
            return found
    best = run_dir / CHECKPOINTS / BEST
    return best if best.is_file() else None


def inside(run_dir: Path, path: Any) -> bool:
    """Whether ``path`` (e.g. a checkpoint to continue) lies inside the run folder ``run_dir``."""
    return isinstance(path, str | Path) and bool(path) and run_dir.resolve() in Path(path).resolve().parents


def read_result(run_dir: Path) -> dict[str, Any] | None:
    """The run's ``result.json``; ``None`` when it has none, :class:`~neuronlab.io.read.UnreadableFile`
    for a file there that is not a JSON object."""
    path = run_dir / RESULT
    if not path.exists() and not path.is_symlink():
        return None
    result = read_json(path)
    if not isinstance(result, dict):
        raise UnreadableFile(f"{path} cannot be read (a JSON object expected, found {type(result).__name__})")
    return result


def read_result_or_none(run_dir: Path) -> dict[str, Any] | None:
    """:func:`read_result`, with an unreadable file taken as none (where only a valid one counts)."""
    try:
        return read_result(run_dir)
    except UnreadableFile:
        return None


@rank_zero_only
def write_result(run_dir: Path, **fields: Any) -> None:
    """``result.json``: status, metrics, epochs, wall time. A full or read-only disk only warns here: the
    error that matters is the run's own, not this one."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(run_dir / RESULT, {"finished_at": time.strftime("%Y-%m-%d %H:%M:%S"), **fields})
    except OSError as err:
        print(f"warning: could not write {run_dir / RESULT}: {err.strerror}", file=sys.stderr)


def previous_wall_time(run_dir: Path) -> float:
    """The wall time an earlier part of this run recorded (0 when none or unreadable)."""
    value = (read_result_or_none(run_dir) or {}).get("wall_time")
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if number and value >= 0 else 0.0
