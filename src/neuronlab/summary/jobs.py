"""Reading a sweep's job folders back: ``.hydra/overrides.yaml``, ``result.json``, ``sweep_resume.json``
and the Optuna sweeper's ``optimization_results.yaml``.

Every file here may come from anywhere (a copied or damaged sweep folder): each value is checked, and a
file that is not what it should be makes its job a failed row saying which file is wrong, never a crash
and never a choice of code or path.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neuronlab.errors import NeuronlabError
from neuronlab.sweeps.resume import read_resume

DEFAULT_METRIC = "val/acc_best"
HIDDEN_KEYS = ("optuna_trial",)  # set by the Optuna sweeper: the job's number already says it


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


def _read_yaml(path: Path) -> Any:
    import yaml

    return yaml.safe_load(path.read_text())


def _split_override(override: str) -> tuple[str, str]:
    key, _, value = override.partition("=")
    return key.lstrip("+~"), value


def read_job(folder: Path, final: bool = False) -> Job:
    """A job from its folder; no ``result.json`` means still running, or interrupted once the sweep ended.

    A damaged ``overrides.yaml`` or ``result.json`` (these files may come from anywhere) makes that job a
    failed row saying which file is wrong; the other jobs are summarised as usual."""
    import yaml

    prefix = folder.name.split("_", 1)[0]
    job = Job(
        num=int(prefix) if prefix.isdigit() else -1,
        folder=folder.name,
        params={},
        status="interrupted" if final else "unfinished",
        resume=read_resume(folder),
    )
    overrides_file = folder / ".hydra" / "overrides.yaml"
    try:
        overrides = _read_yaml(overrides_file) or []
        if not isinstance(overrides, list):
            raise ValueError(f"a list of overrides expected, found {type(overrides).__name__}")
    except (OSError, ValueError, yaml.YAMLError) as err:
        job.status, job.error = "failed", f"unreadable {overrides_file}: {str(err).splitlines()[0]}"
        return job
    job.params = {k: v for k, v in map(_split_override, map(str, overrides)) if k not in HIDDEN_KEYS}
    result_file = folder / "result.json"
    if result_file.is_file():
        try:
            result = json.loads(result_file.read_text())
        except (OSError, ValueError):  # cut short (a full disk): as good as no result
            return job
        try:
            metrics = result.get("metrics") or {}
            job.metrics = {str(k): float(v) for k, v in metrics.items()}
            wall_time = result.get("wall_time")
            job.wall_time = float(wall_time) if wall_time is not None else None
        except (AttributeError, TypeError, ValueError):
            job.status, job.error = "failed", f"unreadable {result_file}: not a neuronlab result"
            job.metrics = {}
            return job
        job.status = str(result.get("status", job.status))
        if job.status == "running":  # the record a job writes when it starts: running, or killed
            job.status = "interrupted" if final else "unfinished"
        epoch = result.get("pruned_epoch")
        job.pruned_epoch = epoch if isinstance(epoch, int) and not isinstance(epoch, bool) else None
        # a user error's message says it all: "optimizer.lr=-1 is not allowed: ..."
        job.error = str(result.get("error") or "").removeprefix("NeuronlabError: ")
    return job


def find_jobs(sweep_dir: Path) -> list[Path]:
    """The job folders of a sweep: those holding Hydra's ``.hydra/overrides.yaml``."""
    if not sweep_dir.is_dir():
        raise NeuronlabError(f"sweep folder {sweep_dir} does not exist; pass outputs/<task>/multiruns/<time>")
    jobs = sorted(p for p in sweep_dir.iterdir() if (p / ".hydra" / "overrides.yaml").is_file())
    if not jobs:
        sweeps = sorted(
            (p for p in sweep_dir.glob("**/multiruns/*") if p.is_dir()), key=lambda p: p.stat().st_mtime
        )
        latest = f"; the latest sweep in it is {sweeps[-1]}" if sweeps else ""
        raise NeuronlabError(
            f"no sweep jobs (folders with .hydra/overrides.yaml) in {sweep_dir}: "
            f"pass a sweep folder, outputs/<task>/multiruns/<time>{latest}"
        )
    return jobs


def optimized_metric(job_dirs: list[Path]) -> str:
    for folder in job_dirs:
        config = folder / ".hydra" / "config.yaml"
        if config.is_file():
            try:
                metric = (_read_yaml(config) or {}).get("optimized_metric")
            except Exception:  # a damaged config.yaml: another job's may do
                continue
            return str(metric) if metric else DEFAULT_METRIC
    return DEFAULT_METRIC


def read_importance(sweep_dir: Path) -> dict[str, float]:
    """The parameter importances the Optuna sweeper wrote in ``optimization_results.yaml`` (checked)."""
    import yaml

    try:
        results = _read_yaml(sweep_dir / "optimization_results.yaml")
    except (OSError, ValueError, yaml.YAMLError):
        return {}
    importance = results.get("importance") if isinstance(results, dict) else None
    if not isinstance(importance, dict):
        return {}
    return {
        str(k): float(v)
        for k, v in importance.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    }
