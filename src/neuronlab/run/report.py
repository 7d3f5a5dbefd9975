"""What a run leaves behind for people: ``environment.json``, the loggers' parameters, the run's log
and the short summary printed at the end."""

from __future__ import annotations

import logging
import os
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lightning_utilities.core.rank_zero import rank_zero_only  # Lightning's own, without importing it
from omegaconf import DictConfig, OmegaConf

from neuronlab.errors import stdout_gone
from neuronlab.io.files import atomic_write_json
from neuronlab.run.folder import CHECKPOINTS, ENVIRONMENT, INTERRUPTED, LAST, TENSORBOARD
from neuronlab.show import aligned

# the run's own lines (folder, outcome): to the run's log file only, the console has the summary already
run_logger = logging.getLogger("neuronlab.run")
run_logger.propagate = False
run_logger.setLevel(logging.INFO)
# a sweep job's device slots while it runs, e.g. "2,3" (set by neuronlab.sweeps.devices; DDP workers too)
JOB_DEVICES = "NEURONLAB_JOB_DEVICES"
# what environment.json records the versions of
PACKAGES = ("neuronlab", "torch", "torchvision", "lightning", "torchmetrics", "hydra-core", "numpy")
HPARAM_METRICS = ("val/acc_best", "val/acc", "val/loss", "test/acc", "test/loss")


@rank_zero_only
def write_environment(run_dir: Path) -> None:
    """``environment.json``: package versions and the git commit, so a run can be reproduced later."""
    import platform
    import subprocess
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=Path(__file__).parent, capture_output=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.decode().strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    devices = os.environ.get(JOB_DEVICES)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(
        run_dir / ENVIRONMENT,
        {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "packages": {name: installed(name) for name in PACKAGES},
            "git_commit": commit,
            "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")) if commit else None,
            "devices": [int(i) for i in devices.split(",")] if devices else None,
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        },
    )


def hparams_of(cfg: DictConfig, choices: dict[str, str] | None = None) -> dict[str, Any]:
    """The run's swappable parts and their knobs as flat ``key: scalar`` pairs for TensorBoard."""
    swappable = ("data", "model", "optimizer", "scheduler", "trainer", "experiment")
    flat: dict[str, Any] = {f"choice/{k}": v for k, v in (choices or {}).items() if k in swappable and v}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if not str(k).startswith("_") or k == "_target_":
                    walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, bool | int | float | str):
            flat[prefix] = value
        elif value is not None:
            flat[prefix] = str(value)

    for group in ("model", "optimizer", "scheduler", "data"):
        node = cfg.get(group)
        walk(group, OmegaConf.to_container(node, resolve=True) if node else {})
    for key in ("task.compile", "seed", "trainer.max_epochs", "trainer.precision", "trainer.devices"):
        walk(key, OmegaConf.select(cfg, key))
    flat.pop("data.data_dir", None)
    return flat


def log_params(loggers: list[Any], params: dict[str, Any]) -> None:
    """Before training, the parameters for the loggers that keep them apart from metrics (MLflow, CSV):
    a killed run has them too. TensorBoard's HPARAMS entry needs the final metrics (:func:`log_hparams`)."""
    from lightning.pytorch.loggers import TensorBoardLogger

    for logger in loggers:
        if not isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(params)


def log_hparams(loggers: list[Any], params: dict[str, Any], metrics: dict[str, float]) -> None:
    """TensorBoard's HPARAMS entry; its metric columns read the scalars of the same tags in this run."""
    from lightning.pytorch.loggers import TensorBoardLogger
    from torch.utils.tensorboard.summary import hparams

    for logger in loggers:
        if isinstance(logger, TensorBoardLogger) and rank_zero_only.rank == 0:
            writer = logger.experiment._get_file_writer()
            for summary in hparams(params, {k: metrics[k] for k in HPARAM_METRICS if k in metrics}):
                writer.add_summary(summary)
            logger.experiment.flush()


@rank_zero_only
def finish(run_dir: Path, checkpoint: str, metrics: dict[str, float], loggers: list[Any]) -> None:
    """End the run's logging (our loggers close on rank 0) and print where the run is, what it reached,
    how to look at it: plain aligned lines, no box, so a long path or command copies whole."""
    for logger in loggers:
        getattr(logger, "close", lambda: None)()
    rows = [("run folder", str(run_dir)), ("best checkpoint", checkpoint or "(none)")]
    rows += [(k, f"{metrics[k]:.4f}") for k in sorted(metrics) if k.split("/")[0] in ("train", "val", "test")]
    if (run_dir / TENSORBOARD).is_dir():
        rows.append(("tensorboard", f"tensorboard --logdir {shlex.quote(str(run_dir / TENSORBOARD))}"))
    views = [logger.ui_command() for logger in loggers if hasattr(logger, "ui_command")]
    rows += [(view.split()[0], view) for view in views]
    try:
        print(aligned("neuronlab run", rows), flush=True)
    except BrokenPipeError:  # ``neuronlab-train ... | head -1``: the run is done all the same
        stdout_gone()


@rank_zero_only
def print_interrupted(run_dir: Path, signal_name: str) -> None:
    """What was kept and the one command that continues the run."""
    checkpoints = run_dir / CHECKPOINTS
    kept = [p.name for p in (checkpoints / LAST, checkpoints / INTERRUPTED) if p.is_file()]
    print(
        f"\nneuronlab: stopped by {signal_name}. Kept in {checkpoints}: {', '.join(kept) or 'nothing yet'}.\n"
        f"Resume with: neuronlab-train {shlex.quote(f'resume={run_dir}')}",
        file=sys.stderr,
    )


@contextmanager
def run_log() -> Iterator[None]:
    """Copy Lightning's messages and the run's own lines into the run's log file (Hydra's ``<job>.log``):
    imported before Hydra configures logging, Lightning's loggers do not propagate to it."""
    files = [h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric", "neuronlab.run")]
    added = [(lg, h) for lg in loggers if not lg.propagate for h in files if h not in lg.handlers]
    for lg, h in added:
        lg.addHandler(h)
    try:
        yield
    finally:
        for lg, h in added:
            lg.removeHandler(h)
