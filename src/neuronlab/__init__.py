"""neuronlab: the 'from one neuron to MNIST' lesson as real, reproducible experiments.

Kept import-light on purpose (no torch here) so the NumPy-only ``neuronlab.scratch`` stays fast to import.
"""

__version__ = "0.1.0"
