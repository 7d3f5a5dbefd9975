"""Activation functions and their derivatives, in NumPy: each ``f_derivative`` takes the same ``x`` as
``f`` (not ``f(x)``), so any of them can be checked against a finite difference. Outputs are float64."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

_SQRT_2_OVER_PI = np.sqrt(2.0 / np.pi)
_GELU_C = 0.044715


def _as_float(x: ArrayLike) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def sigmoid(x: ArrayLike) -> np.ndarray:
    """1 / (1 + e^-x), written with e^-|x| so that neither branch can overflow for large |x|."""
    x = _as_float(x)
    e = np.exp(-np.abs(x))  # in (0, 1]: never overflows
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid_derivative(x: ArrayLike) -> np.ndarray:
    """s(x) (1 - s(x)): at most 0.25, which is why deep sigmoid nets learn slowly."""
    s = sigmoid(x)
    return s * (1.0 - s)


def relu(x: ArrayLike) -> np.ndarray:
    """max(0, x): cheap, and its gradient does not shrink for positive inputs."""
    return np.maximum(0.0, _as_float(x))


def relu_derivative(x: ArrayLike) -> np.ndarray:
    """1 for x > 0 else 0 (we pick 0 at the kink x = 0, as PyTorch does)."""
    return (_as_float(x) > 0).astype(np.float64)


def tanh(x: ArrayLike) -> np.ndarray:
    """Zero-centred sigmoid-like squashing into (-1, 1)."""
    return np.tanh(_as_float(x))


def tanh_derivative(x: ArrayLike) -> np.ndarray:
    """1 - tanh(x)^2."""
    t = np.tanh(_as_float(x))
    return 1.0 - t * t


def leaky_relu(x: ArrayLike, alpha: float = 0.01) -> np.ndarray:
    """ReLU with a small slope ``alpha`` for x < 0, so a unit never stops learning ("dying ReLU")."""
    x = _as_float(x)
    return np.where(x > 0, x, alpha * x)


def leaky_relu_derivative(x: ArrayLike, alpha: float = 0.01) -> np.ndarray:
    """1 for x > 0 else ``alpha`` (``alpha`` at the kink, as PyTorch does)."""
    return np.where(_as_float(x) > 0, 1.0, alpha)


def gelu(x: ArrayLike) -> np.ndarray:
    """GELU, tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), as in GPT-2 and
    ``torch.nn.GELU(approximate="tanh")``: it needs no erf, which NumPy lacks."""
    x = _as_float(x)
    return 0.5 * x * (1.0 + np.tanh(_SQRT_2_OVER_PI * (x + _GELU_C * x**3)))


def gelu_derivative(x: ArrayLike) -> np.ndarray:
    """Exact derivative of the tanh-approximated :func:`gelu` above (product and chain rule)."""
    x = _as_float(x)
    t = np.tanh(_SQRT_2_OVER_PI * (x + _GELU_C * x**3))
    du_dx = _SQRT_2_OVER_PI * (1.0 + 3.0 * _GELU_C * x**2)
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du_dx


def softmax(x: ArrayLike) -> np.ndarray:
    """Probabilities over the last axis. Subtracting the row max first changes nothing (softmax is
    shift-invariant) but keeps ``exp`` from overflowing for large logits."""
    x = _as_float(x)
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def softmax_derivative(x: ArrayLike) -> np.ndarray:
    """The Jacobian ds_i/dx_j = s_i (delta_ij - s_j), (K, K) for K logits or (N, K, K) for N rows: a
    matrix, because each output depends on every input."""
    s = softmax(x)
    return s[..., :, None] * (np.eye(s.shape[-1]) - s[..., None, :])
