import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from neuronlab.scratch import activations as act
from neuronlab.scratch.plots import activation_figure, loss_curve_figure

REPO = Path(__file__).parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

ELEMENTWISE = [
    (act.sigmoid, act.sigmoid_derivative, torch.sigmoid),
    (act.relu, act.relu_derivative, torch.relu),
    (act.tanh, act.tanh_derivative, torch.tanh),
    (act.leaky_relu, act.leaky_relu_derivative, torch.nn.functional.leaky_relu),  # both default to 0.01
    (act.gelu, act.gelu_derivative, lambda t: torch.nn.functional.gelu(t, approximate="tanh")),
]
IDS = ["sigmoid", "relu", "tanh", "leaky_relu", "gelu"]


def _points() -> np.ndarray:
    x = np.random.default_rng(0).uniform(-6, 6, size=200)
    return x[np.abs(x) > 1e-3]  # keep away from the ReLU kink, where the derivative is a convention


@pytest.mark.parametrize(("f", "df", "_"), ELEMENTWISE, ids=IDS)
def test_derivative_matches_central_difference(f, df, _):
    x, eps = _points(), 1e-6
    numerical = (f(x + eps) - f(x - eps)) / (2 * eps)
    np.testing.assert_allclose(df(x), numerical, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize(("f", "df", "torch_f"), ELEMENTWISE, ids=IDS)
def test_values_and_derivatives_match_torch(f, df, torch_f):
    x = _points()
    t = torch.tensor(x, requires_grad=True)
    torch_f(t).sum().backward()
    np.testing.assert_allclose(f(x), torch_f(torch.tensor(x)).numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(df(x), t.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_sigmoid_is_stable_for_large_inputs():
    x = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0])
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
        warnings.simplefilter("error")
        s = act.sigmoid(x)
        ds = act.sigmoid_derivative(x)
    assert s[0] == 0.0 and s[-1] == 1.0 and s[2] == 0.5
    assert np.all(np.isfinite(ds)) and ds[0] == 0.0 and ds[2] == 0.25
    assert act.sigmoid(-1000) == 0.0 and act.sigmoid(1000) == 1.0


def test_softmax_is_a_stable_row_wise_distribution():
    logits = np.array([[1000.0, 1001.0, 999.0], [0.1, -2.0, 3.0]])
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
        warnings.simplefilter("error")
        s = act.softmax(logits)
    np.testing.assert_allclose(s.sum(axis=1), 1.0)
    np.testing.assert_allclose(s[0], act.softmax(logits[0] - 1000.0))  # shift-invariant
    np.testing.assert_allclose(s[1], act.softmax(logits[1]))  # each row on its own
    np.testing.assert_allclose(s, torch.softmax(torch.tensor(logits), dim=-1).numpy(), rtol=1e-12)
    assert s[0].argmax() == 1


def test_softmax_jacobian_matches_central_difference():
    x, eps = np.array([0.5, -1.0, 2.0, 0.0]), 1e-6
    numerical = np.stack(
        [(act.softmax(x + eps * e) - act.softmax(x - eps * e)) / (2 * eps) for e in np.eye(len(x))], axis=1
    )
    np.testing.assert_allclose(act.softmax_derivative(x), numerical, atol=1e-9)
    batch = np.stack([x, -x])
    assert act.softmax_derivative(batch).shape == (2, 4, 4)
    np.testing.assert_allclose(act.softmax_derivative(batch)[1], act.softmax_derivative(-x))


def test_activation_figure_has_the_four_panels(tmp_path):
    fig = activation_figure()
    assert isinstance(fig, Figure)
    assert [ax.get_title() for ax in fig.axes] == ["Sigmoid", "ReLU", "Tanh", "Softmax"]
    fig.savefig(tmp_path / "a.png")
    assert (tmp_path / "a.png").read_bytes()[:8] == PNG_MAGIC


def test_loss_curve_figure_plots_every_epoch():
    fig = loss_curve_figure([3.0, 2.0, 1.0], "mistakes", "t")
    (line,) = fig.axes[0].get_lines()
    np.testing.assert_array_equal(line.get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(line.get_ydata(), [3.0, 2.0, 1.0])


def test_plot_activations_script_writes_png(tmp_path):
    out = tmp_path / "figs" / "act.png"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "plot_activations.py"), str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes()[:8] == PNG_MAGIC
