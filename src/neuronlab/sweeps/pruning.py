"""Pruning inside an Optuna trial: report the optimized metric after every validation, stop when told.

The job finds its trial from ``+optuna_trial=<number>`` and the study from its own ``hydra.sweeper``
config, so it works wherever the launcher runs it (the sweep's process, a joblib worker, a SLURM job).
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any

import lightning.pytorch as L

from neuronlab.config import is_int
from neuronlab.errors import NeuronlabError

log = logging.getLogger(__name__)


class OptunaPruning(L.Callback):
    """Reports ``metric`` to the trial after each validation and stops the fit when the pruner says so;
    the trial is then told PRUNED (rank zero reports and decides, every rank stops)."""

    def __init__(
        self, storage_url: str, study_name: str, trial_number: int, metric: str, pruner: Any
    ) -> None:
        self.storage_url = storage_url
        self.study_name = study_name
        self.trial_number = trial_number
        self.metric = metric
        self.pruner = pruner
        self.pruned_epoch: int | None = None  # the epoch (from 1) the trial was pruned at, for result.json
        self._storage: Any = None  # opened at the first report, a connection of this process's own
        self._trial: Any = None

    def _open(self) -> Any:
        import optuna

        from neuronlab.sweeps.study import open_storage

        if self._trial is None:
            self._storage = storage = open_storage(self.storage_url, heartbeat=False)
            study = optuna.load_study(study_name=self.study_name, storage=storage, pruner=self.pruner)
            study_id = storage.get_study_id_from_name(self.study_name)
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, self.trial_number)
            self._trial = optuna.trial.Trial(study, trial_id)
        return self._trial

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.metric)
        prune = False
        if trainer.is_global_zero and value is not None and math.isfinite(float(value)):
            trial = self._open()
            with warnings.catch_warnings():  # a retried step (resumed job) is reported once only
                warnings.simplefilter("ignore")
                trial.report(float(value), step=trainer.current_epoch)
            prune = trial.should_prune()
        if trainer.world_size > 1:
            prune = trainer.strategy.broadcast(prune)
        if prune:
            self.pruned_epoch = trainer.current_epoch + 1  # counted from 1, as the epochs column
            trainer.should_stop = True

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        from optuna.trial import TrialState

        if self.pruned_epoch is not None and trainer.is_global_zero:
            self._trial.study.tell(self.trial_number, state=TrialState.PRUNED, skip_if_finished=True)
            log.info(f"trial {self.trial_number} pruned at epoch {self.pruned_epoch}")

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self._storage is not None:  # the next trial in this process opens its own connection
            self._storage.engine.dispose()
            self._storage = self._trial = None


def trial_callback(cfg: Any) -> OptunaPruning | None:
    """The pruning callback of an Optuna trial's job (``+optuna_trial=<n>`` set), or ``None``."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from neuronlab.sweeps.study import PRUNERS, storage_url, study_name

    number = cfg.get("optuna_trial")
    hydra_cfg = HydraConfig.get()
    if number is None or hydra_cfg.mode != RunMode.MULTIRUN:  # a trial resumed on its own: no study
        return None
    sweeper = hydra_cfg.sweeper
    if not is_int(number) or number < 0:
        raise NeuronlabError(f"optuna_trial={number!r} is not allowed: it is set by the Optuna sweeper")
    if sweeper.get("pruner") not in PRUNERS or not cfg.get("optimized_metric"):
        raise NeuronlabError("optuna_trial is set by neuronlab's Optuna sweeper (hydra/sweeper=optuna) only")
    if sweeper.pruner == "none":
        return None
    import optuna

    warmup = sweeper.pruner_warmup_epochs
    if sweeper.pruner == "median":
        startup = sweeper.pruner_startup_trials
        pruner = optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=warmup)
    else:  # hyperband: rungs from the warm-up (at least one epoch) up to max_epochs
        max_epochs = cfg.trainer.get("max_epochs")
        top = max_epochs if max_epochs and max_epochs > max(warmup, 1) else "auto"
        pruner = optuna.pruners.HyperbandPruner(min_resource=max(warmup, 1), max_resource=top)
    url = storage_url(sweeper, hydra_cfg.sweep.dir)
    return OptunaPruning(url, study_name(sweeper), number, str(cfg.optimized_metric), pruner)
