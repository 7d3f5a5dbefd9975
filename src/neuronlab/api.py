"""neuronlab from a notebook: ``neuronlab.train([...])``, ``neuronlab.eval(...)``, ``neuronlab.predict(...)``.

Each call composes the command line's config (Hydra's compose API), runs the command's code after the
same pre-flight, and returns what it produced. Nothing is left behind: Hydra's state, ``sys.argv``, the
warning filters and the kernel's logging stay as they were (so no ``train.log``; the rest of the run
folder is the command line's). ``trainer=ddp`` needs the command line: its workers re-run a command.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

from neuronlab.config import CONF_DIR
from neuronlab.errors import ConfigError, run_command

# neuronlab.eval, .predict, .train: loaded before the package gives their names to these functions
from neuronlab.eval import run as run_eval
from neuronlab.predict import predict as predict_command
from neuronlab.run import quiet
from neuronlab.run.folder import best_checkpoint, read_result
from neuronlab.run.preflight import prepare, quote_paths
from neuronlab.run.resume import AlreadyComplete, hydra_record, write_record
from neuronlab.train import run as run_train

T = TypeVar("T")


@dataclass
class Run:
    """What a call returns: the final metrics, the run folder, the checkpoint tested (``train``: the best)."""

    metrics: dict[str, float]
    run_dir: Path
    checkpoint: Path | None


def train(overrides: Sequence[str] = ()) -> Run:
    """``neuronlab-train <overrides>`` (``resume=<run folder>`` continues a run). A bad value raises
    :class:`~neuronlab.errors.NeuronlabError`; a stop is a ``KeyboardInterrupt`` saying how to resume."""
    try:
        argv = prepare(["neuronlab.train", *_checked(overrides)])  # the command line's; resume=<run>: its own
    except AlreadyComplete as done:  # nothing to train: that run's record, as it is
        print(f"neuronlab: {done}")
        return _finished(done.run_dir)
    with _job("train", argv[1:]) as cfg:
        run_dir = Path(cfg.hydra.runtime.output_dir)
        with _stops_as_interrupts(f"stopped; resume with neuronlab.train([{f'resume={run_dir}'!r}])"):
            run_train(cfg, raise_errors=True)
    return _finished(run_dir)


def _finished(run_dir: Path) -> Run:
    """A completed run, from the ``result.json`` it wrote (its metrics) and its best checkpoint."""
    metrics = (read_result(run_dir) or {}).get("metrics")
    return Run(dict(metrics) if isinstance(metrics, dict) else {}, run_dir, best_checkpoint(run_dir))


def eval(overrides: Sequence[str] = ()) -> Run:  # the command's name
    """``neuronlab-eval <overrides>``: re-test ``ckpt_path=...``; returns its test metrics."""
    from neuronlab.io.checkpoint import resolve_checkpoint

    with _job("eval", overrides) as cfg, _stops_as_interrupts("stopped"):
        metrics = run_eval(cfg, raise_errors=True)
        return Run(metrics, Path(cfg.hydra.runtime.output_dir), resolve_checkpoint(cfg.ckpt_path))


def predict(overrides: Sequence[str] = ()) -> list[Any]:
    """``neuronlab-predict <overrides>``: prints the table (and writes ``output=...``); returns the rows
    (:class:`neuronlab.predict.Row`: name, prediction, top-3, notes, error)."""
    with _job("predict", overrides) as cfg:
        return _command(lambda: predict_command(cfg))


@contextmanager
def _job(config_name: str, overrides: Sequence[str]) -> Iterator[Any]:
    """Compose ``conf/<config_name>.yaml`` and make it the current Hydra job, as the command line would
    (run folder, ``.hydra/``); Hydra's global state is restored afterwards."""
    overrides = quote_paths([config_name, *_checked(overrides)])[1:]  # ckpt_path=<a sweep job's folder>
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3", job_name=config_name):
        cfg = _command(lambda: compose(config_name, overrides=overrides, return_hydra_config=True))
    saved = HydraConfig.instance().cfg
    try:
        with open_dict(cfg):
            run_dir = Path(cfg.hydra.run.dir).expanduser().resolve()
            cfg.hydra.runtime.output_dir = str(run_dir)
            cfg.hydra.runtime.cwd = os.getcwd()
            cfg.hydra.job.config_name = config_name
        HydraConfig.instance().set_config(cfg)
        if cfg.hydra.output_subdir is not None:  # the command line's record (a resume: once accepted)
            write_record(run_dir / cfg.hydra.output_subdir, hydra_record(cfg))
        with quiet.scope():
            yield cfg
    finally:
        HydraConfig.instance().cfg = saved


def _checked(overrides: Sequence[str]) -> list[str]:
    """The overrides as the command line has them: a list of strings, e.g. ``["optimizer.lr=0.01"]``."""
    if isinstance(overrides, str):
        raise ConfigError(f"overrides={overrides!r} is one string: pass a list, e.g. [{overrides!r}]")
    bad = [item for item in overrides if not isinstance(item, str)]
    if bad:
        raise ConfigError(
            f"the override {bad[0]!r} ({type(bad[0]).__name__}) is not a string: pass each override as "
            "the command line has it, e.g. ['trainer.max_epochs=5']"
        )
    return list(overrides)


def _command(func: Callable[[], T]) -> T:
    """:func:`neuronlab.errors.run_command` for a notebook: a user error raises its
    :class:`~neuronlab.errors.NeuronlabError`, and a stop is a ``KeyboardInterrupt``."""
    with _stops_as_interrupts("stopped"):
        return run_command(func, on_interrupt=lambda signal: None, raise_errors=True)


@contextmanager
def _stops_as_interrupts(message: str) -> Iterator[None]:
    """Ctrl-C / SIGTERM end a command with exit 130/143; in a kernel, a ``KeyboardInterrupt``."""
    try:
        yield
    except SystemExit as stop:
        raise KeyboardInterrupt(message) from stop
