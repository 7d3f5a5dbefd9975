"""Resuming a sweep's jobs in place: ``neuronlab-train -m <the same sweep> hydra.sweep.dir=<its folder>``.

Each job lands in its folder again; before training, a job whose ``result.json`` says ``completed`` for
the same overrides (in any order) is skipped, one killed, interrupted or failed continues from its own
checkpoint, and a folder holding another job's results or checkpoints is refused. ``sweep_resume.json``
records what was done, for the summary. ``result.json`` is untrusted (a sweep folder may come from anyone).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from neuronlab.config import is_int, is_number
from neuronlab.errors import NeuronlabError
from neuronlab.io.files import atomic_write_json
from neuronlab.io.read import UnreadableFile, read_json
from neuronlab.run.folder import read_result_or_none, write_result
from neuronlab.run.paths import same_job

RESUME_FILE = "sweep_resume.json"


@dataclass(frozen=True)
class JobStart:
    """What a sweep job does, decided before it runs: ``skipped`` holds the stored metrics of a completed
    job; else it trains, from ``ckpt_path`` (its own folder's checkpoint) when it was killed earlier."""

    skipped: dict[str, float] | None = None
    ckpt_path: str | None = None
    resumed_epoch: int | None = None  # epochs its checkpoint had finished


def _metrics(result: dict) -> dict[str, float]:
    metrics = result.get("metrics")
    if not isinstance(metrics, dict):
        return {}
    return {str(k): float(v) for k, v in metrics.items() if is_number(v)}


def start_job(run_dir: Path, overrides: list[str], ckpt_path: str | None = None) -> JobStart:
    """Decide, from the job's folder, whether this sweep job is skipped, resumed or run; record its start.

    ``ckpt_path``: the job's own ``ckpt_path`` setting; a job given one is never resumed from its folder."""
    from neuronlab.io.checkpoint import epochs_done, load_checkpoint, resolve_checkpoint

    previous = read_result_or_none(run_dir)
    if previous is not None and not isinstance(previous.get("status"), str):
        previous = None
    same = previous is not None and same_job(previous.get("overrides"), overrides)
    try:
        checkpoint = resolve_checkpoint(run_dir)
    except NeuronlabError:
        checkpoint = None
    if (previous is not None or checkpoint is not None) and not same:
        raise NeuronlabError(
            f"the job folder {run_dir} holds another job's results or checkpoints (not those of "
            f"{' '.join(overrides) or 'no overrides'}); run this sweep in a new folder (hydra.sweep.dir=...)"
        )
    now = time.strftime("%Y-%m-%d %H:%M:%S")
    if same and previous is not None and previous["status"] == "completed":
        atomic_write_json(run_dir / RESUME_FILE, {"action": "skipped", "at": now})
        return JobStart(skipped=_metrics(previous))
    start = JobStart()
    if checkpoint is not None and not ckpt_path:
        start = JobStart(ckpt_path=str(checkpoint), resumed_epoch=epochs_done(load_checkpoint(checkpoint)))
        atomic_write_json(
            run_dir / RESUME_FILE, {"action": "resumed", "epoch": start.resumed_epoch, "at": now}
        )
    write_result(run_dir, status="running", overrides=overrides)  # a kill leaves this behind
    return start


def read_resume(folder: Path) -> str:
    """What the sweep's last run did with this job: '', 'skipped' or 'resumed after N epochs'."""
    try:
        data = read_json(folder / RESUME_FILE)
    except UnreadableFile:  # none (a job never re-run), or not a regular file: nothing to say
        return ""
    action = data.get("action") if isinstance(data, dict) else None
    if action == "resumed" and is_int(data.get("epoch")):
        return f"resumed after {data['epoch']} epochs"
    return action if action in ("skipped", "resumed") else ""
