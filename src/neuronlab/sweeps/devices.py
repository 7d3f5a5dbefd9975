"""One sweep job per GPU: each running job of a local parallel sweep takes device slots of its own.

Each job, before it builds anything, holds ``trainer.devices`` free slots, an exclusive ``flock`` on
``<sweep dir>/.devices/<i>.lock`` each, released by the OS when the job ends or dies; it waits for free
slots, never shares. Its Trainer gets the slots' indices (``trainer.devices=[i]``), not a changed
``CUDA_VISIBLE_DEVICES``, which a reused joblib worker that has initialised CUDA silently ignores; its DDP
workers read them from ``NEURONLAB_JOB_DEVICES``. See docs/gpus.md. ``NEURONLAB_FAKE_DEVICES=0,1`` lists fake
slots for tests on a machine without GPUs (taken and recorded; the Trainer is left as configured).
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, ListConfig, open_dict

from neuronlab.errors import ConfigError, end_on_user_error
from neuronlab.io.files import open_lock_file
from neuronlab.run.report import JOB_DEVICES, run_logger

log = logging.getLogger(__name__)

FAKE_DEVICES = "NEURONLAB_FAKE_DEVICES"  # tests: slots without GPUs, the Trainer left as configured
FOLDER = ".devices"
WAIT_S = 0.5


def _ids(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def slots(cfg: DictConfig, hydra_cfg: Any) -> list[int]:
    """The device slots of a sweep: ``sweep_devices``, fake ones, or every GPU this process sees; none for
    SLURM (submitit) jobs, which get their GPUs from SLURM, and for jobs on the CPU."""
    if "submitit" in str(hydra_cfg.launcher.get("_target_", "")) or cfg.trainer.get("accelerator") == "cpu":
        return []
    chosen = cfg.get("sweep_devices")
    if chosen is not None:
        if not isinstance(chosen, ListConfig | list) or not all(isinstance(i, int) for i in chosen):
            raise ConfigError(
                f"sweep_devices={chosen} is not allowed: expected a list of GPU indices or null"
            )
        return list(chosen)
    if os.environ.get(FAKE_DEVICES):
        return _ids(os.environ[FAKE_DEVICES])
    from lightning.fabric.accelerators.cuda import num_cuda_devices  # counts without initialising CUDA

    return list(range(num_cuda_devices()))


def needed(trainer: DictConfig, available: int) -> int:
    """How many slots one job takes: ``trainer.devices`` (``-1``/``auto``: all of them)."""
    devices = trainer.get("devices", 1)
    if isinstance(devices, ListConfig | list):
        return len(devices)
    if str(devices).strip() in ("-1", "auto"):
        return available
    try:
        n = len(_ids(devices)) if isinstance(devices, str) and "," in devices else int(devices)
    except ValueError:  # not a number: validate() names the bad value next, before anything is built
        return 1
    if n > available:
        raise ConfigError(
            f"trainer.devices={devices} needs {n} device slots and the sweep has {available}: "
            "lower trainer.devices or list more GPUs in sweep_devices"
        )
    return n


@contextmanager
def take(folder: Path, pool: list[int], n: int) -> Iterator[list[int]]:
    """Hold ``n`` free slots of ``pool`` (waiting until there are); released when the block ends."""
    folder.mkdir(exist_ok=True)
    if folder.is_symlink() or not folder.is_dir():
        raise ConfigError(f"{folder} is not a folder: remove it and run the sweep again")
    while True:
        with ExitStack() as held, open_lock_file(folder / "pick.lock") as pick:
            fcntl.flock(pick, fcntl.LOCK_EX)  # one job picks at a time: no two jobs each holding half
            taken: list[int] = []
            for slot in pool:
                handle = held.enter_context(open_lock_file(folder / f"{slot}.lock"))
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue
                taken.append(slot)
                if len(taken) == n:
                    fcntl.flock(pick, fcntl.LOCK_UN)
                    yield taken
                    return
        time.sleep(WAIT_S)  # the handles are closed: the partial pick is released for the others


@contextmanager
def job_devices(cfg: DictConfig) -> Iterator[None]:
    """Run a sweep job on slots of its own (a DDP worker: on its job's); nothing for other runs."""
    from hydra.core.hydra_config import HydraConfig

    inherited = os.environ.get(JOB_DEVICES)
    if inherited and int(os.environ.get("LOCAL_RANK", "0")) > 0:  # a DDP worker Lightning started
        _use(cfg, _ids(inherited))
        yield
        return
    from hydra.types import RunMode

    hydra_cfg = HydraConfig.get()
    pool = slots(cfg, hydra_cfg) if hydra_cfg.mode == RunMode.MULTIRUN else []
    if not pool:
        yield
        return
    n = needed(cfg.trainer, len(pool))
    with take(Path(hydra_cfg.sweep.dir) / FOLDER, pool, n) as ids:
        run_logger.info(f"device slots {ids} taken")
        _use(cfg, ids)
        os.environ[JOB_DEVICES] = ",".join(map(str, ids))
        try:
            yield
        finally:
            os.environ.pop(JOB_DEVICES, None)
            run_logger.info(f"device slots {ids} released")


def _use(cfg: DictConfig, ids: list[int]) -> None:
    if not os.environ.get(FAKE_DEVICES):  # fake slots: the Trainer stays as configured
        with open_dict(cfg.trainer):
            cfg.trainer.devices = ids


class DeviceSlots(Callback):
    """Hydra callback (``conf/hydra/default.yaml``): a sweep's start line says how its jobs share the GPUs;
    a sweep whose jobs cannot get their slots ends here, in one line, before any job (Hydra would only warn
    of a callback's error, then fail every job)."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            pool = slots(config, config.hydra)
            per_job = needed(config.trainer, len(pool)) if pool else 0
        except ConfigError as err:
            end_on_user_error(err)
        if not pool:  # a sweep that takes no slots
            return
        launcher, sweeper = config.hydra.launcher, config.hydra.sweeper
        parallel = int(launcher.get("n_jobs") or 1) if "joblib" in str(launcher.get("_target_", "")) else 1
        if parallel <= 0:  # joblib's -1: one worker per CPU core
            parallel = os.cpu_count() or 1
        if sweeper.get("n_jobs"):  # an Optuna search asks for this many trials at a time
            parallel = min(parallel, int(sweeper.n_jobs))
        at_once = min(parallel, len(pool) // per_job)
        each = "one GPU" if per_job == 1 else f"{per_job} GPUs"
        gpus = ", ".join(map(str, pool)) + (" (fake)" if os.environ.get(FAKE_DEVICES) else "")
        log.info(f"device slots: {at_once} job(s) at once, {each} each, on GPUs {gpus}")
