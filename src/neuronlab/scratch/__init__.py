"""The NumPy-only half of the lesson: activations, a perceptron, a two-layer network and gradient checks.

No torch anywhere in this package. The figures live in ``neuronlab.scratch.plots`` (imported on demand,
so using the models does not pull in matplotlib); the command line is ``neuronlab-scratch``.
"""

from neuronlab.scratch.activations import (
    gelu,
    gelu_derivative,
    leaky_relu,
    leaky_relu_derivative,
    relu,
    relu_derivative,
    sigmoid,
    sigmoid_derivative,
    softmax,
    softmax_derivative,
    tanh,
    tanh_derivative,
)
from neuronlab.scratch.gates import GATES, LINEARLY_SEPARABLE, truth_table
from neuronlab.scratch.network import ChainRuleStep, NeuralNetwork, chain_rule_example, numerical_gradients
from neuronlab.scratch.perceptron import FitResult, Perceptron

__all__ = [
    "GATES",
    "LINEARLY_SEPARABLE",
    "ChainRuleStep",
    "FitResult",
    "NeuralNetwork",
    "Perceptron",
    "chain_rule_example",
    "gelu",
    "gelu_derivative",
    "leaky_relu",
    "leaky_relu_derivative",
    "numerical_gradients",
    "relu",
    "relu_derivative",
    "sigmoid",
    "sigmoid_derivative",
    "softmax",
    "softmax_derivative",
    "tanh",
    "tanh_derivative",
    "truth_table",
]
