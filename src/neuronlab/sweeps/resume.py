"""Resuming a sweep's jobs in place: ``neuronlab-train -m <the same sweep> hydra.sweep.dir=<its folder>``.

Each job of the same sweep lands in the same folder again. There, before training:
- a ``result.json`` that says ``completed`` for the same overrides: the job is skipped, its result kept;
- a job killed or interrupted (its ``result.json`` says ``running`` or ``interrupted``, or failed, for the
  same overrides) with a checkpoint: it continues from ``last.ckpt`` (``interrupted.ckpt``) in its folder;
- a folder that holds another job's results or checkpoints is refused: nothing trained is overwritten.
What was done is written to the job's ``sweep_resume.json`` for the summary.

``result.json`` is read as untrusted input (a sweep folder may come from anyone): every value is checked.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neuronlab.errors import NeuronlabError
from neuronlab.io.files import atomic_write_json

RESUME_FILE = "sweep_resume.json"


@dataclass
class JobStart:
    """What the job does: ``skipped`` holds the stored metrics of a completed job; else it trains."""

    skipped: dict[str, float] | None = None
    resumed_epoch: int | None = None  # epochs its checkpoint had finished


def read_result(run_dir: Path) -> dict[str, Any] | None:
    """A job's ``result.json``, if it is one: a JSON object with a string status."""
    try:
        result = json.loads((run_dir / "result.json").read_text())
    except (OSError, ValueError):
        return None
    return result if isinstance(result, dict) and isinstance(result.get("status"), str) else None


def _metrics(result: dict[str, Any]) -> dict[str, float]:
    metrics = result.get("metrics")
    if not isinstance(metrics, dict):
        return {}
    return {
        str(k): float(v) for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)
    }


def start_job(cfg: Any, run_dir: Path, overrides: list[str]) -> JobStart:
    """Decide, from the job's folder, whether this sweep job is skipped, resumed or run; record its start.

    Sets ``cfg.ckpt_path`` to the folder's checkpoint for a resumed job (read by ``neuronlab.io.checkpoint``).
    """
    from omegaconf import open_dict

    from neuronlab.io.checkpoint import epochs_done, load_checkpoint, resolve_checkpoint
    from neuronlab.run import report

    previous = read_result(run_dir)
    same = previous is not None and previous.get("overrides") == overrides
    try:
        checkpoint = resolve_checkpoint(run_dir)
    except NeuronlabError:
        checkpoint = None
    if (previous is not None or checkpoint is not None) and not same:
        raise NeuronlabError(
            f"the job folder {run_dir} holds another job's results or checkpoints (not those of "
            f"{' '.join(overrides) or 'no overrides'}); run this sweep in a new folder (hydra.sweep.dir=...)"
        )
    start = JobStart()
    if same and previous is not None and previous["status"] == "completed":
        start.skipped = _metrics(previous)
        atomic_write_json(
            run_dir / RESUME_FILE, {"action": "skipped", "at": time.strftime("%Y-%m-%d %H:%M:%S")}
        )
        return start
    if checkpoint is not None and not cfg.get("ckpt_path"):
        start.resumed_epoch = epochs_done(load_checkpoint(checkpoint))
        with open_dict(cfg):
            cfg.ckpt_path = str(checkpoint)
        atomic_write_json(
            run_dir / RESUME_FILE,
            {"action": "resumed", "epoch": start.resumed_epoch, "at": time.strftime("%Y-%m-%d %H:%M:%S")},
        )
    report.write_result(run_dir, status="running", overrides=overrides)  # a kill leaves this behind
    return start


def read_resume(folder: Path) -> str:
    """What the sweep's last run did with this job: '', 'skipped' or 'resumed after N epochs'."""
    from neuronlab.io.read import UnreadableFile, read_json

    try:
        data = read_json(folder / RESUME_FILE)
    except UnreadableFile:  # none (a job never re-run), or not a regular file: nothing to say
        return ""
    if not isinstance(data, dict):
        return ""
    if data.get("action") == "skipped":
        return "skipped"
    if data.get("action") == "resumed":
        epoch = data.get("epoch")
        done = isinstance(epoch, int) and not isinstance(epoch, bool)
        return f"resumed after {epoch} epochs" if done else "resumed"
    return ""
