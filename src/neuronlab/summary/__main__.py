"""``python -m neuronlab.summary <sweep folder>``: the same as ``neuronlab-summary``."""

from neuronlab.summary.cli import main

main()
