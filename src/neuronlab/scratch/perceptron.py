"""Rosenblatt's perceptron: one neuron, a step activation and the perceptron learning rule."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike


def as_inputs(X: ArrayLike, n_features: int) -> np.ndarray:
    """``X`` as a float64 (n_samples, n_features) batch; one sample may be given as a 1-D vector.
    Failing here, with both sizes named, beats a cryptic matmul error three calls deeper."""
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    if X.ndim != 2:
        raise ValueError(f"expected inputs of shape (n_samples, {n_features}), got shape {X.shape}")
    if X.shape[1] != n_features:
        raise ValueError(f"expected {n_features} features, got {X.shape[1]}")
    return X


def as_targets(y: ArrayLike, n_samples: int) -> np.ndarray:
    """``y`` as a float64 vector with one target per sample; (n, 1) columns are flattened."""
    y = np.asarray(y, dtype=np.float64)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.shape != (n_samples,):
        raise ValueError(f"expected {n_samples} targets (one per sample), got shape {y.shape}")
    return y


@dataclass
class FitResult:
    """What happened during :meth:`Perceptron.fit`, epoch by epoch."""

    epochs: int  # epochs actually run
    converged: bool  # an epoch went by with no mistake: every sample is classified right
    errors: list[int] = field(default_factory=list)  # mistakes (= updates) made during each epoch
    accuracy: list[float] = field(default_factory=list)  # accuracy on all samples after each epoch


class Perceptron:
    """A single neuron with a step activation: predicts 1 when w . x + b >= 0, else 0.

    It can only draw one straight line (a hyperplane) through input space, so it learns AND, OR, NAND
    and NOR but never XOR.
    """

    def __init__(self, n_inputs: int = 2, seed: int | None = 0) -> None:
        if n_inputs <= 0:
            raise ValueError(f"n_inputs must be a positive integer, got {n_inputs}")
        rng = np.random.default_rng(seed)
        self.n_inputs = n_inputs
        self.weights = rng.standard_normal(n_inputs)
        self.bias = float(rng.standard_normal())

    def predict(self, X: ArrayLike) -> np.ndarray:
        """0/1 class of each row of ``X``."""
        X = as_inputs(X, self.n_inputs)
        return (X @ self.weights + self.bias >= 0).astype(np.float64)

    def fit(
        self, X: ArrayLike, y: ArrayLike, epochs: int = 100, lr: float = 0.1, print_every: int | None = None
    ) -> FitResult:
        """Perceptron rule, one sample at a time: w += lr (target - pred) x, b += lr (target - pred).
        A correct prediction changes nothing, so training stops at the first epoch without mistakes
        (which never comes on data that is not linearly separable)."""
        X = as_inputs(X, self.n_inputs)
        y = as_targets(y, len(X))
        result = FitResult(epochs=0, converged=False)
        for epoch in range(1, epochs + 1):
            mistakes = 0
            for x_i, target in zip(X, y, strict=True):
                error = target - self.predict(x_i)[0]
                if error != 0:
                    self.weights += lr * error * x_i
                    self.bias += lr * error
                    mistakes += 1
            result.epochs = epoch
            result.errors.append(mistakes)
            result.accuracy.append(float(np.mean(self.predict(X) == y)))
            result.converged = mistakes == 0
            if print_every and (epoch % print_every == 0 or result.converged):
                print(f"epoch {epoch:5d}  errors {mistakes}  accuracy {result.accuracy[-1]:.0%}")
            if result.converged:
                break
        return result
