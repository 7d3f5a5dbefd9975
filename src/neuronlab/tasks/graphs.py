"""The K optimizer steps of one Lightning step recorded once as a CUDA graph and replayed for each group:
the opt-in speed path beside :class:`GroupedClassifier`, and the only code that knows about CUDA graphs.

Why it pays: a small net is bound by launches, not arithmetic (a 235 k-parameter MLP at batch 64 spends
about a millisecond per step on an H100, in Python and some fifty small kernel launches). One replay runs
K whole steps (forward, loss, backward, clipping, optimizer step, zero-grad, running sums) as one launch.

How: PyTorch's documented whole-network capture. Each fit's first full group runs eagerly on a side stream
(warm-up); the next is recorded with ``torch.cuda.graph`` and replayed for every later group, copied into
static buffers. The optimizer runs capturable (a device-tensor learning rate that per-epoch schedulers
update in place); dropout stays reproducible (the CUDA generator is graph-safe). Other groups (the epoch's
last) run the same :meth:`GraphClassifier.group_steps` eagerly: the CPU tests prove it equals
:class:`GroupedClassifier`. Not ``torch.compile(mode="reduce-overhead")``: it records forward and backward
apart and falls back silently on graph breaks, so what it runs cannot be checked on a CPU.

For callbacks: ``on_before_backward``, ``on_after_backward``, ``on_before_optimizer_step`` and
``on_before_zero_grad`` cannot run inside a replay (the module's own clipping is recorded), so ``auto``
stays off when a callback uses them; ``on_train_batch_start``/``end`` run once per group. The steps bypass
the LightningOptimizer, so this file advances ``global_step``'s count itself, guarded by a test.

``task.cuda_graphs``: ``auto`` (on where supported: one CUDA device, 32-true or bf16-mixed, an in-memory
DataModule without augmentation handing over K > 1 mini-batches, a capturable optimizer, per-epoch or no
schedulers; otherwise off, with one logged line saying why), ``true`` (unsupported is a configuration
error before training), ``false`` (the eager grouped steps, every hook).
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import lightning.pytorch as L
import torch

from neuronlab.errors import ConfigError
from neuronlab.tasks.classifier import EpochStats
from neuronlab.tasks.grouped import GroupedClassifier

log = logging.getLogger(__name__)

PRECISIONS = ("32-true", "bf16-mixed")
PER_STEP_HOOKS = (
    "on_before_backward",
    "on_after_backward",
    "on_before_optimizer_step",
    "on_before_zero_grad",
)


def unsupported(trainer: L.Trainer, task: L.LightningModule) -> str | None:
    """Why this run's groups cannot be captured as a CUDA graph, or ``None`` where they can."""
    datamodule = getattr(trainer, "datamodule", None)
    k = getattr(datamodule, "steps_per_execution", 1)
    optimizers = trainer.optimizers
    if trainer.world_size > 1:
        return f"{trainer.world_size} processes (DDP): each step waits on the others' gradients"
    precision = str(trainer.precision)
    if precision not in PRECISIONS:
        scaler = " (its gradient scaler checks every step on the host)" if "16-mixed" in precision else ""
        return f"trainer.precision={precision}{scaler}: only {' and '.join(PRECISIONS)} are captured"
    if getattr(task, "compile_net", False):
        return "task.compile=true (a compiled net is not recorded by hand)"
    if datamodule is None or not hasattr(datamodule, "splits"):
        return "the training data is not an in-memory neuronlab DataModule"
    if getattr(datamodule, "augment", None) is not None:
        return f"data.augment={datamodule.augment} (per-sample transforms on the host)"
    if k == 1:
        return "data.steps_per_execution=1 (one mini-batch per step: nothing to group)"
    if len(optimizers) != 1 or "capturable" not in optimizers[0].defaults:
        names = ", ".join(type(optimizer).__name__ for optimizer in optimizers) or "none"
        return f"optimizer {names} has no capturable step (Adam and AdamW have)"
    if any(config.interval == "step" for config in trainer.lr_scheduler_configs):
        return "a scheduler steps per optimizer step (per-epoch schedulers are supported)"
    for callback in trainer.callbacks:
        hooks = [h for h in PER_STEP_HOOKS if getattr(type(callback), h) is not getattr(L.Callback, h)]
        if hooks:
            return f"callback {type(callback).__name__} uses {hooks[0]}, which cannot run inside a graph"
    if task.device.type != "cuda":  # last: on the CPU, each setting above still names itself
        return f"the run is on the {task.device.type.upper()} (CUDA graphs need trainer=gpu)"
    return None


class GraphClassifier(GroupedClassifier):
    """:class:`GroupedClassifier` whose groups of K optimizer steps replay one recorded CUDA graph
    (``cuda_graphs``: ``auto``, ``true`` or ``false``; see the module's docstring)."""

    capture = False  # decided in on_fit_start

    def __init__(self, *args: Any, cuda_graphs: bool | str = "auto", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not (cuda_graphs == "auto" or isinstance(cuda_graphs, bool)):
            raise ConfigError(f"task.cuda_graphs={cuda_graphs!r} must be auto, true or false")
        self.cuda_graphs = cuda_graphs
        self.group_stats = EpochStats()  # the running sums the graph adds to; folded in at epoch end
        self.graph: torch.cuda.CUDAGraph | None = None
        self.static: list[tuple[torch.Tensor, torch.Tensor]] = []  # the graph's input buffers
        self.step0 = torch.tensor(0)  # global_step as the group begins (for first_nonfinite)

    def on_fit_start(self) -> None:
        """Decide once, after the Trainer has built the optimizers and before training or a restore."""
        reason = None if self.cuda_graphs is False else unsupported(self.trainer, self)
        if reason is not None and self.cuda_graphs is True:
            raise ConfigError(f"task.cuda_graphs=true but {reason}: set task.cuda_graphs=auto or false")
        self.capture = self.cuda_graphs is not False and reason is None
        if self.cuda_graphs == "auto" and self.trainer.is_global_zero:  # one line, not one per process
            log.info("CUDA graphs %s", f"off: {reason}" if reason else "on: each group of steps is replayed")

    def on_train_start(self) -> None:
        """After a restore, before the first step: the optimizer in its capturable mode (through its own
        ``load_state_dict``, which moves its step counters to the device), a fresh recording per fit."""
        super().on_train_start()
        self.graph, self.static = None, []
        self.step0 = torch.zeros((), dtype=torch.long, device=self.device)
        if self.capture and self.device.type == "cuda":
            optimizer = self.optimizers().optimizer
            state = optimizer.state_dict()
            for group in state["param_groups"]:  # a tensor lr: schedulers update it in place
                group.update(capturable=True, lr=torch.as_tensor(group["lr"], device=self.device))
            optimizer.load_state_dict(state)

    def training_step(self, batch: Any, batch_idx: int) -> None:  # type: ignore[override]
        if not self.capture:
            return super().training_step(batch, batch_idx)
        group = [batch] if isinstance(batch[0], torch.Tensor) else batch
        optimizer = self.optimizers().optimizer
        self.step0.fill_(self.global_step)
        shapes = [(x.shape, y.shape) for x, y in group]
        k = self.trainer.datamodule.steps_per_execution
        recordable = self.device.type == "cuda" and len(group) == k and len(set(shapes)) == 1
        if not recordable or (self.static and shapes != [(x.shape, y.shape) for x, y in self.static]):
            self.group_steps(group, optimizer)  # the CPU, or a group of another shape (the epoch's last)
        elif not self.static:  # the first group: real steps on a side stream, into the input buffers
            self.static = [(x.clone(), y.clone()) for x, y in group]
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side), self._autocast_without_cache(), warnings.catch_warnings():
                # torch warns once that a capturable optimizer steps uncaptured: here it is meant to
                warnings.filterwarnings("ignore", "This instance was constructed with capturable=True")
                self.group_steps(self.static, optimizer)
            torch.cuda.current_stream().wait_stream(side)
        else:
            for (x, y), (sx, sy) in zip(group, self.static, strict=True):
                sx.copy_(x)
                sy.copy_(y)
            if self.graph is None:  # recording runs nothing: the replay below trains on this group
                self.graph = torch.cuda.CUDAGraph()
                optimizer.zero_grad(set_to_none=True)  # gradients then live in the graph's memory
                with torch.cuda.graph(self.graph), self._autocast_without_cache():
                    self.group_steps(self.static, optimizer)
            self.graph.replay()
        # global_step counts optimizer steps; these went past the LightningOptimizer, so count them here
        progress = self.trainer.fit_loop.epoch_loop.manual_optimization.optim_step_progress
        for _ in group:
            progress.increment_ready()
            progress.increment_completed()
        self._count_logged_steps(len(group))

    def group_steps(self, group: list[tuple[torch.Tensor, torch.Tensor]], optimizer: Any) -> None:
        """One optimizer step on each ``(x, y)`` of the group, on tensors only (what the graph records):
        loss, running sums, the first non-finite loss, backward, the module's clipping, step, zero-grad."""
        for i, (x, y) in enumerate(group):
            loss, preds = self._step((x, y))
            self.group_stats.update(loss.detach(), self._correct(preds.detach(), y), len(y))
            bad = (self.first_nonfinite < 0) & ~torch.isfinite(loss.detach())
            self.first_nonfinite.copy_(torch.where(bad, self.step0 + i, self.first_nonfinite))
            loss.backward()
            self.on_before_optimizer_step(optimizer)  # GroupedClassifier's clipping; no callback hooks
            optimizer.step()
            optimizer.zero_grad(set_to_none=False)  # in place: the graph keeps its gradient buffers

    def _autocast_without_cache(self) -> torch.autocast:
        """bf16-mixed's autocast, without the weight-cast cache (a graph must not keep cached casts)."""
        kind = self.device.type
        enabled = torch.is_autocast_enabled(kind)
        return torch.autocast(kind, torch.get_autocast_dtype(kind), enabled=enabled, cache_enabled=False)

    def on_train_epoch_end(self) -> None:
        if self.capture:  # fold the epoch's running sums into the logged metric (x + 0: exact); an update
            # adding zeros too, since torchmetrics does not count merge_state as one (compute would warn)
            self.train_stats.merge_state(self.group_stats)
            self.train_stats.update(*(torch.zeros_like(s) for s in self.group_stats.metric_state.values()))
            for state in self.group_stats.metric_state.values():
                state.zero_()  # in place: the graph adds to these tensors
        super().on_train_epoch_end()
