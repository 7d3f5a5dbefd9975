"""neuronlab's Optuna sweeper for Hydra (``hydra/sweeper=optuna``); the work is in ``neuronlab.sweeps``."""
