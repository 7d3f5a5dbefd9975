"""neuronlab's own Lightning callbacks (the rest come from Lightning, set in ``conf/callbacks/``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import lightning.pytorch as L
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.utilities.rank_zero import rank_zero_warn


class GracefulInterrupt(L.Callback):
    """On Ctrl-C (SIGINT) or SIGTERM: save ``interrupted.ckpt`` beside ``last.ckpt`` and remember
    what happened, so the entry point can say how to resume. ``last.ckpt`` (the last whole epoch) is
    what a resume starts from: it replays exactly."""

    interrupted: str | None = None  # "SIGINT" or "SIGTERM" once a run was interrupted in this process

    def __init__(self, dirpath: str) -> None:
        self.dirpath = Path(dirpath)

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if not isinstance(exception, KeyboardInterrupt | SIGTERMException):
            return
        GracefulInterrupt.interrupted = "SIGINT" if isinstance(exception, KeyboardInterrupt) else "SIGTERM"
        if trainer.world_size == 1:  # saving is collective under DDP; there last.ckpt must do
            try:
                trainer.save_checkpoint(self.dirpath / "interrupted.ckpt")
            except Exception as err:  # never mask the interrupt itself
                rank_zero_warn(f"could not save interrupted.ckpt: {err}")


class WallClock(L.Callback):
    """A run's wall time across resumes: every checkpoint stores the time so far, and a resume in the
    same run folder starts from it, so ``result.json``'s ``wall_time`` counts the whole run."""

    def __init__(self, before: float = 0.0, resuming: bool = False) -> None:
        self.start = time.time()
        self.before = float(before)  # seconds spent by earlier parts of this run (its last result.json)
        self.resuming = resuming

    def total(self) -> float:
        return self.before + time.time() - self.start

    def state_dict(self) -> dict[str, Any]:
        return {"wall_time": self.total()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        stored = state_dict.get("wall_time")
        if self.resuming and isinstance(stored, int | float) and stored >= 0:
            self.before = max(self.before, float(stored))
