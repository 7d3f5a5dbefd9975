"""The lesson's two-layer network in NumPy, with backprop that is exactly the gradient of its loss.

Shapes, for a batch of N samples: X (N, n_inputs) -> hidden h (N, n_hidden) -> output p (N, 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from neuronlab.scratch.activations import sigmoid
from neuronlab.scratch.perceptron import as_inputs, as_targets

LOSSES = ("mse", "bce")
PARAM_NAMES = ("W1", "b1", "W2", "b2")


class NeuralNetwork:
    """n_inputs -> n_hidden (sigmoid) -> 1 (sigmoid), trained by full-batch gradient descent.

    Losses, over the N samples of a batch, with p the output probability and z its logit (p = sigmoid(z)):

    - ``"mse"``: L = (1/N) sum (p - y)^2, so dL/dp = 2 (p - y) / N and dL/dz = dL/dp * p (1 - p).
      (The lesson's code reports this loss but drops the 2/N in backprop; here the update is its true
      gradient, which is what the gradient checks verify.)
    - ``"bce"``: L = -(1/N) sum [y log p + (1 - y) log(1 - p)], whose sigmoid and log cancel to
      dL/dz = (p - y) / N. Computed from z as softplus(z) - y z, so it never takes log(0).
    """

    def __init__(self, n_inputs: int = 2, n_hidden: int = 4, loss: str = "mse", seed: int | None = 0) -> None:
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; allowed: {', '.join(LOSSES)}")
        if n_inputs <= 0 or n_hidden <= 0:
            raise ValueError(f"n_inputs and n_hidden must be positive, got {n_inputs} and {n_hidden}")
        rng = np.random.default_rng(seed)
        self.n_inputs, self.n_hidden, self.loss_name = n_inputs, n_hidden, loss
        self.W1 = rng.standard_normal((n_inputs, n_hidden))
        self.b1 = np.zeros(n_hidden)
        self.W2 = rng.standard_normal((n_hidden, 1))
        self.b2 = np.zeros(1)

    def forward(self, X: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Hidden activations h, output logits z, probabilities p = sigmoid(z): backprop needs all three."""
        X = as_inputs(X, self.n_inputs)
        h = sigmoid(X @ self.W1 + self.b1)
        z = h @ self.W2 + self.b2
        return h, z, sigmoid(z)

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """P(y = 1) for each row of ``X``, shape (N,)."""
        return self.forward(X)[2][:, 0]

    def predict(self, X: ArrayLike, threshold: float = 0.5) -> np.ndarray:
        """0/1 class of each row of ``X``."""
        return (self.predict_proba(X) >= threshold).astype(np.float64)

    def loss(self, X: ArrayLike, y: ArrayLike) -> float:
        """The loss named at construction (see the class docstring for its exact definition)."""
        _, z, p = self.forward(X)
        y = as_targets(y, len(z))[:, None]
        if self.loss_name == "mse":
            return float(np.mean((p - y) ** 2))
        return float(np.mean(np.logaddexp(0.0, z) - y * z))  # softplus(z) - y z == BCE(sigmoid(z), y)

    def gradients(self, X: ArrayLike, y: ArrayLike) -> dict[str, np.ndarray]:
        """dL/dparam for every parameter, by the chain rule, layer by layer from the output back."""
        X = as_inputs(X, self.n_inputs)
        y = as_targets(y, len(X))[:, None]
        h, _, p = self.forward(X)
        dz = (p - y) / len(X)  # bce: the log and the sigmoid cancel
        if self.loss_name == "mse":
            dz = 2.0 * dz * p * (1.0 - p)  # dL/dp = 2 (p - y) / N, times dp/dz = p (1 - p)
        dh = (dz @ self.W2.T) * h * (1.0 - h)  # back through W2, then through the hidden sigmoid
        return {"W1": X.T @ dh, "b1": dh.sum(axis=0), "W2": h.T @ dz, "b2": dz.sum(axis=0)}

    def train_step(self, X: ArrayLike, y: ArrayLike, lr: float) -> float:
        """One gradient-descent step, param -= lr * dL/dparam; returns the loss before the step."""
        loss = self.loss(X, y)
        for name, grad in self.gradients(X, y).items():
            getattr(self, name)[...] -= lr * grad  # in place: get_params() copies stay untouched
        return loss

    def fit(
        self, X: ArrayLike, y: ArrayLike, epochs: int = 5000, lr: float = 1.0, print_every: int | None = None
    ) -> list[float]:
        """Full-batch gradient descent for ``epochs`` steps; returns the loss at each step."""
        history = []
        for epoch in range(1, epochs + 1):
            history.append(self.train_step(X, y, lr))
            if print_every and (epoch % print_every == 0 or epoch == epochs):
                print(f"epoch {epoch:6d}  loss {history[-1]:.6f}")
        return history

    def get_params(self) -> dict[str, np.ndarray]:
        """Copies of W1, b1, W2, b2, so the caller can keep a snapshot while training goes on."""
        return {name: getattr(self, name).copy() for name in PARAM_NAMES}

    def set_params(self, params: dict[str, ArrayLike]) -> None:
        """Load W1, b1, W2, b2 (all four, with the current shapes) as float64 copies."""
        if set(params) != set(PARAM_NAMES):
            raise ValueError(f"expected parameters {', '.join(PARAM_NAMES)}, got {', '.join(params)}")
        for name in PARAM_NAMES:
            value = np.array(params[name], dtype=np.float64)
            expected = getattr(self, name).shape
            if value.shape != expected:
                raise ValueError(f"{name}: expected shape {expected}, got {value.shape}")
            setattr(self, name, value)


def numerical_gradients(
    net: NeuralNetwork, X: ArrayLike, y: ArrayLike, eps: float = 1e-6
) -> dict[str, np.ndarray]:
    """Central differences (L(w + eps) - L(w - eps)) / 2 eps, one weight at a time.

    Slow (two forward passes per weight) but independent of backprop: the reference it is checked against.
    """
    grads = {}
    for name in PARAM_NAMES:
        param = getattr(net, name)
        grads[name] = np.zeros_like(param)
        for idx in np.ndindex(param.shape):
            original = param[idx]
            param[idx] = original + eps
            loss_plus = net.loss(X, y)
            param[idx] = original - eps
            loss_minus = net.loss(X, y)
            param[idx] = original
            grads[name][idx] = (loss_plus - loss_minus) / (2 * eps)
    return grads


@dataclass
class ChainRuleStep:
    """Every intermediate value of one gradient step on a single linear neuron."""

    y: float
    loss: float
    dL_dy: float
    dL_dw: float
    dL_db: float
    w_new: float
    b_new: float


def chain_rule_example(
    x: float = 2.0, w: float = 3.0, b: float = 1.0, target: float = 5.0, lr: float = 0.01
) -> ChainRuleStep:
    """The lesson's chain rule by hand: y = w x + b, L = (y - target)^2, then one gradient step.

    dL/dw = dL/dy * dy/dw = 2 (y - target) * x and dL/db = dL/dy * dy/db = 2 (y - target) * 1.
    With the defaults: y = 7, L = 4, dL/dw = 8, dL/db = 4, w_new = 3 - 0.01 * 8 = 2.92.
    """
    y = w * x + b
    loss = (y - target) ** 2
    dL_dy = 2.0 * (y - target)
    dL_dw, dL_db = dL_dy * x, dL_dy
    return ChainRuleStep(y, loss, dL_dy, dL_dw, dL_db, w_new=w - lr * dL_dw, b_new=b - lr * dL_db)
