"""One sweep job per GPU: each running job of a local parallel sweep takes device slots of its own.

``neuronlab-train -m hydra/launcher=joblib hydra.launcher.n_jobs=4 trainer=gpu optimizer.lr=...`` (or an
Optuna search with ``hydra.sweeper.n_jobs=4``) would otherwise train every job on the first GPU. Here each
job, before it builds anything, takes ``trainer.devices`` free slots: an exclusive non-blocking ``flock``
on ``<sweep dir>/.devices/<i>.lock`` per slot, held until the job ends and released by the OS if the job
dies (a SIGKILLed job's slot is free at once). A job that finds too few free slots waits for them, it
never shares. The slots are ``sweep_devices`` (e.g. ``sweep_devices=[0,1,2,3]``), by default every GPU
this process sees. SLURM (submitit) jobs get their own GPUs from SLURM, and ``trainer=cpu`` jobs use none:
for them nothing changes.

How a job is held to its GPUs: its Trainer gets the slot's device indices, ``trainer.devices=[i]``
(Lightning's documented way to pick GPUs), and nothing touches ``CUDA_VISIBLE_DEVICES``. Hydra's joblib
launcher runs jobs in loky worker processes that are reused from one job to the next; once a worker has
initialised CUDA (in an earlier job), a changed ``CUDA_VISIBLE_DEVICES`` is silently ignored, so that
route would put a reused worker's next job back on its first job's GPU. Explicit indices hold in any
process, fresh or reused, and a DDP job's worker processes (which Lightning starts with this job's
overrides) get the same indices from ``NEURONLAB_JOB_DEVICES``, which the job sets while it runs. The
price: a reused worker keeps the CUDA context of each GPU it has used (a few hundred MB per GPU) until
the sweep ends. Indices count within the GPUs this process sees (``CUDA_VISIBLE_DEVICES`` or all).

Each job says which slots it took and when in its ``train.log`` and records them in ``environment.json``
(``devices``); the sweep's start line says how many jobs run at once on which GPUs. Tests on a machine
without GPUs list fake slots in ``NEURONLAB_FAKE_DEVICES=0,1``: jobs take and record them and train as
configured (on the CPU).
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Any

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


def slots(cfg: DictConfig) -> list[int]:
    """The device slots of a sweep: ``sweep_devices``, fake ones, or every GPU this process sees."""
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


def uses_slots(cfg: DictConfig, hydra_cfg: Any) -> bool:
    """A job of a local sweep that trains on GPUs (or on fake slots): not SLURM's, not on the CPU."""
    local = "submitit" not in str(hydra_cfg.launcher.get("_target_", ""))
    return local and str(cfg.trainer.get("accelerator", "auto")) != "cpu"


@contextmanager
def take(folder: Path, pool: list[int], n: int) -> Iterator[list[int]]:
    """Hold ``n`` free slots of ``pool`` (waiting until there are); released when the block ends."""
    folder.mkdir(exist_ok=True)
    if folder.is_symlink() or not folder.is_dir():
        raise ConfigError(f"{folder} is not a folder: remove it and run the sweep again")
    while True:
        with ExitStack() as held, open_lock_file(folder / "pick.lock") as pick:
            fcntl.flock(pick, fcntl.LOCK_EX)  # one job picks at a time: no two jobs each holding half
            taken: list[tuple[int, IO[str]]] = []
            for slot in pool:
                handle = held.enter_context(open_lock_file(folder / f"{slot}.lock"))
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue
                taken.append((slot, handle))
                if len(taken) == n:
                    break
            if len(taken) == n:
                fcntl.flock(pick, fcntl.LOCK_UN)
                yield [slot for slot, _ in taken]
                return
        time.sleep(WAIT_S)  # the handles are closed: the partial pick is released for the others


@contextmanager
def job_devices(cfg: DictConfig) -> Iterator[None]:
    """Run a sweep job on slots of its own (see the module's docstring); nothing for other runs.

    A DDP worker of such a job takes no slot: it trains on its job's devices (``NEURONLAB_JOB_DEVICES``)."""
    from hydra.core.hydra_config import HydraConfig

    inherited = os.environ.get(JOB_DEVICES)
    if inherited and int(os.environ.get("LOCAL_RANK", "0")) > 0:  # a DDP worker Lightning started
        if not os.environ.get(FAKE_DEVICES):
            _use(cfg, _ids(inherited))
        yield
        return
    from hydra.types import RunMode

    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN or not uses_slots(cfg, hydra_cfg):
        yield
        return
    pool = slots(cfg)
    if not pool:  # accelerator auto on a machine without GPUs
        yield
        return
    n = needed(cfg.trainer, len(pool))
    with take(Path(hydra_cfg.sweep.dir) / FOLDER, pool, n) as ids:
        run_logger.info(f"device slots {ids} taken")
        if not os.environ.get(FAKE_DEVICES):
            _use(cfg, ids)
        os.environ[JOB_DEVICES] = ",".join(map(str, ids))
        try:
            yield
        finally:
            os.environ.pop(JOB_DEVICES, None)
            run_logger.info(f"device slots {ids} released")


def _use(cfg: DictConfig, ids: list[int]) -> None:
    with open_dict(cfg.trainer):
        cfg.trainer.devices = ids


class DeviceSlots(Callback):
    """Hydra callback (``conf/hydra/default.yaml``): a sweep's start line says how its jobs share the GPUs."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """The start line; a sweep whose jobs cannot get their slots ends here, in one line, before any job
        (Hydra would only warn of a callback's error, then fail every job)."""
        try:
            line = start_line(config)
        except ConfigError as err:
            end_on_user_error(err)
        if line:
            log.info(line)


def start_line(config: DictConfig) -> str | None:
    """How many jobs run at once on which GPUs; None for a sweep that takes no slots."""
    if not uses_slots(config, config.hydra):
        return None
    pool = slots(config)
    if not pool:
        return None
    per_job = needed(config.trainer, len(pool))
    launcher, sweeper = config.hydra.launcher, config.hydra.sweeper
    parallel = int(launcher.get("n_jobs") or 1) if "joblib" in str(launcher.get("_target_", "")) else 1
    if parallel <= 0:  # joblib's -1: one worker per CPU core
        parallel = os.cpu_count() or 1
    if sweeper.get("n_jobs"):  # an Optuna search asks for this many trials at a time
        parallel = min(parallel, int(sweeper.n_jobs))
    at_once = min(parallel, len(pool) // per_job)
    each = "one GPU" if per_job == 1 else f"{per_job} GPUs"
    gpus = ", ".join(map(str, pool)) + (" (fake)" if os.environ.get(FAKE_DEVICES) else "")
    return f"device slots: {at_once} job(s) at once, {each} each, on GPUs {gpus}"
