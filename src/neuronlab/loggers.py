"""Loggers with neuronlab's one change: one TensorBoard event file per run."""

from __future__ import annotations

from lightning.pytorch import loggers
from lightning.pytorch.utilities import rank_zero_only


class TensorBoardLogger(loggers.TensorBoardLogger):
    """Lightning's TensorBoard logger, but ``fit`` ending only flushes: the ``test`` stage that follows
    writes into the same event file instead of opening a second one. :meth:`close` ends the file."""

    @rank_zero_only
    def finalize(self, status: str) -> None:
        if self._experiment is not None:
            self._experiment.flush()
        self.save()

    @rank_zero_only
    def close(self) -> None:
        if self._experiment is not None:
            self._experiment.close()
