"""neuronlab from Python, e.g. a notebook: ``neuronlab.train(overrides=[...])``, ``neuronlab.eval(...)``,
``neuronlab.predict(...)``.

Each call composes the same config as the command line (``conf/``, through Hydra's compose API), runs the
same code as the command, and returns what it produced. Nothing is left behind between calls: Hydra's
global state is restored, ``sys.argv`` is not touched, the warning filters come back as they were, and
the kernel's logging is not reconfigured (so there is no ``train.log``; everything else of a run folder is
written as by the command line, and ``neuronlab-train resume=<run folder>`` works on it).

``neuronlab.train`` is the module ``neuronlab/train.py`` (``python -m neuronlab.train``, DDP workers,
``torchrun -m neuronlab.train``), made callable by :func:`make_callable`: one name, no shadowing.
Multi-process training (``trainer=ddp``) needs the command line: its workers re-run a command.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import types
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass
class Run:
    """What a call returns: the final metrics, the run folder, and the best checkpoint (``train``) or
    the checkpoint tested (``eval``)."""

    metrics: dict[str, float]
    run_dir: Path
    checkpoint: Path | None


def train(overrides: Sequence[str] = ()) -> Run:
    """``neuronlab-train <overrides>``: fit, test the best checkpoint, print the summary; ``resume=<run
    folder>`` continues a run. A bad value raises :class:`~neuronlab.errors.NeuronlabError`."""
    from neuronlab import train as entry
    from neuronlab.run.paths import run_lock
    from neuronlab.run.resume import AlreadyComplete, resume_argv

    entry.check_outputs_writable(["neuronlab.train", *overrides])
    entry.check_search_mode(["neuronlab.train", *overrides])  # a search needs the command line's -m
    entry.check_moved_keys(["neuronlab.train", *overrides])
    try:
        argv = resume_argv(["neuronlab.train", *overrides])  # resume=<run>: its checked overrides
    except AlreadyComplete as done:  # nothing to train: that run's record, as it is
        print(f"neuronlab: {done}")
        chosen = [o for o in overrides if o.partition("=")[0] in ("resume", "ckpt_path")][-1]
        return _finished(Path(chosen.partition("=")[2]).expanduser().resolve())
    resumed = entry.explicit_run_dir(argv)
    # a resume locks its folder before .hydra/ is rewritten in it, as the command line does (RunLocked
    # is a NeuronlabError)
    with run_lock(resumed) if resumed else contextlib.nullcontext():
        return _train_job(entry, argv[1:])


def _train_job(entry: Any, overrides: Sequence[str]) -> Run:
    """Compose and run one training job (``entry`` is :mod:`neuronlab.train`); a stop is a
    ``KeyboardInterrupt`` that says how to resume."""
    with _job("train", overrides) as cfg:
        run_dir = Path(cfg.hydra.runtime.output_dir)
        with _stops_as_interrupts(f"stopped; resume with neuronlab.train(['resume={run_dir}'])"):
            entry.run(cfg, raise_errors=True)
    return _finished(run_dir)


def _finished(run_dir: Path) -> Run:
    """A completed run, from the ``result.json`` it wrote (its metrics; the checkpoint is found by name)."""
    result = json.loads((run_dir / "result.json").read_text())
    metrics = result.get("metrics") if isinstance(result, dict) else None
    best = run_dir / "checkpoints" / "best.ckpt"
    return Run(dict(metrics or {}), run_dir, best if best.is_file() else None)


def eval(overrides: Sequence[str] = ()) -> Run:  # the command's name
    """``neuronlab-eval <overrides>``: re-test ``ckpt_path=...``; returns its test metrics."""
    from neuronlab.eval import evaluate
    from neuronlab.io.checkpoint import resolve_checkpoint
    from neuronlab.run import report

    with _job("eval", overrides) as cfg:
        run_dir = Path(cfg.hydra.runtime.output_dir)  # a failed eval's folder says why, as the CLI's

        def record(status: str, message: str) -> None:
            report.write_result(run_dir, status=status, error=message)

        metrics = _command(lambda: evaluate(cfg), record)
        return Run(metrics, run_dir, resolve_checkpoint(cfg.ckpt_path))


def predict(overrides: Sequence[str] = ()) -> list[Any]:
    """``neuronlab-predict <overrides>``: prints the table (and writes ``output=...``); returns the rows
    (:class:`neuronlab.predict.Row`: name, prediction, top-3, notes, error)."""
    from neuronlab.predict import predict as entry

    with _job("predict", overrides) as cfg:
        return _command(lambda: entry(cfg))


@contextmanager
def _job(config_name: str, overrides: Sequence[str]) -> Iterator[Any]:
    """Compose ``conf/<config_name>.yaml`` with ``overrides`` and make it the current Hydra job, as the
    command line would (run folder, ``.hydra/``); Hydra's global state is restored afterwards."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from neuronlab.run import quiet
    from neuronlab.run.paths import CONF_DIR
    from neuronlab.run.resume import hydra_record, write_record

    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3", job_name=config_name):
        cfg = _command(lambda: compose(config_name, overrides=list(overrides), return_hydra_config=True))
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


def _command(func: Callable[[], T], record: Callable[[str, str], None] | None = None) -> T:
    """The command line's ending (:func:`neuronlab.errors.run_command`, ``record`` writing
    ``result.json``) in a notebook: a user error raises :class:`~neuronlab.errors.NeuronlabError` with
    the command line's one-line message, and a stop is a ``KeyboardInterrupt``."""
    from neuronlab.errors import run_command

    with _stops_as_interrupts("stopped"):
        return run_command(func, record, on_interrupt=lambda signal: None, raise_errors=True)


@contextmanager
def _stops_as_interrupts(message: str) -> Iterator[None]:
    """Ctrl-C / SIGTERM end a command with exit code 130/143; in a kernel they are what they are, a
    ``KeyboardInterrupt`` (saying how to go on)."""
    try:
        yield
    except SystemExit as stop:
        raise KeyboardInterrupt(message) from stop


_COMMANDS = {"neuronlab.train": train, "neuronlab.eval": eval, "neuronlab.predict": predict}


class _CallableModule(types.ModuleType):
    """An entry module that is also its notebook function: ``neuronlab.train([...])``."""

    def __call__(self, overrides: Sequence[str] = ()) -> Any:
        return _COMMANDS[self.__name__](overrides)


def make_callable(module_name: str) -> None:
    """Let the entry module ``module_name`` be called like its function in this module. (The module
    itself stays what ``python -m`` and the console scripts run.)"""
    if module_name in _COMMANDS:
        sys.modules[module_name].__class__ = _CallableModule
