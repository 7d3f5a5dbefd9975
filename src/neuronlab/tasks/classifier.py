"""One LightningModule for the lesson's classification tasks: a single-logit binary task (the gates)
and a multi-class task (the MNIST family).

Metrics are torchmetrics objects updated every step and logged once per epoch: logging every step costs
about 15% of an MNIST epoch on a 2-core CPU, and torchmetrics synchronises its state over DDP processes
at ``compute()``, so epoch metrics cover the whole split exactly once.

Training uses Lightning's manual optimization so that one Lightning step can run several ordinary
optimizer steps: the in-memory loader hands over K mini-batches at once (``data.steps_per_execution``)
and :meth:`Classifier.training_step` runs forward, backward, clipping, ``step`` and the per-step
schedulers on each in turn, in the order a one-batch-per-step loop would. Lightning's per-step cost
(hooks, loops, result collection: about 1 ms) is then paid once per K optimizer steps. ``global_step``
counts optimizer steps whatever K is. Nothing reads a tensor back to the host per step: the finite-loss
guard records the first non-finite step in a tensor and checks it at epoch end and before checkpoints.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as L
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import ConfusionMatrix, MaxMetric, Metric

from neuronlab.errors import ConfigError, NeuronlabError
from neuronlab.models.mlp import probabilities

OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[..., Any]


def _plain(value: Any) -> Any:
    """Turn mappings/sequences (e.g. OmegaConf containers) into dicts/lists of plain values."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


OPTIMIZERS: dict[str, type] = {
    _path(cls): cls for cls in (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD)
}
SCHEDULERS: dict[str, type] = {
    _path(cls): cls
    for cls in (
        torch.optim.lr_scheduler.CosineAnnealingLR,
        torch.optim.lr_scheduler.StepLR,
        torch.optim.lr_scheduler.ReduceLROnPlateau,
    )
}
"""The only classes a stored optimizer/scheduler description may name (explicit allow-lists)."""


def describe_factory(factory: Callable[..., Any] | None) -> dict[str, Any] | None:
    """Plain description of an optimizer/scheduler partial: its class path and keyword arguments."""
    if factory is None:
        return None
    func = getattr(factory, "func", factory)
    return {"name": f"{func.__module__}.{func.__qualname__}", **_plain(getattr(factory, "keywords", {}))}


def factory_from_description(
    description: Mapping[str, Any] | None, allowed: Mapping[str, type], what: str
) -> Callable[..., Any] | None:
    """The partial that :func:`describe_factory` described, from an allow-list of classes only; the keyword
    arguments must be the class's own and plain values (they may come from a file someone sent)."""
    if description is None:
        return None
    if not isinstance(description, Mapping):
        raise ValueError(f"{what}: expected a mapping of plain values, got {type(description).__name__}")
    kwargs = dict(description)
    name = kwargs.pop("name", None)
    cls = allowed.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f"{what}: {name!r} is not allowed (allowed: {', '.join(allowed)})")
    params = set(inspect.signature(cls.__init__).parameters) - {"self", "params", "optimizer"}
    for key, value in kwargs.items():
        if key not in params:
            raise ValueError(f"{what}: {cls.__name__} has no argument {key!r}")
        if not _is_plain_value(value):
            raise ValueError(f"{what}.{key}={value!r} is not a plain value")
    return functools.partial(cls, **kwargs)


def _is_plain_value(value: Any) -> bool:
    if isinstance(value, list | tuple):
        return len(value) <= 16 and all(_is_plain_value(v) for v in value)
    return value is None or isinstance(value, bool | int | float | str)


class EpochStats(Metric):
    """An epoch's loss and accuracy: summed loss, correct predictions, samples.

    One cheap update per step (in-place adds, no input checks: two stock torchmetrics updates cost about
    as much as Lightning's whole per-step overhead on a small MLP); summed over DDP processes by
    torchmetrics at ``compute()``, so the epoch values cover each sample of the split exactly once.
    """

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("loss_sum", torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("correct", torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0), dist_reduce_fx="sum")

    def update(self, loss: torch.Tensor, correct: torch.Tensor, count: int) -> None:
        """``loss`` is the batch mean, ``correct`` the number of right predictions among ``count``."""
        self.loss_sum.add_(loss * count)
        self.correct.add_(correct)
        self.count.add_(count)

    def compute(self) -> tuple[torch.Tensor, torch.Tensor]:
        count = self.count.clamp(min=1)
        return self.loss_sum / count, self.correct.float() / count


class Classifier(L.LightningModule):
    """Loss on logits (BCE-with-logits or cross-entropy), accuracy per epoch, best validation accuracy.

    Receives a built net and optimizer/scheduler factories (``functools.partial``), never a config.
    Only plain values are saved as hyper-parameters, so checkpoints load with ``weights_only=True``.
    """

    gradient_clip: tuple[float, str] | None = None  # (value, "norm" | "value"): see configure_callbacks
    first_nonfinite = torch.tensor(-1)  # the first optimizer step with a non-finite loss (-1: none)
    _plain_steps = False  # the first K-1 steps of a group skip Lightning's hooks: see training_step

    def __init__(
        self,
        net: nn.Module | Mapping[str, Any],
        optimizer: OptimizerFactory | Mapping[str, Any] | None = None,
        scheduler: SchedulerFactory | Mapping[str, Any] | None = None,
        num_classes: int | None = None,
        scheduler_monitor: str = "val/loss",
        compile: bool = False,
    ) -> None:
        super().__init__()
        # Lightning's load_from_checkpoint passes the stored plain descriptions: rebuild from allow-lists
        if isinstance(net, Mapping):
            from neuronlab.models import build_net

            net = build_net(net)
        if not isinstance(net, nn.Module):
            raise ValueError(f"net: expected a mapping of plain values (a net description), got {net!r}")
        if isinstance(optimizer, Mapping):
            optimizer = factory_from_description(optimizer, OPTIMIZERS, "optimizer")
        if isinstance(scheduler, Mapping):  # empty: conf/scheduler/none.yaml, no schedule
            scheduler = factory_from_description(scheduler or None, SCHEDULERS, "scheduler")
        if num_classes is not None and not (
            isinstance(num_classes, int) and not isinstance(num_classes, bool) and num_classes >= 2
        ):
            raise ConfigError(f"num_classes={num_classes!r} must be an integer >= 2")
        if not isinstance(compile, bool):
            raise ConfigError(f"task.compile={compile!r} must be true or false")
        self.net = net
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.scheduler_monitor = scheduler_monitor
        self.compile_net = compile
        out = int(getattr(net, "output_size", 0))
        self.binary = out == 1
        self.num_classes = int(num_classes or (2 if self.binary else out))
        if out != self.num_classes and not (self.binary and self.num_classes == 2):
            raise ConfigError(f"the net has {out} outputs but the data has {self.num_classes} classes")
        task = "binary" if self.binary else "multiclass"
        kwargs: dict[str, Any] = (
            {"task": task} if self.binary else {"task": task, "num_classes": self.num_classes}
        )
        self.automatic_optimization = False  # several optimizer steps per Lightning step: see training_step
        self.train_stats, self.val_stats, self.test_stats = EpochStats(), EpochStats(), EpochStats()
        self.val_acc_best = MaxMetric()
        self.val_acc_best.persistent(True)  # survives a resume from checkpoint
        self.test_confusion = ConfusionMatrix(**kwargs)
        config = net.config() if hasattr(net, "config") else {"_target_": type(net).__qualname__}
        self.save_hyperparameters(
            {
                "net": config,
                "num_classes": self.num_classes,
                "optimizer": describe_factory(optimizer),
                "scheduler": describe_factory(scheduler),
                "compile": bool(compile),
            },
            logger=False,
        )

    @classmethod
    def load_from_checkpoint(  # type: ignore[override]
        cls,
        checkpoint_path: str | Path,
        map_location: Any = None,
        hparams_file: str | Path | None = None,
        strict: bool | None = None,
        weights_only: bool | None = None,
        **kwargs: Any,
    ) -> Classifier:
        """Lightning's standard loader, through neuronlab's safe one: ``weights_only=True`` always, every
        stored value checked, the net rebuilt from an allow-list
        (:func:`neuronlab.io.checkpoint.load_classifier` is the same code). ``kwargs`` override stored
        hyper-parameters (e.g. ``optimizer=partial(...)``)."""
        from neuronlab.io.checkpoint import classifier_from_checkpoint, load_checkpoint

        if weights_only is False:
            raise ValueError("neuronlab checkpoints load with weights_only=True only: they hold no code")
        checkpoint = load_checkpoint(checkpoint_path, map_location=map_location)
        if hparams_file is not None:
            import yaml

            hparams = yaml.safe_load(Path(hparams_file).read_text())
            if not isinstance(hparams, dict):
                raise ValueError(f"hparams_file={hparams_file}: expected a mapping of hyper-parameters")
            checkpoint["hyper_parameters"] = hparams
        return classifier_from_checkpoint(checkpoint, checkpoint_path, strict=strict is not False, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def setup(self, stage: str) -> None:
        """Lightning calls this once the DataModule is set up, before training or testing starts."""
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is not None:
            self.check_data(datamodule)

    def check_data(self, datamodule: Any) -> None:
        """A net whose input or output size does not fit the data is refused (the one place this is
        checked: train and eval both reach it through :meth:`setup`)."""
        net, name = self.net, getattr(datamodule, "name", None) or type(datamodule).__name__
        inputs, outputs = getattr(net, "input_size", None), getattr(net, "output_size", None)
        features, classes = getattr(datamodule, "input_size", None), getattr(datamodule, "num_classes", None)
        if inputs is not None and features is not None and inputs != features:
            raise NeuronlabError(
                f"model.input_size={inputs} does not match data={name}, whose samples have "
                f"{features} features: pick a model made for it or set model.input_size={features}"
            )
        if outputs is None or classes is None:
            return
        expected = 1 if classes == 2 and outputs == 1 else classes
        if outputs != expected:
            raise NeuronlabError(
                f"model.output_size={outputs} does not match data={name}, which has "
                f"{classes} classes: set model.output_size={classes}"
                + (" (or 1 for a single sigmoid output)" if classes == 2 else "")
            )

    def configure_model(self) -> None:
        if self.compile_net:
            self.net.compile()  # in place: state_dict keys stay those of the plain net

    def _step(
        self, batch: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, y = batch
        logits = self.net(x)
        if self.binary:
            loss = F.binary_cross_entropy_with_logits(logits.squeeze(-1), y.float())
            return loss, probabilities(logits), y
        return F.cross_entropy(logits, y), logits, y

    def _correct(self, preds: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """How many predictions are right (threshold 0.5 for binary, argmax otherwise)."""
        hits = (preds > 0.5).long() == y if self.binary else preds.argmax(-1) == y
        return hits.sum()

    def training_step(self, batch: Any, batch_idx: int) -> None:
        """One optimizer step per mini-batch: ``batch`` is one ``(x, y)`` pair or a list of them.

        The last step of the group goes through Lightning (``manual_backward``, ``LightningOptimizer``:
        precision plugin, DDP's reducer, the callbacks' ``on_before_backward``/``on_after_backward``/
        ``on_before_optimizer_step`` hooks). The steps before it do too under DDP or a gradient scaler
        (16-mixed); otherwise they run as a plain loop would, with the same clipping and step counting
        but without the callback hooks: as with Keras's ``steps_per_execution``, callbacks see those
        hooks once per K optimizer steps, and every step with K=1."""
        steps = [batch] if isinstance(batch[0], torch.Tensor) else batch
        optimizer = self.optimizers()
        first_step = self.global_step
        losses = []
        for i, (x, y) in enumerate(steps):
            loss, preds, y = self._step((x, y))
            if self._plain_steps and i < len(steps) - 1:
                self._plain_step(loss, optimizer.optimizer)
            else:
                self.manual_backward(loss)  # through Lightning's precision plugin and DDP's reducer
                optimizer.step()  # clipping happens in on_before_optimizer_step, after any unscaling
                optimizer.zero_grad(set_to_none=True)
            self._step_schedulers("step")
            loss = loss.detach()
            self.train_stats.update(loss, self._correct(preds.detach(), y), len(y))
            losses.append(loss)
        self._watch_finite(torch.stack(losses), first_step)
        # Lightning adds 1 after each of its steps; loggers take their x-axis from this count (and
        # checkpoints store it): keep it equal to optimizer steps, as under automatic optimization
        self.trainer.fit_loop.epoch_loop._batches_that_stepped += len(steps) - 1

    def _plain_step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        """What ``manual_backward`` + ``LightningOptimizer.step`` do on one device without a gradient
        scaler, less the callbacks' hooks: backward, clipping, step, and the optimizer-step count that
        ``global_step`` reads."""
        progress = self.trainer.fit_loop.epoch_loop.manual_optimization.optim_step_progress
        progress.increment_ready()
        self.backward(loss)
        self.on_before_optimizer_step(optimizer)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        progress.increment_completed()

    def _can_step_plainly(self) -> bool:
        """One device, and a precision plugin whose backward and step add nothing to a plain loop's
        (Lightning's own classes, no gradient scaler): checked once, as training starts."""
        from lightning.pytorch.plugins.precision import (
            DoublePrecision,
            HalfPrecision,
            MixedPrecision,
            Precision,
        )
        from lightning.pytorch.strategies import SingleDeviceStrategy

        strategy = self.trainer.strategy
        precision = strategy.precision_plugin
        return (
            type(strategy) is SingleDeviceStrategy
            and type(precision) in (Precision, MixedPrecision, DoublePrecision, HalfPrecision)
            and getattr(precision, "scaler", None) is None
        )

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """``trainer.gradient_clip_val`` (taken over in :meth:`configure_callbacks`), applied per step."""
        if self.gradient_clip is not None:
            value, algorithm = self.gradient_clip
            self.clip_gradients(optimizer, gradient_clip_val=value, gradient_clip_algorithm=algorithm)

    def configure_callbacks(self) -> list[Any]:
        """Lightning calls this as it attaches the model, before it checks its settings; Lightning refuses
        ``Trainer(gradient_clip_val=...)`` with manual optimization, so the value moves here, where
        :meth:`on_before_optimizer_step` clips with it (the one place it leaves the Trainer's hands)."""
        trainer = self.trainer
        if trainer.gradient_clip_val:
            self.gradient_clip = (
                float(trainer.gradient_clip_val),
                str(trainer.gradient_clip_algorithm or "norm"),
            )
            trainer.gradient_clip_val = None
        return []

    def _step_schedulers(self, interval: str) -> None:
        """Step the schedulers declared with this ``interval`` (every ``frequency`` steps or epochs), as
        Lightning does under automatic optimization; ReduceLROnPlateau with ``scheduler_monitor``'s value
        (skipped while that metric has not been logged yet, e.g. before the first validation)."""
        count = self.global_step if interval == "step" else self.current_epoch + 1
        for config in self.trainer.lr_scheduler_configs:
            if config.interval != interval or count % config.frequency:
                continue
            if isinstance(config.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                value = self.trainer.callback_metrics.get(self.scheduler_monitor)
                if value is not None:
                    config.scheduler.step(value)
            else:
                config.scheduler.step()

    def _watch_finite(self, losses: torch.Tensor, first_step: int) -> None:
        """Remember the first optimizer step whose loss was not finite, without a host sync."""
        bad = ~torch.isfinite(losses)
        step = first_step + bad.int().argmax()
        self.first_nonfinite = torch.where(
            (self.first_nonfinite < 0) & bad.any(), step, self.first_nonfinite.to(losses.device)
        )

    def _check_finite(self) -> None:
        """Raise (before any checkpoint of such weights is written) if a training loss was not finite.
        Checked at every epoch end, so the first bad step always lies in the current epoch."""
        step = int(self.first_nonfinite)  # one host sync, at epoch end or before a checkpoint
        if step >= 0:
            raise self._diverged("the training loss was not finite", step=step)

    def on_train_start(self) -> None:
        self.first_nonfinite = torch.tensor(-1, device=self.device)
        self._plain_steps = self._can_step_plainly()

    def on_train_epoch_end(self) -> None:
        self._check_finite()
        self._log_epoch("train", self.train_stats)
        self._step_schedulers("epoch")

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        loss, preds, y = self._step(batch)
        self.val_stats.update(loss, self._correct(preds, y), len(y))

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
        loss, preds, y = self._step(batch)
        self.test_stats.update(loss, self._correct(preds, y), len(y))
        self.test_confusion.update(preds, y)

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test", self.test_stats)

    def on_test_epoch_start(self) -> None:
        self.test_confusion.reset()

    def predict_step(self, batch: Any, batch_idx: int = 0) -> torch.Tensor:
        """Probabilities: ``(N,)`` P(class 1) for binary tasks (sigmoid), ``(N, C)`` softmax otherwise."""
        x = batch[0] if isinstance(batch, list | tuple) else batch
        return probabilities(self.net(x))

    def _log_epoch(self, stage: str, stats: EpochStats) -> tuple[torch.Tensor, torch.Tensor]:
        """Compute (synchronised over processes), log once, reset. Returns (loss, accuracy)."""
        loss, acc = stats.compute()
        stats.reset()
        values = {f"{stage}/loss": loss, f"{stage}/acc": acc}
        if not self.trainer.sanity_checking:
            # already synchronised by torchmetrics; sync_dist averages identical values, exactly
            self.log_dict(values, sync_dist=True)
        return values[f"{stage}/loss"], values[f"{stage}/acc"]

    def _diverged(self, what: str, epoch: int | None = None, step: int | None = None) -> FloatingPointError:
        epoch = self.current_epoch if epoch is None else epoch
        step = self.global_step if step is None else step
        precision = str(self._trainer.precision) if self._trainer is not None else "32-true"
        advice = (
            f"trainer.precision={precision} keeps the weights themselves in 16 bits, too few for these "
            "updates: use trainer.precision=16-mixed or bf16-mixed (or 32-true)"
            if precision in ("16-true", "bf16-true", "16", "bf16")
            else "lower optimizer.lr and try again"
        )
        return FloatingPointError(
            f"{what} at epoch {epoch}, step {step}: training stopped and the last "
            f"good checkpoint is kept; {advice}"
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
        if self.optimizer_factory is None:
            raise RuntimeError("Classifier was built without an optimizer; it can only evaluate")
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer=optimizer)
        # stepped by _step_schedulers (manual optimization); ReduceLROnPlateau reads scheduler_monitor
        # (no "monitor" key: Lightning ignores it under manual optimization, with a warning)
        config = {"scheduler": scheduler, "interval": "epoch"}
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            # it reads val/loss: step it on the epochs that validate (every 10th for the gates)
            config["frequency"] = self.trainer.check_val_every_n_epoch or 1
        return {"optimizer": optimizer, "lr_scheduler": config}
