"""Reading a sweep's job folders back. Each file may come from anywhere (a copied or damaged sweep): it is
read through :mod:`neuronlab.io.read` and its values checked; one that is not what it should be makes its
job a failed row naming the file, never a crash, a hang, nor a choice of code or path.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neuronlab.config import is_int, is_number
from neuronlab.errors import NeuronlabError
from neuronlab.io.read import UnreadableFile, read_json, read_yaml
from neuronlab.run.folder import ENVIRONMENT, RESULT, config_file, overrides_file, read_result
from neuronlab.run.paths import override_key
from neuronlab.show import shown
from neuronlab.sweeps.resume import read_resume

DEFAULT_METRIC = "val/acc_best"
HIDDEN_KEYS = ("optuna_trial",)  # set by the Optuna sweeper: the job's number already says it
MAX_SLOTS = 64  # device slots one job may record, each an index below MAX_SLOT_INDEX
MAX_SLOT_INDEX = 4096


@dataclass
class Job:
    """One job folder of a sweep, as read back from disk."""

    num: int
    folder: str
    params: dict[str, str]  # its command-line overrides, key -> value as typed
    status: str  # completed | pruned | failed | interrupted | unfinished (running, or killed)
    metrics: dict[str, float] = field(default_factory=dict)
    wall_time: float | None = None
    error: str = ""
    pruned_epoch: int | None = None
    resume: str = ""  # what a re-run of the sweep did: "skipped", "resumed after N epochs"
    devices: list[int] | None = None  # the device slots it trained on (a local GPU sweep), if recorded


def _number(value: Any, name: str) -> float:
    """A number stored in a result; not finite (NaN, ``1e999``) reads as NaN, shown as ``–``."""
    if not is_number(value):
        raise ValueError(f"{name} is not a number")
    return float(value) if math.isfinite(value) else math.nan


def _result_fields(result: dict[str, Any]) -> tuple[str, dict[str, float], float | None]:
    """The status, checked metrics and wall time of a ``result.json`` (``ValueError`` if not one of ours)."""
    if not isinstance(result.get("status"), str):
        raise ValueError("no status")
    metrics = result.get("metrics") or {}
    if not isinstance(metrics, dict):
        raise ValueError("metrics is not a mapping")
    checked = {str(k): _number(v, "a metric") for k, v in metrics.items()}
    epochs = checked.get("epochs")
    if epochs is not None and not (epochs >= 0 and epochs.is_integer()):
        raise ValueError("epochs is not a count")
    wall_time = result.get("wall_time")
    if wall_time is not None and not _number(wall_time, "wall_time") >= 0:
        raise ValueError("wall_time is not a finite duration")
    return result["status"], checked, None if wall_time is None else float(wall_time)


def read_devices(folder: Path) -> list[int] | None:
    """The device slots a job recorded (:mod:`neuronlab.sweeps.devices`); None where it took none, has no
    record yet, or the record is not a short list of small non-negative integers."""
    try:
        environment = read_json(folder / ENVIRONMENT)
    except UnreadableFile:
        return None
    devices = environment.get("devices") if isinstance(environment, dict) else None
    if not isinstance(devices, list) or not 0 < len(devices) <= MAX_SLOTS:
        return None
    return devices if all(type(i) is int and 0 <= i < MAX_SLOT_INDEX for i in devices) else None  # no bools


def read_job(folder: Path, final: bool = False) -> Job:
    """A job from its folder; no ``result.json`` means still running, or interrupted once the sweep ended.
    A damaged ``overrides.yaml`` or ``result.json`` makes it a failed row saying which file is wrong."""
    prefix = folder.name.split("_", 1)[0]
    num, status = int(prefix) if prefix.isdigit() else -1, "interrupted" if final else "unfinished"
    job = Job(num, folder.name, {}, status, resume=read_resume(folder), devices=read_devices(folder))
    try:
        overrides = read_yaml(overrides_file(folder)) or []
        if not isinstance(overrides, list):
            raise UnreadableFile(
                f"{overrides_file(folder)}: a list of overrides expected, found {type(overrides).__name__}"
            )
        for override in map(str, overrides):
            if override_key(override) not in HIDDEN_KEYS:
                job.params[override_key(override)] = override.partition("=")[2]
        result = read_result(folder)
        if result is None:
            return job  # no result yet: still running, or killed
        try:
            status, job.metrics, job.wall_time = _result_fields(result)
        except ValueError as err:
            raise UnreadableFile(f"{folder / RESULT}: not a neuronlab result ({err})") from None
    except UnreadableFile as err:
        job.status, job.error = "failed", f"unreadable {err}"
        return job
    if status != "running":  # the record a job writes when it starts: still running, or killed
        job.status = status
    epoch = result.get("pruned_epoch")
    job.pruned_epoch = epoch if is_int(epoch) else None
    # a user error's message says it all: "optimizer.lr=-1 is not allowed: ..."
    job.error = str(result.get("error") or "").removeprefix("NeuronlabError: ")
    return job


def find_jobs(sweep_dir: Path) -> list[Path]:
    """The job folders of a sweep: those holding Hydra's ``.hydra/overrides.yaml``."""
    if not sweep_dir.is_dir():
        raise NeuronlabError(f"sweep folder {sweep_dir} does not exist; pass outputs/<task>/multiruns/<time>")
    # a job whose overrides.yaml is not a plain file is still a job: a failed row says why
    jobs = sorted(p for p in sweep_dir.iterdir() if os.path.lexists(overrides_file(p)))
    if not jobs:
        sweeps = sorted(
            (p for p in sweep_dir.glob("**/multiruns/*") if p.is_dir()), key=lambda p: p.stat().st_mtime
        )
        latest = f"; the latest sweep in it is {shown(sweeps[-1])}" if sweeps else ""
        raise NeuronlabError(
            f"no sweep jobs (folders with .hydra/overrides.yaml) in {sweep_dir}: "
            f"pass a sweep folder, outputs/<task>/multiruns/<time>{latest}"
        )
    return jobs


def optimized_metric(job_dirs: list[Path]) -> str:
    for folder in job_dirs:
        try:
            config = read_yaml(config_file(folder))
        except UnreadableFile:  # missing or damaged: another job's may do
            continue
        metric = config.get("optimized_metric") if isinstance(config, dict) else None
        return metric if isinstance(metric, str) and metric else DEFAULT_METRIC
    return DEFAULT_METRIC


def read_importance(sweep_dir: Path) -> dict[str, float]:
    """The parameter importances the Optuna sweeper wrote in ``optimization_results.yaml`` (checked)."""
    try:
        results = read_yaml(sweep_dir / "optimization_results.yaml")
    except UnreadableFile:
        return {}
    importance = results.get("importance") if isinstance(results, dict) else None
    if not isinstance(importance, dict):
        return {}
    return {str(k): float(v) for k, v in importance.items() if type(v) in (int, float) and math.isfinite(v)}
