"""The LightningModule of the lesson's classification tasks (one logit for the gates, or C classes), used
as Lightning's documentation does: ``training_step`` returns the loss; Lightning runs backward, the step,
clipping (``Trainer(gradient_clip_val=...)``) and the schedulers ``configure_optimizers`` returns. Several
optimizer steps per Lightning step: :mod:`neuronlab.tasks.grouped`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import lightning.pytorch as L
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import ConfusionMatrix, MaxMetric, Metric

from neuronlab.errors import ConfigError, NeuronlabError
from neuronlab.models.mlp import probabilities


def _plain(value: Any) -> Any:
    """Mappings/sequences (e.g. OmegaConf containers) as dicts/lists of plain values."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_plain(v) for v in value]
    return value if value is None or isinstance(value, bool | int | float | str) else str(value)


def describe_factory(factory: Callable[..., Any] | None) -> dict[str, Any] | None:
    """Plain description of an optimizer/scheduler partial: its class path and keyword arguments (what a
    checkpoint stores; :func:`neuronlab.io.checkpoint.load_classifier` rebuilds it from an allow-list)."""
    if factory is None:
        return None
    func = getattr(factory, "func", factory)
    return {"name": f"{func.__module__}.{func.__qualname__}", **_plain(getattr(factory, "keywords", {}))}


class EpochStats(Metric):
    """An epoch's loss and accuracy, updated every step and logged once per epoch (logging every step
    costs about 15% of an epoch; two stock torchmetrics cost about Lightning's whole per-step overhead),
    summed over DDP processes at ``compute()``: each sample counted once."""

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("loss_sum", torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("correct", torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0), dist_reduce_fx="sum")

    def update(self, loss: torch.Tensor, correct: torch.Tensor, count: int) -> None:  # loss: batch mean
        self.loss_sum.add_(loss * count)
        self.correct.add_(correct)
        self.count.add_(count)

    def compute(self) -> tuple[torch.Tensor, torch.Tensor]:
        count = self.count.clamp(min=1)
        return self.loss_sum / count, self.correct.float() / count


class Classifier(L.LightningModule):
    """Loss on logits (BCE-with-logits or cross-entropy), accuracy per epoch, best validation accuracy.
    Receives a built net and optimizer/scheduler factories (``functools.partial``), never a config; saves
    only plain values as hyper-parameters, so checkpoints load with ``weights_only=True``."""

    first_nonfinite = torch.tensor(-1)  # the first optimizer step with a non-finite loss (-1: none)

    def __init__(
        self,
        net: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., Any] | None = None,
        num_classes: int | None = None,
        scheduler_monitor: str = "val/loss",
        compile: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(net, nn.Module):
            hint = "(a checkpoint loads with neuronlab.io.checkpoint.load_classifier(path))"
            raise ConfigError(f"net: expected a built torch module, got {type(net).__name__} {hint}")
        if num_classes is not None and (type(num_classes) is not int or num_classes < 2):
            raise ConfigError(f"num_classes={num_classes!r} must be an integer >= 2")
        if not isinstance(compile, bool):
            raise ConfigError(f"task.compile={compile!r} must be true or false")
        scheduler = scheduler or None  # scheduler=none composes to an empty mapping: no schedule
        self.net, self.compile_net, self.scheduler_monitor = net, compile, scheduler_monitor
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        out = int(getattr(net, "output_size", 0))
        self.binary = out == 1
        self.num_classes = int(num_classes or (2 if self.binary else out))
        if out != self.num_classes and not (self.binary and self.num_classes == 2):
            raise ConfigError(f"the net has {out} outputs but the data has {self.num_classes} classes")
        self.train_stats, self.val_stats, self.test_stats = EpochStats(), EpochStats(), EpochStats()
        self.val_acc_best = MaxMetric()
        self.val_acc_best.persistent(True)  # survives a resume from checkpoint
        kind = {"task": "binary"} if self.binary else {"task": "multiclass", "num_classes": self.num_classes}
        self.test_confusion = ConfusionMatrix(**kind)
        hparams = {"net": net.config() if hasattr(net, "config") else {"_target_": type(net).__qualname__}}
        hparams |= {"num_classes": self.num_classes, "compile": compile}
        hparams |= {"optimizer": describe_factory(optimizer), "scheduler": describe_factory(scheduler)}
        self.save_hyperparameters(hparams, logger=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def setup(self, stage: str) -> None:
        """Once the DataModule is set up, before training or testing: refuse a net that does not fit it."""
        dm = getattr(self.trainer, "datamodule", None)
        if dm is None:
            return
        name = getattr(dm, "name", None) or type(dm).__name__
        inputs, outputs = getattr(self.net, "input_size", None), getattr(self.net, "output_size", None)
        features, classes = getattr(dm, "input_size", None), getattr(dm, "num_classes", None)
        if inputs is not None and features is not None and inputs != features:
            raise NeuronlabError(
                f"model.input_size={inputs} does not match data={name}, whose samples have "
                f"{features} features: pick a model made for it or set model.input_size={features}"
            )
        expected = 1 if classes == 2 and outputs == 1 else classes
        if outputs is not None and classes is not None and outputs != expected:
            raise NeuronlabError(
                f"model.output_size={outputs} does not match data={name}, which has "
                f"{classes} classes: set model.output_size={classes}"
                + (" (or 1 for a single sigmoid output)" if classes == 2 else "")
            )
        k = getattr(dm, "steps_per_execution", 1)
        if stage == "fit" and k != 1 and self.automatic_optimization:  # its loader hands over lists
            raise NeuronlabError(
                f"data.steps_per_execution={k} hands over {k} mini-batches per step: set it to 1, or "
                "task._target_=neuronlab.tasks.GroupedClassifier (which takes them)"
            )

    def configure_model(self) -> None:
        if self.compile_net:
            self.net.compile()  # in place: state_dict keys stay those of the plain net

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss of a batch and its predictions (P(class 1) for a binary task, else logits)."""
        x, y = batch
        logits = self.net(x)
        if self.binary:
            return F.binary_cross_entropy_with_logits(logits.squeeze(-1), y.float()), probabilities(logits)
        return F.cross_entropy(logits, y), logits

    def _correct(self, preds: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # threshold 0.5, or argmax
        return ((preds > 0.5).long() == y if self.binary else preds.argmax(-1) == y).sum()

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss, preds = self._step(batch)
        self.train_stats.update(loss.detach(), self._correct(preds.detach(), batch[1]), len(batch[1]))
        # remember the first optimizer step whose loss was not finite, without waiting for the device
        bad = (self.first_nonfinite < 0) & ~torch.isfinite(loss.detach())
        self.first_nonfinite = torch.where(bad, self.global_step, self.first_nonfinite.to(loss.device))
        return loss

    def _check_finite(self) -> None:
        """Raise if a training loss was not finite: at every epoch end and before any checkpoint."""
        step = int(self.first_nonfinite)  # one host sync, at epoch end or before a checkpoint
        if step >= 0:
            raise self._diverged("the training loss was not finite", step=step)

    def on_train_start(self) -> None:
        self.first_nonfinite = torch.tensor(-1, device=self.device)

    def on_train_epoch_end(self) -> None:
        self._check_finite()
        self._log_epoch("train", self.train_stats)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        loss, preds = self._step(batch)
        self.val_stats.update(loss, self._correct(preds, batch[1]), len(batch[1]))

    def on_validation_epoch_end(self) -> None:
        loss, acc = self._log_epoch("val", self.val_stats)
        if not self.trainer.sanity_checking:
            if self.trainer.training:
                self._check_finite()
            if not torch.isfinite(loss):  # raised before any checkpoint of these weights is written
                raise self._diverged(f"the validation loss is {loss.item()}")
            self.val_acc_best.update(acc)
            self.log("val/acc_best", self.val_acc_best.compute(), sync_dist=True)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        loss, preds = self._step(batch)
        self.test_stats.update(loss, self._correct(preds, batch[1]), len(batch[1]))
        self.test_confusion.update(preds, batch[1])

    def on_test_epoch_start(self) -> None:
        self.test_confusion.reset()

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test", self.test_stats)

    def predict_step(self, batch: Any, batch_idx: int = 0) -> torch.Tensor:
        """Probabilities: ``(N,)`` P(class 1) for binary tasks (sigmoid), ``(N, C)`` softmax otherwise."""
        x = batch[0] if isinstance(batch, list | tuple) else batch
        return probabilities(self.net(x))

    def _log_epoch(self, stage: str, stats: EpochStats) -> tuple[torch.Tensor, torch.Tensor]:
        """Compute (synchronised over processes: sync_dist averages equal values), log once, reset."""
        loss, acc = stats.compute()
        stats.reset()
        if not self.trainer.sanity_checking:
            self.log_dict({f"{stage}/loss": loss, f"{stage}/acc": acc}, sync_dist=True)
        return loss, acc

    def _diverged(self, what: str, step: int | None = None) -> FloatingPointError:
        precision = str(self.trainer.precision)
        advice = "lower optimizer.lr and try again"
        if precision in ("16-true", "bf16-true", "16", "bf16"):
            advice = f"trainer.precision={precision} keeps the weights themselves in 16 bits, too few for "
            advice += "these updates: use trainer.precision=16-mixed or bf16-mixed (or 32-true)"
        where = f"epoch {self.current_epoch}, step {self.global_step if step is None else step}"
        return FloatingPointError(
            f"{what} at {where}: training stopped and the last good checkpoint is kept; {advice}"
        )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._check_finite()
        bad = [name for name, p in self.named_parameters() if not p.isfinite().all()]
        if bad:  # never write a checkpoint that cannot be trained or tested from
            raise self._diverged(f"the weights are no longer finite ({bad[0]})")
        # Lightning does not keep RNG states; without them a resumed run draws other dropout masks
        checkpoint["rng_state"] = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            checkpoint["rng_state"]["cuda"] = torch.cuda.get_rng_state_all()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("rng_state") or {}
        if "torch" in state:
            torch.set_rng_state(state["torch"])
        if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state["cuda"])

    def configure_optimizers(self) -> Any:
        """Scheduler stepped per epoch; ReduceLROnPlateau's monitor read on validating epochs."""
        if self.optimizer_factory is None:
            raise RuntimeError("Classifier was built without an optimizer; it can only evaluate")
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer=optimizer)
        config = {"scheduler": scheduler, "interval": "epoch", "frequency": 1}
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            every = self.trainer.check_val_every_n_epoch or 1
            config |= {"monitor": self.scheduler_monitor, "frequency": every}
        return {"optimizer": optimizer, "lr_scheduler": config}
