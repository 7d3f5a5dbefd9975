"""``neuronlab-train``: compose the config -> build the parts -> fit -> test the best checkpoint -> report.

Everything a run does is decided by ``conf/``; this file holds no training logic of its own.
``resume=<run folder>`` (or ``ckpt_path=<run folder>``) continues a run in its own folder, with its own
config: it is turned into that run's overrides before Hydra starts.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from neuronlab import api
from neuronlab.run.paths import CONF_DIR

log = logging.getLogger(__name__)


def train(cfg: DictConfig, clock: Any = None, accepted: Any = None) -> dict[str, float]:
    """Fit and test one configuration; returns the final metrics (``train/*``, ``val/*``, ``test/*``).

    ``clock`` (a :class:`~neuronlab.run.callbacks.WallClock`) keeps the run's wall time in its checkpoints.
    ``accepted()`` is called once ``ckpt_path`` has passed its checks, before anything is written."""
    from neuronlab.run.validate import validate

    validate(cfg)  # before Lightning and torch are imported: a bad value is reported within a second

    import lightning.pytorch as L
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import instantiate

    from neuronlab.errors import CheckpointError
    from neuronlab.io.checkpoint import (
        check_same_architecture,
        check_same_training,
        epochs_done,
        load_checkpoint,
        resolve_checkpoint,
    )
    from neuronlab.run import ddp, report
    from neuronlab.run.build import build_list, build_trainer
    from neuronlab.run.callbacks import ValidateLastEpoch
    from neuronlab.sweeps.pruning import OptunaPruning, trial_callback

    trainer_cfg = cfg.trainer
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    ddp.install("neuronlab.train")
    seeded = cfg.get("seed") is not None
    if seeded:  # said only once a checkpoint is accepted: a refused resume prints its error line alone
        L.seed_everything(cfg.seed, workers=True, verbose=not cfg.get("ckpt_path"))

    datamodule = instantiate(cfg.data)
    task = instantiate(cfg.task)  # the net, optimizer and scheduler inside (conf/task/)
    ckpt_path = checkpoint = None
    if cfg.get("ckpt_path"):
        ckpt_path = resolve_checkpoint(cfg.ckpt_path)
        checkpoint = load_checkpoint(ckpt_path)  # a clear error for a missing or damaged file
        check_same_architecture(checkpoint, task.net.config(), ckpt_path)
        check_same_training(checkpoint, task, ckpt_path)
        done = epochs_done(checkpoint)
        if 0 < trainer_cfg.max_epochs <= done:  # Lightning would return at once and test a stale model
            raise CheckpointError(
                f"ckpt_path={ckpt_path} has already trained {done} epochs and this run stops at "
                f"trainer.max_epochs={trainer_cfg.max_epochs}: pass a higher trainer.max_epochs to train on"
            )
    if accepted is not None:  # a refused resume has written nothing in its folder up to here
        accepted()
    if seeded and cfg.get("ckpt_path"):
        logging.getLogger("lightning.fabric.utilities.seed").info(f"Seed set to {cfg.seed}")
    report.write_environment(run_dir)
    loggers = build_list(cfg.get("logger"))
    report.log_params(loggers, report.hparams_of(cfg, dict(hydra_cfg.runtime.choices)))
    for logger in loggers if checkpoint is not None else []:
        if hasattr(logger, "resume_at"):
            logger.resume_at(int(checkpoint.get("global_step", 0)))
    callbacks = [
        *build_list(cfg.get("callbacks")),
        ValidateLastEpoch(),
        *([clock] if clock is not None else []),
    ]
    pruning = trial_callback(cfg)  # an Optuna trial: report each validation, stop when pruned
    if pruning:
        callbacks.append(pruning)
    trainer: L.Trainer = build_trainer(cfg.trainer, callbacks=callbacks, logger=loggers)
    report.run_logger.info(f"run folder {run_dir}" + (f", from {ckpt_path}" if ckpt_path else ""))

    trainer.fit(task, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    metrics = _scalars(trainer.callback_metrics)
    if cfg.get("test", True) and OptunaPruning.pruned_epoch is None:
        trainer.test(task, datamodule=datamodule, ckpt_path=best or None, verbose=False, weights_only=True)
        metrics.update(_scalars(trainer.callback_metrics))
    report.log_hparams(loggers, report.hparams_of(cfg, dict(hydra_cfg.runtime.choices)), metrics)
    report.finish(run_dir, best, metrics, loggers)
    metrics["epochs"] = float(trainer.current_epoch)
    return metrics


def _scalars(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items()}


def run(cfg: DictConfig, raise_errors: bool = False) -> float | None:
    """Train, record the outcome in ``result.json`` either way, and return ``optimized_metric``.

    One writer per run folder: the run holds its folder's lock (see :func:`neuronlab.run.paths.run_lock`);
    a second process refused the lock leaves the folder as it is. A bad input ends the process with its
    message (exit code 2), or, in a sweep or with ``raise_errors`` (the notebook API), raises it as a
    :class:`NeuronlabError`."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from neuronlab.errors import run_command
    from neuronlab.run import report
    from neuronlab.run.paths import is_main_process, run_lock
    from neuronlab.sweeps.devices import job_devices

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN

    def locked_run() -> float | None:
        with (
            run_lock(run_dir) if is_main_process() else contextlib.nullcontext(),
            report.run_log(),
            job_devices(cfg),
        ):
            return _run(cfg, run_dir, multirun, raise_errors=multirun or raise_errors)

    # no record here: a run refused its folder's lock (RunLocked) leaves that folder as it is
    return run_command(locked_run, raise_errors=multirun or raise_errors)


def _run(cfg: DictConfig, run_dir: Path, multirun: bool, raise_errors: bool) -> float | None:
    from hydra.core.hydra_config import HydraConfig

    from neuronlab.errors import run_command, signal_of
    from neuronlab.run import ddp, report
    from neuronlab.run.paths import is_main_process
    from neuronlab.run.resume import RECORD, hydra_record, write_record
    from neuronlab.run.validate import validate
    from neuronlab.sweeps.resume import JobStart, start_job

    # as typed: an override holding a bad ``${...}`` is reported by validate(), not by reading it here
    overrides = [str(o) for o in OmegaConf.to_container(HydraConfig.get().overrides.task, resolve=False)]
    earlier = report.previous_wall_time(run_dir)  # read before a sweep job marks its folder running
    job = start_job(cfg, run_dir, overrides) if multirun else JobStart()  # skip completed, resume killed
    if job.skipped is not None:
        return _optimized(cfg, job.skipped)
    ckpt = cfg.get("ckpt_path")  # resuming in this folder: the wall time goes on from the earlier parts
    resuming = isinstance(ckpt, str) and bool(ckpt) and run_dir.resolve() in Path(ckpt).resolve().parents
    before = earlier if resuming else 0.0
    # a resume (Hydra wrote no .hydra/) records its config once its checkpoint is accepted; a refused
    # one leaves its folder as it was: no record rewritten, no failed result.json over the earlier one
    # (a sweep job resumed by start_job has its record from Hydra, and records its failures as before)
    hydra_files = hydra_record(cfg) if resuming and HydraConfig.get().output_subdir is None else None
    accepted = hydra_files is None

    def accept() -> None:
        nonlocal accepted
        if hydra_files is not None and is_main_process():
            write_record(run_dir / RECORD, hydra_files)
        accepted = True

    start = time.time()
    clock = None  # a WallClock, made once the config is known good (it imports Lightning)

    def wall_time() -> float:
        return clock.total() if clock is not None else before + time.time() - start

    def fit() -> dict[str, float]:
        nonlocal clock
        with ddp.job_scope():
            validate(cfg)  # before Lightning and torch are imported: a bad value is reported within a second
            from neuronlab.run.callbacks import GracefulInterrupt, WallClock

            GracefulInterrupt.interrupted = None
            clock = WallClock(before=before, resuming=resuming)
            clock.start = start
            from neuronlab.sweeps.pruning import OptunaPruning

            OptunaPruning.pruned_epoch = None
            return train(cfg, clock, accept)

    def record(status: str, message: str) -> None:
        if not accepted:
            report.run_logger.error(f"{status} before resuming, nothing changed: {message}")
            return
        report.write_result(run_dir, status=status, error=message, wall_time=wall_time(), overrides=overrides)
        if status == "interrupted":
            report.run_logger.info(f"interrupted by {message}")
        else:
            report.run_logger.error(f"failed: {message}")

    def interrupted(err: BaseException) -> str | None:
        # not imported (a fast start): not stopped inside Lightning
        callbacks = sys.modules.get("neuronlab.run.callbacks")
        return (callbacks and callbacks.GracefulInterrupt.interrupted) or signal_of(err)

    metrics = run_command(
        fit,
        record,
        interrupted,
        on_interrupt=lambda signal_name: report.print_interrupted(run_dir, signal_name),
        raise_errors=raise_errors,
    )
    from neuronlab.sweeps.pruning import OptunaPruning  # imported by train() already

    pruned = OptunaPruning.pruned_epoch
    report.write_result(
        run_dir,
        status="completed" if pruned is None else "pruned",
        metrics=metrics,
        wall_time=clock.total(),
        best_checkpoint=_best_checkpoint(run_dir),
        overrides=overrides,
        **({} if pruned is None else {"pruned_epoch": pruned}),
        **({} if job.resumed_epoch is None else {"resumed_after_epochs": job.resumed_epoch}),
    )
    outcome = "completed" if pruned is None else f"pruned at epoch {pruned}"
    report.run_logger.info(f"{outcome}: {json.dumps(metrics)}")
    return _optimized(cfg, metrics)


def _optimized(cfg: DictConfig, metrics: dict[str, float]) -> float | None:
    """The value a sweeper optimises: ``metrics[optimized_metric]``."""
    from neuronlab.errors import ConfigError

    metric = cfg.get("optimized_metric")
    if metric:
        if metric not in metrics:  # validate() checks the name before training; this is a last guard
            raise ConfigError(
                f"optimized_metric={metric!r} was not logged; logged: {', '.join(sorted(metrics))}"
            )
        return metrics[metric]
    return None


def _best_checkpoint(run_dir: Path) -> str:
    best = run_dir / "checkpoints" / "best.ckpt"
    return str(best) if best.is_file() else ""


def check_outputs_writable(argv: list[str]) -> None:
    """Fail before anything starts if the outputs root cannot be written (read-only, full, not a folder)."""
    from neuronlab.errors import NeuronlabError

    root = os.environ.get("NEURONLAB_OUTPUT_ROOT", "outputs")
    for arg in argv[1:]:
        if arg.startswith("paths.root_dir="):
            root = arg.partition("=")[2]
    probe = Path(root) / f".neuronlab-write-test-{os.getpid()}"
    try:
        Path(root).mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"x" * 4096)
    except OSError as err:
        reason = "a file, not a folder" if Path(root).is_file() else err.strerror
        raise NeuronlabError(
            f"cannot write to the outputs folder {Path(root).resolve()} ({reason}): free some space, "
            "fix its permissions, or choose another one with paths.root_dir=... or NEURONLAB_OUTPUT_ROOT"
        ) from None
    finally:
        with contextlib.suppress(OSError):  # nothing to remove when the write failed
            probe.unlink(missing_ok=True)


def check_search_mode(argv: list[str]) -> None:
    """``hparams_search=...`` is a search over many runs: without ``-m`` Hydra would run one plain job."""
    from neuronlab.errors import ConfigError

    args = argv[1:]
    if {"-m", "--multirun"} & set(args) or "hydra.mode=MULTIRUN" in args:
        return
    for arg in args:
        key, _, value = arg.partition("=")
        if key.lstrip("+~") == "hparams_search" and value not in ("", "null"):
            raise ConfigError(f"{arg} is a search over many runs and needs -m: neuronlab-train -m {arg} ...")


def check_moved_keys(argv: list[str]) -> None:
    """``model.compile=true`` is ``task.compile=true`` now (the task compiles its net): say so, instead of
    Hydra's "Key 'compile' is not in struct" (a saved run folder's overrides are renamed by resume)."""
    from neuronlab.errors import ConfigError
    from neuronlab.run.resume import RENAMED

    for arg in argv[1:]:
        key, sep, value = arg.partition("=")
        moved = RENAMED.get(key.lstrip("+~"))
        if sep and moved:
            raise ConfigError(f"{key.lstrip('+~')} is now {moved}: pass {moved}={value}")


def explicit_run_dir(argv: list[str]) -> Path | None:
    """The run folder named on the command line (``hydra.run.dir=...``, as a resume passes it), if any."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if {"-m", "--multirun"} & set(argv[1:]):
        return None
    for arg in reversed(argv[1:]):
        if arg.startswith("hydra.run.dir="):
            try:
                value = str(OverridesParser.create().parse_override(arg).value())
            except Exception:  # Hydra reports a malformed override itself
                return None
            return None if "${" in value else Path(value).expanduser()  # interpolated: run() locks it
    return None


# Hydra's flags that only show something (help, tab completion, the config) and run nothing
SHOW_ONLY = {"-h", "--help", "--hydra-help", "-sc", "--shell-completion", "-c", "--cfg", "-i", "--info"}


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def _hydra_main(cfg: DictConfig) -> float | None:
    return run(cfg)


def main() -> None:
    """Entry point of ``neuronlab-train`` and ``python -m neuronlab.train`` (Hydra's own errors, e.g. an
    unknown option, end as one ``error:`` line and exit 2 too)."""
    from neuronlab.errors import run_hydra_command
    from neuronlab.run import lean_imports, quiet
    from neuronlab.run.paths import is_main_process, run_lock
    from neuronlab.run.resume import AlreadyComplete, resume_argv

    def start() -> None:
        check_moved_keys(sys.argv)
        if not SHOW_ONLY & set(sys.argv[1:]):  # --help, completion, --cfg: nothing is written
            check_outputs_writable(sys.argv)
            check_search_mode(sys.argv)
        try:
            sys.argv = resume_argv(sys.argv)
        except AlreadyComplete as done:
            print(f"neuronlab: {done}")
            return
        run_dir = explicit_run_dir(sys.argv)
        # a resume locks its folder before Hydra writes anything in it (DDP workers share their parent's)
        with run_lock(run_dir) if run_dir and is_main_process() else contextlib.nullcontext():
            _hydra_main()

    quiet.install()
    lean_imports.install()  # Lightning starts without torchmetrics' optional imports
    run_hydra_command(start)


# neuronlab.train(overrides=[...]) from a notebook: this module is also that function (see neuronlab.api)
api.make_callable(__name__)

if __name__ == "__main__":
    main()
