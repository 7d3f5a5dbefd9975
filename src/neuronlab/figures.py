"""What the network learned, as TensorBoard figures: one Lightning callback, :class:`FiguresCallback`.

Once per fit: the activation functions and the model graph. At validation end (every ``every_n_epochs``)
and at test end: a grid of images with predicted and true labels (mistakes in red) for the MNIST family,
the decision boundary over the unit square for the gates. At test end also the confusion matrix, the
accuracy per class (a bar chart and ``test/acc_class/<name>`` scalars) and a grid of mistakes.

Figures are plain matplotlib Figures on the Agg canvas (no pyplot state), rendered to an RGB array and
written with ``SummaryWriter.add_image``. Only TensorBoard loggers receive them, only on rank zero.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence
from typing import Any

import lightning.pytorch as L
import numpy as np
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_warn
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

CELL_H, CELL_W = 42, 34  # montage cell in pixels of the 28x28 images: room for a label above each


def new_figure(width: float, height: float, layout: str | None = "constrained") -> Figure:
    """A figure on the Agg canvas; ``layout=None`` for figures drawn every validation: the constrained
    layout engine is more than half of their drawing time, so they place their axes by hand."""
    fig = Figure(figsize=(width, height), dpi=100, layout=layout)
    FigureCanvasAgg(fig)  # off-screen rendering, never a window
    return fig


def to_rgb(fig: Figure) -> np.ndarray:
    """Render a figure to an ``(H, W, 3)`` uint8 array."""
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def prediction_grid(
    images: torch.Tensor, preds: Sequence[int], targets: Sequence[int], classes: Sequence[str], title: str
) -> Figure:
    """Images in one montage, each titled with its predicted class; mistakes in red with the true class."""
    n = len(images)
    cols = min(8, max(n, 1))
    rows = max(1, math.ceil(n / cols))
    montage = np.ones((rows * CELL_H, cols * CELL_W), np.float32)  # white paper between images
    pictures = images.reshape(n, 28, 28).float()
    for i, picture in enumerate(pictures):
        low, high = picture.min(), picture.max()
        r, c = divmod(i, cols)
        y, x = r * CELL_H + CELL_H - 30, c * CELL_W + (CELL_W - 28) // 2
        montage[y : y + 28, x : x + 28] = ((picture - low) / (high - low + 1e-8)).numpy()
    height = rows * 1.5 + 0.4
    fig = new_figure(cols * 1.25, height, layout=None)
    ax = fig.add_axes((0.01, 0.01, 0.98, 1 - 0.4 / height))
    ax.imshow(montage, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    for i, (pred, target) in enumerate(zip(preds, targets, strict=True)):
        r, c = divmod(i, cols)
        wrong = pred != target
        label = f"{classes[pred]}\n(true {classes[target]})" if wrong else classes[pred]
        ax.text(
            c * CELL_W + CELL_W / 2,
            r * CELL_H + CELL_H - 31,
            label,
            ha="center",
            va="bottom",
            fontsize=7,
            color="red" if wrong else "black",
        )
    ax.set_axis_off()
    ax.set_title(f"{title}: predicted class (mistakes in red, with the true class)", fontsize=9)
    return fig


def confusion_figure(confusion: np.ndarray, classes: Sequence[str]) -> Figure:
    """Counts per (true, predicted) pair, coloured by the share of the true class's samples."""
    size = 1.5 + 0.55 * len(classes)
    fig = new_figure(size + 1, size)
    ax = fig.add_subplot()
    shares = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (t, p), count in np.ndenumerate(confusion):
        ax.text(
            p,
            t,
            str(int(count)),
            ha="center",
            va="center",
            fontsize=7,
            color="white" if shares[t, p] > 0.5 else "black",
        )
    ticks = np.arange(len(classes))
    ax.set_xticks(ticks, classes, rotation=45 if max(map(len, classes)) > 2 else 0, ha="right", fontsize=8)
    ax.set_yticks(ticks, classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("test confusion matrix (colour: share of the true class)", fontsize=9)
    fig.colorbar(image, ax=ax, shrink=0.8)
    return fig


def per_class_figure(accuracy: np.ndarray, classes: Sequence[str]) -> Figure:
    fig = new_figure(1.5 + 0.6 * len(classes), 3.5)
    ax = fig.add_subplot()
    bars = ax.bar(np.arange(len(classes)), accuracy, color="tab:blue")
    ax.bar_label(bars, [f"{a:.2f}" for a in accuracy], fontsize=7)
    ax.set_xticks(
        np.arange(len(classes)), classes, rotation=45 if max(map(len, classes)) > 2 else 0, ha="right"
    )
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("accuracy")
    ax.set_title("test accuracy per class", fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    return fig


def boundary_figure(net: torch.nn.Module, points: torch.Tensor, labels: torch.Tensor, title: str) -> Figure:
    """P(class 1) over the unit square (a little beyond), the 0.5 contour, and the gate's four points."""
    steps = torch.linspace(-0.25, 1.25, 121)
    xx, yy = torch.meshgrid(steps, steps, indexing="xy")
    grid = torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)
    prob = probability_of_one(net, grid).reshape(xx.shape).numpy()
    fig = new_figure(4.6, 4, layout=None)
    ax = fig.add_axes((0.14, 0.12, 0.64, 0.8))
    filled = ax.contourf(xx.numpy(), yy.numpy(), prob, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.8)
    ax.contour(xx.numpy(), yy.numpy(), prob, levels=[0.5], colors="black", linewidths=1.5)
    pred = probability_of_one(net, points)
    for (x, y), label, p in zip(points.tolist(), labels.tolist(), pred.tolist(), strict=True):
        ax.scatter(x, y, s=120, c="tab:red" if label else "tab:blue", edgecolors="black", zorder=3)
        right = x > 0.5  # label on the inner side of the point, inside the axes
        ax.annotate(
            f"{int(label)}  (P={p:.2f})",
            (x, y),
            textcoords="offset points",
            xytext=(-9 if right else 9, 9),
            ha="right" if right else "left",
            fontsize=8,
        )
    ax.set_xlim(-0.25, 1.25)
    ax.set_ylim(-0.25, 1.25)
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.set_title(f"{title}: P(class 1), boundary at 0.5", fontsize=9)
    fig.colorbar(filled, cax=fig.add_axes((0.82, 0.12, 0.035, 0.8)))
    return fig


def probability_of_one(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    logits = run_net(net, x)
    return torch.sigmoid(logits[:, 0]) if logits.shape[1] == 1 else torch.softmax(logits, dim=1)[:, 1]


@functools.cache
def activations_image() -> np.ndarray:
    """The lesson's activation functions figure, rendered once per process (it never changes)."""
    from neuronlab.scratch.plots import activation_figure

    return to_rgb(activation_figure())


def run_net(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Logits on CPU for inputs on CPU, whatever the net's device and dtype; no dropout, no gradients."""
    param = next(net.parameters())
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            return net(x.to(param.device, param.dtype)).float().cpu()
    finally:
        net.train(was_training)


class FiguresCallback(L.Callback):
    """Log the figures above to every TensorBoard logger of the trainer (a no-op without one).

    ``every_n_epochs``: validation figures every n epochs; ``None``: after each of the first 10
    validations, then the 16th, 32nd, 64th, ... (every epoch of a 5-epoch MNIST run, a dozen figures at
    most for 1000 gate epochs, denser early on where the boundary moves most). Test figures always.
    """

    def __init__(self, every_n_epochs: int | None = None, num_images: int = 24, graph: bool = True) -> None:
        super().__init__()
        if every_n_epochs is not None and int(every_n_epochs) <= 0:
            raise ValueError(
                f"callbacks.figures.every_n_epochs={every_n_epochs} must be a positive integer or null"
            )
        self.every_n_epochs = every_n_epochs
        self.num_images = int(num_images)
        self.graph = bool(graph)
        self.validations = 0

    @staticmethod
    def writers(trainer: L.Trainer) -> list[Any]:
        if not trainer.is_global_zero:
            return []
        return [lg.experiment for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]

    def log_figure(self, trainer: L.Trainer, tag: str, fig: Figure) -> None:
        image = to_rgb(fig)
        for writer in self.writers(trainer):
            writer.add_image(tag, image, trainer.global_step, dataformats="HWC")

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        writers = self.writers(trainer)
        if not writers:
            return
        for writer in writers:
            writer.add_image("model/activations", activations_image(), trainer.global_step, dataformats="HWC")
        if self.graph:
            example = self._split(trainer, "train")
            x = example[0][:1] if example else torch.zeros(1, int(getattr(pl_module.net, "input_size", 1)))
            self._log_graph(writers, pl_module.net, x)

    def _log_graph(self, writers: list[Any], net: torch.nn.Module, x: torch.Tensor) -> None:
        """The net's graph (traced with ``torch.jit``, as TensorBoard needs), in eval mode: no dropout RNG."""
        param = next(net.parameters())
        was_training = net.training
        net.eval()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch.jit's deprecation and tracer notes: harmless here
                for writer in writers:
                    writer.add_graph(net, x.to(param.device, param.dtype))
        except Exception as err:  # e.g. a compiled net: the graph is a nicety, never a reason to stop
            rank_zero_warn(f"the model graph was not logged to TensorBoard ({type(err).__name__}: {err})")
        finally:
            net.train(was_training)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not self.writers(trainer):
            return
        self.validations += 1
        k = self.validations
        due = (
            (trainer.current_epoch + 1) % self.every_n_epochs == 0
            if self.every_n_epochs
            else k <= 10 or k & (k - 1) == 0
        )
        if due:
            self._log_predictions(trainer, pl_module, "val")

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        confusion_metric = getattr(pl_module, "test_confusion", None)
        confusion = None
        if confusion_metric is not None and confusion_metric.update_count > 0:
            confusion = confusion_metric.compute().cpu().numpy()  # every rank: synchronises under DDP
        if not self.writers(trainer):
            return
        self._log_predictions(trainer, pl_module, "test")
        if confusion is None:
            return
        classes = self._classes(trainer, len(confusion))
        self.log_figure(trainer, "test/confusion_matrix", confusion_figure(confusion, classes))
        accuracy = np.diag(confusion) / np.maximum(confusion.sum(axis=1), 1)
        self.log_figure(trainer, "test/acc_per_class", per_class_figure(accuracy, classes))
        scalars = {
            f"test/acc_class/{name.replace('/', '-')}": float(a)
            for name, a in zip(classes, accuracy, strict=True)
        }
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.log_metrics(scalars, trainer.global_step)

    def _log_predictions(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        split = self._split(trainer, stage)
        if split is None:
            return
        x, y = split
        net = pl_module.net
        if x.ndim == 2 and x.shape[1] == 2:  # the gates: four points in the plane
            name = str(getattr(trainer.datamodule, "gate", "gate")).upper()
            self.log_figure(trainer, f"{stage}/decision_boundary", boundary_figure(net, x, y, name))
            return
        classes = self._classes(trainer, int(y.max()) + 1)
        n = self.num_images
        preds = run_net(net, x[:n]).argmax(dim=1)
        fig = prediction_grid(x[:n], preds.tolist(), y[:n].tolist(), classes, f"{stage} images")
        self.log_figure(trainer, f"{stage}/predictions", fig)
        if stage == "test":
            preds = torch.cat([run_net(net, chunk).argmax(dim=1) for chunk in x.split(2000)])
            wrong = (preds != y).nonzero().squeeze(1)[:n]
            if len(wrong):
                fig = prediction_grid(
                    x[wrong], preds[wrong].tolist(), y[wrong].tolist(), classes, "test mistakes"
                )
                self.log_figure(trainer, "test/mistakes", fig)

    @staticmethod
    def _split(trainer: L.Trainer, name: str) -> tuple[torch.Tensor, torch.Tensor] | None:
        splits = getattr(trainer.datamodule, "splits", None) or {}
        split = splits.get(name)
        return split if split is not None and len(split[0]) else None

    @staticmethod
    def _classes(trainer: L.Trainer, count: int) -> list[str]:
        classes = getattr(trainer.datamodule, "classes", None)
        return list(classes) if classes and len(classes) >= count else [str(i) for i in range(count)]
