"""Several optimizer steps per Lightning step: the opt-in speed path beside :class:`Classifier`.

Why it pays: a framework spends a fixed time on each of its steps (Lightning's loops, hooks, closures and
result bookkeeping: about a millisecond), whatever the net. A small MLP on in-memory data computes a
mini-batch in about that time, so the fixed cost can double an epoch. As Keras's ``steps_per_execution``
does, the loader hands over K mini-batches at once (``data.steps_per_execution=K``) and one Lightning step
runs K ordinary optimizer steps: the framework's cost is paid once per K. The run is the same (samples,
order, dropout draws, clipping, scheduler steps), so K=16 ends bit for bit where K=1 does.

How: Lightning's documented manual optimization on every mini-batch (``manual_backward`` and the
``LightningOptimizer`` step), so the precision plugin, DDP's gradient reduction and the callbacks'
``on_before_backward``/``on_after_backward``/``on_before_optimizer_step`` run on every optimizer step.
Only ``on_train_batch_start``/``end`` differ: once per group, with the group as ``batch``.
"""

from __future__ import annotations

from typing import Any

import torch

from neuronlab.tasks.classifier import Classifier


class GroupedClassifier(Classifier):
    """:class:`Classifier` taking a list of up to K ``(x, y)`` mini-batches per Lightning step (one
    ``(x, y)`` pair works too) and running one optimizer step on each, in order."""

    gradient_clip: tuple[float, str] | None = None  # the Trainer's (value, algorithm): configure_callbacks
    epoch_start_step = 0  # global_step as the epoch began: "step" schedulers count steps within an epoch

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.automatic_optimization = False

    def configure_callbacks(self) -> list[Any]:
        """Lightning refuses ``Trainer(gradient_clip_val=...)`` under manual optimization; this hook runs
        before that check, so the clipping settings move here for :meth:`on_before_optimizer_step`."""
        trainer = self.trainer
        if trainer.gradient_clip_val:
            algorithm = str(trainer.gradient_clip_algorithm or "norm")
            self.gradient_clip = (float(trainer.gradient_clip_val), algorithm)
            trainer.gradient_clip_val = None
        return []

    def training_step(self, batch: Any, batch_idx: int) -> None:  # type: ignore[override]
        group = [batch] if isinstance(batch[0], torch.Tensor) else batch
        optimizer = self.optimizers()
        for pair in group:
            loss = super().training_step(pair, batch_idx)
            self.manual_backward(loss)  # the precision plugin's scaling, DDP's reduction, the hooks
            optimizer.step()  # unscales, calls on_before_optimizer_step (clipping), steps
            optimizer.zero_grad()
            self._step_schedulers("step")
        self._count_logged_steps(len(group))

    def _count_logged_steps(self, steps: int) -> None:
        """The one Lightning internal touched here: the step count loggers take their x-axis from (and
        checkpoints store). Lightning adds 1 per Lightning step; add the rest of the group, so that it
        counts optimizer steps as with K=1 (tests/tasks/test_grouped.py fails loudly if it changes)."""
        self.trainer.fit_loop.epoch_loop._batches_that_stepped += steps - 1

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.gradient_clip is not None:  # after the gradient scaler's unscaling, as Lightning clips
            value, algorithm = self.gradient_clip
            self.clip_gradients(optimizer, gradient_clip_val=value, gradient_clip_algorithm=algorithm)

    def on_train_epoch_start(self) -> None:
        self.epoch_start_step = self.global_step

    def on_train_epoch_end(self) -> None:
        super().on_train_epoch_end()
        self._step_schedulers("epoch")

    def configure_optimizers(self) -> Any:
        config = super().configure_optimizers()
        if isinstance(config, dict):  # Lightning warns that it ignores "monitor" under manual optimization
            config["lr_scheduler"].pop("monitor", None)  # _step_schedulers reads scheduler_monitor
        return config

    def _step_schedulers(self, interval: str) -> None:
        """Step the schedulers of this ``interval`` every ``frequency`` steps or epochs, as Lightning does
        under automatic optimization; ReduceLROnPlateau with ``scheduler_monitor``'s value."""
        count = self.global_step - self.epoch_start_step if interval == "step" else self.current_epoch + 1
        for config in self.trainer.lr_scheduler_configs:
            if config.interval != interval or count % config.frequency:
                continue
            if isinstance(config.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                value = self.trainer.callback_metrics.get(self.scheduler_monitor)
                if value is not None:  # not yet validated
                    config.scheduler.step(value)
            else:
                config.scheduler.step()
