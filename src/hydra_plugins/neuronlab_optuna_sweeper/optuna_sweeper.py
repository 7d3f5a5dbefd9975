"""The Hydra side of the Optuna sweeper: its config (``hydra/sweeper=optuna``) and a thin Sweeper class.

Hydra imports every module under ``hydra_plugins`` at start-up, so nothing heavy is imported here; the
search itself is :func:`neuronlab.sweeps.study.run_search`.
Hydra loads this module without registering it in ``sys.modules``: no ``from __future__ import
annotations`` here (dataclasses would fail to read the annotations).
"""

from dataclasses import dataclass, field
from typing import Any, Dict, List  # noqa: UP035 (OmegaConf reads these annotations)

from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


@dataclass
class OptunaSweeperConf:
    """``hydra.sweeper.*``; the comments are the documentation (``--cfg hydra`` shows the values)."""

    _target_: str = "hydra_plugins.neuronlab_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    direction: str = "maximize"  # maximize | minimize the train function's return (optimized_metric)
    n_trials: int = 20  # the study's total budget: re-running the same command continues up to it
    n_jobs: int = 1  # trials launched at once (in parallel with hydra/launcher=joblib or submitit)
    sampler: str = "tpe"  # tpe | random | grid (grid: every combination of choice()/range() values)
    seed: Any = None  # trial t is drawn with a seed made of (seed, t): a resumed search draws as before
    n_startup_trials: int = 10  # tpe: random trials before TPE models the results
    pruner: str = "median"  # median | hyperband | none: stop hopeless trials after a validation
    pruner_startup_trials: int = 5  # median: finished trials before any trial is pruned
    pruner_warmup_epochs: int = 3  # validations every trial gets before it can be pruned
    max_failure_rate: float = 1.0  # stop the search when more trials of a batch fail (1.0: never)
    study_name: Any = None  # needed with a storage; the default SQLite study is called "neuronlab"
    storage: Any = None  # SQLAlchemy URL shared by many sweep processes; null: <sweep dir>/optuna.db
    # key: choice(...) | interval(...) | range(...) | a fixed value
    params: Dict[str, Any] = field(default_factory=dict)  # noqa: UP006


ConfigStore.instance().store(
    group="hydra/sweeper", name="optuna", node=OptunaSweeperConf, provider="neuronlab"
)


class OptunaSweeper(Sweeper):
    """Hydra's entry into :func:`neuronlab.sweeps.study.run_search` (ask-and-tell over any launcher)."""

    def __init__(self, **settings: Any) -> None:
        self.settings = settings

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function
        )

    def sweep(self, arguments: List[str]) -> None:  # noqa: UP006
        from neuronlab.errors import run_command
        from neuronlab.sweeps.study import run_search

        run_command(lambda: run_search(self.settings, self.config, self.launcher, arguments))
