"""Loggers with neuronlab's changes: one TensorBoard event file per run, flushed with every checkpoint."""

from __future__ import annotations

from typing import Any

from lightning.pytorch import loggers
from lightning.pytorch.utilities import rank_zero_only


class TensorBoardLogger(loggers.TensorBoardLogger):
    """Lightning's TensorBoard logger, but ``fit`` ending only flushes: the ``test`` stage that follows
    writes into the same event file instead of opening a second one. :meth:`close` ends the file.
    :meth:`resume_at` makes a resumed run's curves continue without duplicated steps, and every saved
    checkpoint flushes the event file, so a killed run's curves hold every epoch its checkpoint holds."""

    def resume_at(self, step: int) -> None:
        """Continue a run's curves at ``step``: events at or after it (from the killed run) are hidden."""
        self._kwargs["purge_step"] = step

    @rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        # what a checkpoint has seen is on disk with it: a kill (SIGKILL) after it loses no logged epoch
        if self._experiment is not None:
            self._experiment.flush()

    @rank_zero_only
    def finalize(self, status: str) -> None:
        if self._experiment is not None:
            self._experiment.flush()
        self.save()

    @rank_zero_only
    def close(self) -> None:
        if self._experiment is not None:
            self._experiment.close()
