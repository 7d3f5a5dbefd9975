"""neuronlab's own Lightning callbacks (the rest come from Lightning, set in ``conf/callbacks/``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import lightning.pytorch as L
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.utilities.rank_zero import rank_zero_warn


class GracefulInterrupt(L.Callback):
    """On Ctrl-C (SIGINT) or SIGTERM: save ``interrupted.ckpt`` beside ``last.ckpt`` and remember
    what happened, so the entry point can say how to resume. ``last.ckpt`` (the last whole epoch) is
    what a resume starts from: it replays exactly."""

    interrupted: str | None = None  # "SIGINT" or "SIGTERM" once a run was interrupted in this process

    def __init__(self, dirpath: str) -> None:
        self.dirpath = Path(dirpath)
        GracefulInterrupt.interrupted = None  # each run (each job of a sweep) starts uninterrupted

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


class StepProgressBar(TQDMProgressBar):
    """Lightning's TQDM bar, counting mini-batches (optimizer steps) rather than Lightning steps: with
    ``data.steps_per_execution=K`` one Lightning step runs K optimizer steps (see ``Classifier``)."""

    @property
    def total_train_batches(self) -> int | float:
        trainer = self.trainer
        total = trainer.num_training_batches  # Lightning steps, after limit_train_batches
        loader = trainer.train_dataloader
        k = int(getattr(loader, "steps_per_execution", 1))
        if k > 1 and not math.isinf(total):
            total = min(total * k, loader.num_batches)
        if trainer.max_epochs == -1 and trainer.max_steps is not None and trainer.max_steps > 0:
            total = min(total, trainer.max_steps - trainer.global_step)
        return total

    def on_train_epoch_start(self, trainer: L.Trainer, *args: Any) -> None:
        super().on_train_epoch_start(trainer, *args)
        self.epoch_start_step = trainer.global_step

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        steps = trainer.global_step - self.epoch_start_step  # optimizer steps this epoch, so far
        super().on_train_batch_end(trainer, pl_module, outputs, batch, steps - 1)
