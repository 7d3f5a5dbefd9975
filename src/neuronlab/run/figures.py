"""What the network learned, as TensorBoard figures: one Lightning callback, :class:`FiguresCallback`
(the figures and when they come: docs/runs.md).

Drawn with Pillow and written as PNGs encoded once with fast compression, as ``SummaryWriter.add_image``
writes them but at half its cost; matplotlib (a second to import) stays off the training path
(docs/speed.md). Only TensorBoard loggers receive them, only on rank zero.
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import lightning.pytorch as L
import numpy as np
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_warn
from PIL import Image, ImageDraw, ImageFont

from neuronlab.config import is_int
from neuronlab.errors import ConfigError
from neuronlab.models import probabilities

SCALE = 2  # montage pixels per image pixel
# colour maps as stops between 0 and 1 (matplotlib's RdBu_r and Blues, sampled)
RDBU_R = [(0.0, (5, 48, 97)), (0.25, (67, 147, 195)), (0.5, (247, 247, 247)), (0.75, (214, 96, 77)),
          (1.0, (103, 0, 31))]  # fmt: skip
BLUES = [(0.0, (247, 251, 255)), (0.5, (107, 174, 214)), (1.0, (8, 48, 107))]
LINE_COLOURS = ["#1f77b4", "#ff7f0e"]
font = functools.cache(ImageFont.load_default)  # Pillow's bundled font, by size in pixels


class Picture:
    """An RGB canvas and the texts kept from it, in order (what a reader, or a test, checks)."""

    def __init__(self, width: int, height: int) -> None:
        self.image = Image.new("RGB", (int(width), int(height)), "white")
        self.texts: list[tuple[str, str]] = []

    @property
    def draw(self) -> ImageDraw.ImageDraw:
        return ImageDraw.Draw(self.image)

    def text(
        self, xy: tuple, text: str, anchor: str, fill: str = "black", size: int = 11, keep: bool = False
    ) -> None:
        """Draw ``text`` (lines centred); ``keep``: a label worth checking, kept in ``texts``."""
        self.draw.text(xy, text, fill=fill, font=font(size), anchor=anchor, align="center")
        if keep:
            self.texts.append((text, fill))

    def title(self, text: str, y: int = 4) -> None:
        self.text((self.image.width / 2, y), text, "mt", size=13)

    def vertical_text(self, xy: tuple[float, float], text: str, width: int) -> None:
        """``text`` turned a quarter to the left, right-aligned in ``width`` pixels, below ``xy``."""
        label = Image.new("RGB", (width, 14), "white")
        ImageDraw.Draw(label).text((width, 7), text, fill="black", font=font(11), anchor="rm")
        self.image.paste(label.rotate(90, expand=True), (int(xy[0] - 7), int(xy[1])))


def colour(values: np.ndarray, stops: Sequence[tuple[float, tuple[int, int, int]]]) -> np.ndarray:
    """Values in [0, 1] -> uint8 RGB, linearly between the colour stops (clipped at the ends)."""
    positions = [p for p, _ in stops]
    channels = [np.interp(values, positions, [c[i] for _, c in stops]) for i in range(3)]
    return np.stack(channels, axis=-1).round().astype(np.uint8)


def png_summary(tag: str, picture: Picture) -> Any:
    """A TensorBoard image summary of ``picture`` (what ``add_image`` writes, encoded once and fast)."""
    from tensorboard.compat.proto.summary_pb2 import Summary

    buffer = io.BytesIO()
    picture.image.save(buffer, format="PNG", compress_level=1)
    width, height = picture.image.size
    encoded = Summary.Image(height=height, width=width, colorspace=3, encoded_image_string=buffer.getvalue())
    return Summary(value=[Summary.Value(tag=tag, image=encoded)])


def axes_box(
    pic: Picture, box: tuple[int, int, int, int], xs: Sequence[float], ys: Sequence[float], limits: tuple
) -> Callable[[float, float], tuple[float, float]]:
    """A frame with ticks at ``xs``/``ys``; returns the data -> pixel mapping of ``limits``."""
    left, top, right, bottom = box
    x0, x1, y0, y1 = limits

    def at(x: float, y: float) -> tuple[float, float]:
        return left + (x - x0) / (x1 - x0) * (right - left), bottom - (y - y0) / (y1 - y0) * (bottom - top)

    draw = pic.draw
    draw.rectangle(box, outline="black")
    for x in xs:
        px, _ = at(x, y0)
        draw.line([(px, bottom), (px, bottom + 4)], fill="black")
        pic.text((px, bottom + 6), f"{x:g}", "mt")
    for y in ys:
        _, py = at(x0, y)
        draw.line([(left - 4, py), (left, py)], fill="black")
        pic.text((left - 6, py), f"{y:g}", "rm")
    return at


def prediction_grid(
    images: torch.Tensor, preds: Sequence[int], targets: Sequence[int], classes: Sequence[str], title: str
) -> Picture:
    """Images in one montage, each titled with its predicted class; mistakes in red with the true class.
    ``preds`` and ``targets``: class indices (a list, or a 1-D tensor)."""
    n = len(images)
    cols = min(8, max(n, 1))
    rows = max(1, math.ceil(n / cols))
    cell_w, cell_h, top = 92, 84, 30  # room for a label above each image
    pic = Picture(cols * cell_w, rows * cell_h + top)
    pixels = images.reshape(n, 28 * 28).float()
    low, high = pixels.aminmax(dim=1, keepdim=True)  # each image stretched to the full grey range
    grey = ((pixels - low) / (high - low + 1e-8) * 255).round().to(torch.uint8).reshape(n, 28, 28).numpy()
    for i, (pred, target) in enumerate(zip(map(int, preds), map(int, targets), strict=True)):
        r, c = divmod(i, cols)
        x, y = c * cell_w + (cell_w - 28 * SCALE) // 2, top + r * cell_h + cell_h - 28 * SCALE - 2
        tile = Image.fromarray(grey[i]).resize((28 * SCALE, 28 * SCALE), Image.Resampling.NEAREST)
        pic.image.paste(tile.convert("RGB"), (x, y))
        wrong = pred != target
        label = f"{classes[pred]}\n(true {classes[target]})" if wrong else classes[pred]
        pic.text((x + 14 * SCALE, y - 2), label, "md", "red" if wrong else "black", size=10, keep=True)
    pic.title(f"{title}: predicted class (mistakes in red, with the true class)", y=6)
    return pic


def confusion_figure(confusion: np.ndarray, classes: Sequence[str]) -> Picture:
    """Counts per (true, predicted) pair, coloured by the share of the true class's samples."""
    n = len(classes)
    cell, label_w = 44, 12 + 7 * max(map(len, classes))
    left, top = label_w + 24, 34
    pic = Picture(left + n * cell + 20, top + n * cell + label_w + 24)
    shares = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    colours = colour(shares, BLUES)
    draw = pic.draw
    for (t, p), count in np.ndenumerate(confusion):
        x, y = left + p * cell, top + t * cell
        draw.rectangle((x, y, x + cell, y + cell), fill=tuple(int(v) for v in colours[t, p]))
        ink = "white" if shares[t, p] > 0.5 else "black"
        pic.text((x + cell / 2, y + cell / 2), str(int(count)), "mm", ink)
    for i, name in enumerate(classes):
        pic.text((left - 6, top + i * cell + cell / 2), name, "rm")
        pic.vertical_text((left + i * cell + cell / 2, top + n * cell + 4), name, label_w)
    pic.text((left + n * cell / 2, pic.image.height - 4), "predicted", "mb", size=12)
    pic.text((4, top - 6), "true \\ predicted", "lb")
    pic.title("test confusion matrix (colour: share of the true class)")
    return pic


def per_class_figure(accuracy: np.ndarray, classes: Sequence[str]) -> Picture:
    """One bar per class, its accuracy written on top."""
    n = len(classes)
    bar, left, top, height = 48, 44, 34, 240
    label_h = 12 + 7 * max(map(len, classes))
    pic = Picture(left + n * bar + 16, top + height + label_h + 16)
    at = axes_box(pic, (left, top, left + n * bar, top + height), [], [0, 0.5, 1], (0, n, 0, 1.1))
    draw = pic.draw
    for i, (a, name) in enumerate(zip(accuracy, classes, strict=True)):
        x0, y0 = at(i + 0.15, float(a))
        x1, y1 = at(i + 0.85, 0)
        draw.rectangle((x0, y0, x1, y1), fill=LINE_COLOURS[0])
        pic.text(((x0 + x1) / 2, y0 - 2), f"{a:.2f}", "md", size=10, keep=True)
        pic.vertical_text(((x0 + x1) / 2, top + height + 6), name, label_h)
    pic.title("test accuracy per class")
    return pic


def boundary_figure(net: torch.nn.Module, points: torch.Tensor, labels: torch.Tensor, title: str) -> Picture:
    """P(class 1) over the unit square (a little beyond), the 0.5 contour, and the gate's four points."""
    size, left, top = 300, 44, 30
    steps = torch.linspace(-0.25, 1.25, size)
    yy, xx = torch.meshgrid(steps.flip(0), steps, indexing="ij")  # image rows run from y=1.25 down
    grid = torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)
    probs = probabilities(run_net(net, torch.cat([grid, points.to(grid.dtype)])))  # one pass
    probs = (probs if probs.ndim == 1 else probs[:, 1]).numpy()  # P(class 1)
    prob, pred = probs[: size * size].reshape(size, size), probs[size * size :]
    rgb = colour(prob, RDBU_R)
    above = prob > 0.5
    edge = np.zeros_like(above)
    edge[:, 1:] |= above[:, 1:] != above[:, :-1]
    edge[1:, :] |= above[1:, :] != above[:-1, :]
    edge[:, :-1] |= edge[:, 1:].copy()  # two pixels wide
    rgb[edge] = 0
    pic = Picture(left + size + 90, top + size + 34)
    pic.image.paste(Image.fromarray(rgb), (left, top))
    box = (left, top, left + size, top + size)
    at = axes_box(pic, box, [0, 0.5, 1], [0, 0.5, 1], (-0.25, 1.25, -0.25, 1.25))
    for (x, y), label, p in zip(points.tolist(), labels.tolist(), pred.tolist(), strict=True):
        px, py = at(x, y)
        fill = "#d62728" if label else "#1f77b4"  # class 1 red, class 0 blue, as the colour map
        pic.draw.ellipse((px - 8, py - 8, px + 8, py + 8), fill=fill, outline="black")
        right = x > 0.5  # label on the inner side of the point, inside the axes
        text = f"{int(label)}  (P={p:.2f})"
        pic.text((px - 11 if right else px + 11, py - 9), text, "rd" if right else "ld", keep=True)
    bar_x = left + size + 40  # the colour bar, ticked on its left
    pic.image.paste(
        Image.fromarray(colour(np.linspace(1, 0, size)[:, None].repeat(14, 1), RDBU_R)), (bar_x, top)
    )
    axes_box(pic, (bar_x, top, bar_x + 14, top + size), [], [0, 0.5, 1], (0, 1, 0, 1))
    pic.title(f"{title}: P(class 1) and the 0.5 boundary", y=6)
    return pic


@functools.cache
def activations_figure() -> Picture:
    """The lesson's activation functions (sigmoid, ReLU, tanh with their derivatives) and a softmax;
    drawn once per process (it never changes)."""
    from neuronlab.scratch import activations as act

    panel_w, panel_h = 380, 260
    pic = Picture(2 * panel_w, 2 * panel_h)
    boxes = [
        (ox + 50, oy + 30, ox + panel_w - 16, oy + panel_h - 34) for oy in (0, panel_h) for ox in (0, panel_w)
    ]
    for box, name in zip(boxes, ("Sigmoid", "ReLU", "Tanh", "Softmax"), strict=True):
        pic.text(((box[0] + box[2]) / 2, box[1] - 22), name, "mt", size=13)
    x = np.linspace(-5, 5, 201)
    curves = [
        (act.sigmoid, act.sigmoid_derivative, (-0.2, 1.2)),
        (act.relu, act.relu_derivative, (-1, 5)),
        (act.tanh, act.tanh_derivative, (-1.2, 1.2)),
    ]
    for box, name, (f, df, (y0, y1)) in zip(boxes, ("sigmoid", "relu", "tanh"), curves, strict=False):
        at = axes_box(pic, box, [-5, 0, 5], [y0 if y0 < 0 else 0, 0, y1], (-5, 5, y0, y1))
        pic.draw.line([at(-5, 0), at(5, 0)], fill="grey")
        for j, (values, label) in enumerate(((f(x), name), (df(x), "derivative"))):
            pic.draw.line([at(a, b) for a, b in zip(x, np.clip(values, y0, y1), strict=True)],
                          fill=LINE_COLOURS[j], width=2)  # fmt: skip
            pic.text((box[0] + 8, box[1] + 6 + 14 * j), label, "la", LINE_COLOURS[j])
    logits, box = np.array([2.0, 1.0, 0.1]), boxes[3]
    at = axes_box(pic, box, [], [0, 1, 2], (-0.5, 2.5, 0, 2.2))
    for j, (values, label) in enumerate(((logits, "logits"), (act.softmax(logits), "softmax (sums to 1)"))):
        for k, v in enumerate(values):
            pic.draw.rectangle((*at(k - 0.4 + 0.4 * j, float(v)), *at(k + 0.4 * j, 0)), fill=LINE_COLOURS[j])
        pic.text((box[2] - 8, box[1] + 6 + 14 * j), label, "ra", LINE_COLOURS[j])
    for k in range(3):
        pic.text((at(k, 0)[0], box[3] + 6), f"class {k}", "mt")
    return pic


@contextlib.contextmanager
def evaluating(net: torch.nn.Module) -> Iterator[torch.nn.Parameter]:
    """``net`` in eval mode (no dropout) for the block; yields a parameter (the inputs' device and dtype)."""
    was_training = net.training
    net.eval()
    try:
        yield next(net.parameters())
    finally:
        net.train(was_training)


def run_net(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Logits on CPU for inputs on CPU, whatever the net's device and dtype; no dropout, no gradients."""
    with evaluating(net) as param, torch.no_grad():
        return net(x.to(param.device, param.dtype)).float().cpu()


class FiguresCallback(L.Callback):
    """Log the figures above to every TensorBoard logger of the trainer (a no-op without one).

    ``every_n_epochs``: validation figures every n epochs; ``None``: after each of the first 10
    validations, then the 16th, 32nd, 64th, ... (a dozen at most for 1000 gate epochs, denser early on
    where the boundary moves most). Test figures always.
    """

    def __init__(self, every_n_epochs: int | None = None, num_images: int = 24, graph: bool = True) -> None:
        super().__init__()
        if every_n_epochs is not None and not (is_int(every_n_epochs) and every_n_epochs > 0):
            raise ConfigError(
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

    def log_figure(self, trainer: L.Trainer, tag: str, fig: Picture) -> None:
        summary = png_summary(tag, fig)
        for writer in self.writers(trainer):
            writer._get_file_writer().add_summary(summary, trainer.global_step)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        writers = self.writers(trainer)
        if not writers:
            return
        self.log_figure(trainer, "model/activations", activations_figure())
        if not self.graph:
            return
        net, example = pl_module.net, self._split(trainer, "train")
        x = example[0][:1] if example else torch.zeros(1, int(getattr(net, "input_size", 1)))
        try:  # traced with torch.jit, as TensorBoard needs, in eval mode: no dropout RNG
            with evaluating(net) as param, warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch.jit's deprecation and tracer notes: harmless here
                for writer in writers:
                    writer.add_graph(net, x.to(param.device, param.dtype))
        except Exception as err:  # e.g. a compiled net: the graph is a nicety, never a reason to stop
            rank_zero_warn(f"the model graph was not logged to TensorBoard ({type(err).__name__}: {err})")

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not self.writers(trainer):
            return
        self.validations += 1
        k = self.validations
        if self.every_n_epochs:
            due = (trainer.current_epoch + 1) % self.every_n_epochs == 0
        else:
            due = k <= 10 or k & (k - 1) == 0  # 1..10, then powers of two
        if due:
            self._log_predictions(trainer, pl_module, "val")

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        metric = pl_module.test_confusion
        confusion = metric.compute().cpu().numpy() if metric.update_count else None  # every rank: DDP sync
        if not self.writers(trainer):
            return
        self._log_predictions(trainer, pl_module, "test")
        if confusion is None:
            return
        classes = self._classes(trainer, len(confusion))
        self.log_figure(trainer, "test/confusion_matrix", confusion_figure(confusion, classes))
        accuracy = np.diag(confusion) / np.maximum(confusion.sum(axis=1), 1)
        self.log_figure(trainer, "test/acc_per_class", per_class_figure(accuracy, classes))
        for writer in self.writers(trainer):
            for name, a in zip(classes, accuracy, strict=True):
                writer.add_scalar(f"test/acc_class/{name.replace('/', '-')}", float(a), trainer.global_step)

    def _log_predictions(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        split = self._split(trainer, stage)
        if split is None:
            return
        x, y = split
        net, data = pl_module.net, trainer.datamodule
        kind = getattr(data, "kind", None)  # the DataModule says what it serves
        if kind == "points" and data.input_size == 2:  # a boundary in the plane (the gates)
            fig = boundary_figure(net, x, y, str(data.name).upper())
            self.log_figure(trainer, f"{stage}/decision_boundary", fig)
        if kind != "images":
            return
        classes = self._classes(trainer, int(y.max()) + 1)
        n = self.num_images
        inputs = x if stage == "test" else x[:n]  # the test's mistakes need every prediction
        preds = torch.cat([run_net(net, chunk).argmax(dim=1) for chunk in inputs.split(2000)])
        fig = prediction_grid(x[:n], preds[:n], y[:n], classes, f"{stage} images")
        self.log_figure(trainer, f"{stage}/predictions", fig)
        if stage == "test":
            wrong = (preds != y).nonzero().squeeze(1)[:n]
            if len(wrong):
                fig = prediction_grid(x[wrong], preds[wrong], y[wrong], classes, "test mistakes")
                self.log_figure(trainer, "test/mistakes", fig)

    @staticmethod
    def _split(trainer: L.Trainer, name: str) -> tuple[torch.Tensor, torch.Tensor] | None:
        split = (getattr(trainer.datamodule, "splits", None) or {}).get(name)
        return split if split is not None and len(split[0]) else None

    @staticmethod
    def _classes(trainer: L.Trainer, count: int) -> list[str]:
        classes = getattr(trainer.datamodule, "classes", None)
        return list(classes) if classes and len(classes) >= count else [str(i) for i in range(count)]
