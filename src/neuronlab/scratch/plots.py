"""The lesson's figures, built as plain matplotlib Figures on the Agg canvas.

No pyplot: nothing opens a window or touches global figure state, so the same Figure can be saved to a
PNG, shown in a notebook, or logged to TensorBoard (``SummaryWriter.add_figure``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from neuronlab.scratch import activations as act


def _new_figure(figsize: tuple[float, float]) -> Figure:
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)  # attach the Agg canvas: renders off-screen, never needs a display
    return fig


def activation_figure() -> Figure:
    """2x2 grid: sigmoid, ReLU and tanh with their derivatives, and softmax of three example logits."""
    fig = _new_figure((10, 8))
    axes = fig.subplots(2, 2)
    x = np.linspace(-5, 5, 401)
    curves = [
        ("Sigmoid", act.sigmoid, act.sigmoid_derivative),
        ("ReLU", act.relu, act.relu_derivative),
        ("Tanh", act.tanh, act.tanh_derivative),
    ]
    for ax, (name, f, df) in zip(axes.flat[:3], curves, strict=True):
        ax.plot(x, f(x), label=name.lower())
        ax.plot(x, df(x), "--", label="derivative")
        ax.set_title(name)
        ax.set_xlabel("x")
        ax.axhline(0, color="grey", linewidth=0.5)
        ax.axvline(0, color="grey", linewidth=0.5)
        ax.grid(alpha=0.3)
        ax.legend()

    logits = np.array([2.0, 1.0, 0.1])
    ax = axes[1, 1]
    positions = np.arange(len(logits))
    ax.bar(positions - 0.2, logits, width=0.4, label="logits")
    ax.bar(positions + 0.2, act.softmax(logits), width=0.4, label="softmax (sums to 1)")
    ax.set_xticks(positions, [f"class {i}" for i in positions])
    ax.set_title("Softmax")
    ax.grid(alpha=0.3, axis="y")
    ax.legend()
    return fig


def loss_curve_figure(history: Sequence[float], ylabel: str = "loss", title: str = "Training") -> Figure:
    """One line per epoch value (loss, or a perceptron's mistakes), epochs counted from 1."""
    fig = _new_figure((6, 4))
    ax = fig.subplots()
    ax.plot(np.arange(1, len(history) + 1), history, marker="o" if len(history) <= 30 else None)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return fig
