"""neuronlab's own Lightning callbacks (the rest come from Lightning, set in ``conf/callbacks/``)."""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning.pytorch as L
from lightning.pytorch import callbacks
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.utilities.rank_zero import rank_zero_warn

from neuronlab.run.folder import INTERRUPTED


class ModelCheckpoint(callbacks.ModelCheckpoint):
    """Lightning's ``ModelCheckpoint``, but the state a resume restores is untrusted input.

    Lightning removes the files its state names ("best" checkpoints it replaces), and a checkpoint from
    someone else could name any file (``../../..``): a state naming anything but this callback's own files
    in its own folder is dropped. (Its types were checked as the file loaded: ``check_checkpoint``.)
    """

    def _own(self, path: str) -> bool:
        file = Path(path)
        return (
            file.suffix == self.FILE_EXTENSION
            and file.name.startswith(self.filename or "")
            and file.resolve().parent == Path(self.dirpath).resolve()
        )

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = dict(state_dict)
        stored_dir = state.get("dirpath")
        if not isinstance(stored_dir, str) or self.dirpath is None:
            return
        if Path(stored_dir).resolve() != Path(self.dirpath).resolve():
            return  # another run's folder (ckpt_path=<file> starts a new run): track the best afresh
        paths = [state.get(k) for k in ("best_model_path", "kth_best_model_path", "last_model_path")]
        best_k = state.get("best_k_models")
        own = isinstance(best_k, Mapping) and all(map(self._own, best_k))
        if not (own and all(p in (None, "") or self._own(p) for p in paths)):
            rank_zero_warn(
                "the checkpoint's ModelCheckpoint state names files outside this run's checkpoints folder "
                "(or is malformed): it is ignored, and the best checkpoint is tracked afresh"
            )
            return
        state.setdefault("best_model_score", None)
        state["best_model_path"] = state.get("best_model_path") or ""
        state["dirpath"] = self.dirpath
        super().load_state_dict(state)


class GracefulInterrupt(L.Callback):
    """On Ctrl-C (SIGINT) or SIGTERM: save ``interrupted.ckpt`` beside ``last.ckpt`` (what a resume
    replays from) and keep ``stopped_by``, so the entry point can say how to resume.

    In a one-process run Ctrl-C stops at the end of the current step, as Lightning does for SIGTERM:
    a ``KeyboardInterrupt`` at any bytecode (say inside TensorBoard's writer lock) could hang the shutdown.
    A second Ctrl-C stops at once. Under DDP every rank must stop at the same step: Python's own Ctrl-C."""

    def __init__(self, dirpath: str) -> None:
        self.dirpath = Path(dirpath)
        self.stopped_by: str | None = None  # "SIGINT" or "SIGTERM"
        self._asked = False  # Ctrl-C pressed: stop at the end of the current step
        self._previous: Any = None  # the SIGINT handler before this stage, to restore

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # here, not in setup: Lightning records the handlers it restores at teardown just before this
        if threading.current_thread() is not threading.main_thread():
            return
        self._asked = False
        self._previous = signal.getsignal(signal.SIGINT)
        if trainer.world_size == 1 and self._previous is signal.default_int_handler:
            signal.signal(signal.SIGINT, self._on_sigint)

    on_test_start = on_predict_start = on_train_start

    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self._asked:  # the second Ctrl-C: now
            raise KeyboardInterrupt
        self._asked = True  # nothing printed here: a signal handler may interrupt a print

    def _stop_if_asked(self, *args: Any) -> None:
        if self._asked:
            self._asked = False
            raise KeyboardInterrupt  # at a step's end: Lightning's handler saves and tears down cleanly

    on_train_batch_end = on_validation_batch_end = on_test_batch_end = on_predict_batch_end = _stop_if_asked
    on_train_epoch_end = on_validation_epoch_end = _stop_if_asked

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._stop_if_asked()  # pressed after the last step: the run still ends as interrupted
        self._restore()

    def _restore(self) -> None:
        """The SIGINT handler from before the stage again: on a Ctrl-C Lightning sets SIGINT to "ignore" and
        counts on the process ending, but a notebook or a sweep goes on (and its children inherit "ignore").
        Lightning skips ``teardown`` when a run ends on an exception, hence ``on_exception`` too."""
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        self._restore()
        if not isinstance(exception, KeyboardInterrupt | SIGTERMException):
            return
        self.stopped_by = "SIGINT" if isinstance(exception, KeyboardInterrupt) else "SIGTERM"
        if trainer.world_size == 1:  # saving is collective under DDP; there last.ckpt must do
            try:
                trainer.save_checkpoint(self.dirpath / INTERRUPTED, weights_only=False)  # all of it
            except Exception as err:  # never mask the interrupt itself
                rank_zero_warn(f"could not save interrupted.ckpt: {err}")


class StepProgressBar(TQDMProgressBar):
    """Lightning's TQDM bar, counting optimizer steps: with ``data.steps_per_execution=K`` one Lightning
    step runs K of them (:mod:`neuronlab.tasks.grouped`)."""

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

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        """End the bars' lines (Lightning leaves them open): the ``error:`` line starts on its own line."""
        for bar in ("val_progress_bar", "test_progress_bar", "train_progress_bar"):
            with contextlib.suppress(TypeError):  # Lightning's answer for a bar not made yet
                getattr(self, bar).close()


class ValidateLastEpoch(L.Callback):
    """The last epoch of a fit always validates, whatever ``trainer.check_val_every_n_epoch`` says, so the
    final ``val/*``, the best checkpoint and a sweep's objective cover every epoch trained."""

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        last = trainer.max_epochs is not None and trainer.current_epoch == trainer.max_epochs - 1
        if last and trainer.check_val_every_n_epoch is not None:
            trainer.check_val_every_n_epoch = 1


class WallClock(L.Callback):
    """A run's wall time across resumes: every checkpoint stores the time so far, and a resume in the
    same run folder starts from it, so ``result.json``'s ``wall_time`` counts the whole run."""

    def __init__(self, before: float, resuming: bool, start: float) -> None:
        self.start = start
        self.before = before  # seconds of earlier parts of this run (its last result.json)
        self.resuming = resuming

    def total(self) -> float:
        return self.before + time.time() - self.start

    def state_dict(self) -> dict[str, Any]:
        return {"wall_time": self.total()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        stored = state_dict.get("wall_time")
        if self.resuming and isinstance(stored, int | float) and stored >= 0:
            self.before = max(self.before, float(stored))
