"""The NumPy-only half of the lesson: activations, a perceptron, a two-layer network and gradient checks.

No torch anywhere in this package. The activations and their derivatives are in
``neuronlab.scratch.activations``; the figures in ``neuronlab.scratch.plots`` (imported on demand, so
using the models does not pull in matplotlib); the command line is ``neuronlab-scratch``.
"""

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
    "numerical_gradients",
    "truth_table",
]
