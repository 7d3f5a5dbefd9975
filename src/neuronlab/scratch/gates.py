"""Truth tables of the two-input logic gates the lesson trains on."""

from __future__ import annotations

import numpy as np

# Every gate sees the same four inputs, in this order.
INPUTS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)

TARGETS: dict[str, np.ndarray] = {
    "and": np.array([0, 0, 0, 1], dtype=np.float64),
    "or": np.array([0, 1, 1, 1], dtype=np.float64),
    "nand": np.array([1, 1, 1, 0], dtype=np.float64),
    "nor": np.array([1, 0, 0, 0], dtype=np.float64),
    "xor": np.array([0, 1, 1, 0], dtype=np.float64),
}

GATES = tuple(TARGETS)

# XOR is the one gate no single line can separate: a perceptron never learns it.
LINEARLY_SEPARABLE = frozenset({"and", "or", "nand", "nor"})


def truth_table(gate: str) -> tuple[np.ndarray, np.ndarray]:
    """Inputs X (4, 2) and targets y (4,) of ``gate``, as fresh copies the caller may modify."""
    key = gate.lower()
    if key not in TARGETS:
        raise ValueError(f"unknown gate {gate!r}; allowed: {', '.join(GATES)}")
    return INPUTS.copy(), TARGETS[key].copy()
