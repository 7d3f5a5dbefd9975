"""Loggers with neuronlab's one change: one TensorBoard event file per run."""

from __future__ import annotations

from lightning.pytorch import loggers
from lightning.pytorch.utilities import rank_zero_only


class TensorBoardLogger(loggers.TensorBoardLogger):
    """Lightning's TensorBoard logger, but ``fit`` ending only flushes: the ``test`` stage that follows
    writes into the same event file instead of opening a second one. :meth:`close` ends the file.
    :meth:`resume_at` makes a resumed run's curves continue without duplicated steps."""

    def resume_at(self, step: int) -> None:
        """Continue a run's curves at ``step``: events at or after it (from the killed run) are hidden."""
        self._kwargs["purge_step"] = step

    @rank_zero_only
    def finalize(self, status: str) -> None:
        if self._experiment is not None:
            self._experiment.flush()
        self.save()

    @rank_zero_only
    def close(self) -> None:
        if self._experiment is not None:
            self._experiment.close()
