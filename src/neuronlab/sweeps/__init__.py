"""Sweeps that survive and learn: the Optuna study (:mod:`.study`), pruning inside a trial
(:mod:`.pruning`) and resuming a grid sweep's jobs (:mod:`.resume`). The sweep summary is
:mod:`neuronlab.summary`; Hydra finds the sweeper through ``hydra_plugins.neuronlab_optuna_sweeper``."""
