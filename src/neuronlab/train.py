"""``neuronlab-train``: compose the config -> build the parts -> fit -> test the best checkpoint -> report.

Top to bottom: :func:`train` is the run itself; :func:`run` is one Hydra job around it (the folder's lock,
a sweep job's skip or resume, ``result.json`` whatever happens); :func:`main` is the command.
``neuronlab.train([...])`` (:func:`neuronlab.api.train`) runs the same checks and :func:`run`.
Torch and Lightning are imported inside :func:`train`: ``--help`` and config errors answer without them.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from neuronlab.config import CONF_DIR
from neuronlab.errors import ConfigError, Interrupted, run_command, run_hydra_command
from neuronlab.run import ddp, quiet, report
from neuronlab.run.folder import RECORD, best_checkpoint, inside, previous_wall_time, write_result
from neuronlab.run.paths import is_main_process, run_lock
from neuronlab.run.preflight import prepare
from neuronlab.run.resume import AlreadyComplete, accept_checkpoint, hydra_record, write_record
from neuronlab.run.validate import validate
from neuronlab.sweeps.devices import job_devices
from neuronlab.sweeps.resume import JobStart, start_job


class Outcome(dict[str, float]):
    """What a fit did: its final metrics (``train/*``, ``val/*``, ``test/*``, ``epochs``), the checkpoint it
    tested (``""``: none), and the epoch (from 1) an Optuna pruner stopped it at (``None``: not pruned)."""

    def __init__(self, metrics: dict[str, float], checkpoint: str = "", pruned_epoch: int | None = None):
        super().__init__(metrics)
        self.checkpoint = checkpoint
        self.pruned_epoch = pruned_epoch


def train(
    cfg: DictConfig,
    ckpt_path: str | None = None,
    clock: Any = None,
    accepted: Callable[[], None] | None = None,
) -> Outcome:
    """Fit and test one configuration (checked by :func:`~neuronlab.run.validate.validate` first).

    ``ckpt_path`` (default ``cfg.ckpt_path``) continues a checkpoint, checked against this run before
    anything is written, then ``accepted()`` is called; ``clock`` (a ``WallClock``) keeps the wall time
    in the checkpoints. Ctrl-C or SIGTERM raise ``Interrupted`` once ``interrupted.ckpt`` is saved."""
    import lightning.pytorch as L
    from hydra.utils import instantiate

    from neuronlab.io import checkpoint as ckpt_io
    from neuronlab.run.build import build_list, build_trainer
    from neuronlab.run.callbacks import GracefulInterrupt, ValidateLastEpoch
    from neuronlab.sweeps.pruning import trial_callback

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    ddp.install("neuronlab.train")
    ckpt_path = ckpt_path or cfg.get("ckpt_path")
    if cfg.get("seed") is not None:  # said only once a checkpoint is accepted: a refused resume is one line
        L.seed_everything(cfg.seed, workers=True, verbose=not ckpt_path)

    datamodule = instantiate(cfg.data)
    task = instantiate(cfg.task)  # the net, optimizer and scheduler inside (conf/task/)
    checkpoint, test_only = None, False
    if ckpt_path:  # the same net, optimizer, scheduler and settings; epochs left (or this run's test)
        ckpt_path, checkpoint, test_only = accept_checkpoint(ckpt_path, task, cfg.trainer.max_epochs, run_dir)
    loggers = build_list(cfg.get("logger"))  # before accepted(): a logger that refuses changes nothing
    if accepted is not None:  # a refused resume has written nothing in its folder up to here
        accepted()
    if ckpt_path and cfg.get("seed") is not None:
        logging.getLogger("lightning.fabric.utilities.seed").info(f"Seed set to {cfg.seed}")
    report.write_environment(run_dir)

    hparams = report.hparams_of(cfg, dict(hydra_cfg.runtime.choices))
    report.log_params(loggers, hparams)
    for logger in loggers if checkpoint is not None else []:
        if hasattr(logger, "resume_at"):
            logger.resume_at(int(checkpoint.get("global_step", 0)))
    pruning = trial_callback(cfg)  # an Optuna trial: report each validation, stop when pruned
    callbacks = [*build_list(cfg.get("callbacks")), ValidateLastEpoch(), *filter(None, [clock, pruning])]
    trainer: L.Trainer = build_trainer(cfg.trainer, callbacks=callbacks, logger=loggers)
    report.run_logger.info(f"run folder {run_dir}" + (f", from {ckpt_path}" if ckpt_path else ""))

    interrupt = next((c for c in callbacks if isinstance(c, GracefulInterrupt)), None)
    try:
        if test_only:  # stopped during its final test: its weights and val/* again, then that test
            trainer.validate(
                task, datamodule=datamodule, ckpt_path=ckpt_path, verbose=False, weights_only=True
            )
            best = str(best_checkpoint(run_dir) or "")
        else:
            trainer.fit(task, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
            best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        pruned = pruning.pruned_epoch if pruning else None
        if cfg.get("test", True) and pruned is None:
            trainer.test(
                task, datamodule=datamodule, ckpt_path=best or None, verbose=False, weights_only=True
            )
            metrics.update({k: float(v) for k, v in trainer.callback_metrics.items()})
    except SystemExit:  # Lightning ends a fit stopped by Ctrl-C with exit(1), once the callback saved
        if interrupt is None or interrupt.stopped_by is None:
            raise
        raise Interrupted(interrupt.stopped_by) from None

    report.log_hparams(loggers, hparams, metrics)
    report.finish(run_dir, best, metrics, loggers)
    epochs = ckpt_io.epochs_done(checkpoint) if test_only else trainer.current_epoch
    return Outcome({**metrics, "epochs": float(epochs)}, best, pruned)


def run(cfg: DictConfig, raise_errors: bool = False) -> float | None:
    """One Hydra job: train, record the outcome in ``result.json`` either way, return ``optimized_metric``.

    The job holds its folder's lock (DDP workers share their parent's). A bad input ends the process with
    its message (exit 2), or in a sweep or with ``raise_errors`` (the notebook) raises a NeuronlabError."""
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    raise_errors = raise_errors or multirun  # a sweeper records the failed job and goes on

    lock = run_lock(run_dir) if is_main_process() else contextlib.nullcontext()

    def locked_job() -> float | None:
        with lock, report.run_log(), job_devices(cfg):  # job_devices: a sweep job's GPU slots
            return _job(cfg, run_dir, multirun, raise_errors)

    # no record here: a run refused its folder's lock (RunLocked) leaves that folder as it is
    return run_command(locked_job, raise_errors=raise_errors)


def _job(cfg: DictConfig, run_dir: Path, multirun: bool, raise_errors: bool) -> float | None:
    # as typed: an override holding a bad ``${...}`` is reported by validate(), not by reading it here
    overrides = [str(o) for o in OmegaConf.to_container(HydraConfig.get().overrides.task, resolve=False)]
    earlier = previous_wall_time(run_dir)  # read before a sweep job marks its folder running
    # a sweep job starts here: skip a completed one, resume a killed one from its folder
    job = start_job(run_dir, overrides, cfg.get("ckpt_path")) if multirun else JobStart()
    if job.skipped is not None:
        return _optimized(cfg, job.skipped)
    ckpt = job.ckpt_path or cfg.get("ckpt_path")  # resuming in this folder: the wall time goes on
    resuming = inside(run_dir, ckpt)
    before = earlier if resuming else 0.0
    # a resume (Hydra wrote no .hydra/) records its config once its checkpoint is accepted; a refused
    # one leaves its folder as it was: no record rewritten, no failed result.json over the earlier one
    hydra_files = hydra_record(cfg) if resuming and HydraConfig.get().output_subdir is None else None
    accepted = hydra_files is None
    start = time.time()
    clock = None  # a WallClock, made once the config is known good (it imports Lightning)

    def accept() -> None:
        nonlocal accepted
        if hydra_files is not None and is_main_process():
            write_record(run_dir / RECORD, hydra_files)
        accepted = True

    def fit() -> Outcome:
        nonlocal clock
        with ddp.job_scope():
            validate(cfg)  # before Lightning and torch are imported: a bad value is reported within a second
            from neuronlab.run.callbacks import WallClock

            clock = WallClock(before=before, resuming=resuming, start=start)
            return train(cfg, ckpt, clock, accept)

    def wall_time() -> float:
        return clock.total() if clock is not None else before + time.time() - start

    def record(status: str, message: str) -> None:
        if not accepted:
            report.run_logger.error(f"{status} before resuming, nothing changed: {message}")
            return
        write_result(run_dir, status=status, error=message, wall_time=wall_time(), overrides=overrides)
        if status == "interrupted":
            report.run_logger.info(f"interrupted by {message}")
        else:
            report.run_logger.error(f"failed: {message}")

    stopped = functools.partial(report.print_interrupted, run_dir)  # what was kept, how to resume
    outcome = run_command(fit, record, on_interrupt=stopped, raise_errors=raise_errors)
    write_result(
        run_dir,
        status="completed" if outcome.pruned_epoch is None else "pruned",
        metrics=outcome,
        wall_time=wall_time(),
        best_checkpoint=outcome.checkpoint,  # the one tested
        overrides=overrides,
        **({} if outcome.pruned_epoch is None else {"pruned_epoch": outcome.pruned_epoch}),
        **({} if job.resumed_epoch is None else {"resumed_after_epochs": job.resumed_epoch}),
    )
    done = "completed" if outcome.pruned_epoch is None else f"pruned at epoch {outcome.pruned_epoch}"
    report.run_logger.info(f"{done}: {json.dumps(outcome)}")
    return _optimized(cfg, outcome)


def _optimized(cfg: DictConfig, metrics: dict[str, float]) -> float | None:
    """The value a sweeper optimises: ``metrics[optimized_metric]``."""
    metric = cfg.get("optimized_metric")
    if metric and metric not in metrics:  # validate() checks the name before training: a last guard
        raise ConfigError(f"optimized_metric={metric!r} was not logged; logged: {', '.join(sorted(metrics))}")
    return metrics[metric] if metric else None


def main() -> None:
    """Entry point of ``neuronlab-train`` and ``python -m neuronlab.train`` (Hydra's own errors, e.g. an
    unknown option, end as one ``error:`` line and exit 2 too)."""

    def command() -> None:
        try:
            sys.argv = prepare(sys.argv)
        except AlreadyComplete as done:
            print(f"neuronlab: {done}")
            return
        hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")(run)()

    quiet.install()
    run_hydra_command(command)


if __name__ == "__main__":
    main()
