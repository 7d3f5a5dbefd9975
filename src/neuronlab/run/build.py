"""Turn the config's lists (callbacks, loggers) and the trainer into objects, with clear messages.

The task itself needs no help: ``instantiate(cfg.task)`` builds it around the net, optimizer and scheduler
(``conf/task/``), and it checks the net against the data itself when training or testing starts."""

from __future__ import annotations

from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig

from neuronlab.errors import NeuronlabError, first_line


def build_list(group: DictConfig | None) -> list[Any]:
    """Instantiate every entry of a callbacks/logger group (entries set to null are skipped)."""
    if not group:
        return []
    return [instantiate(entry) for entry in group.values() if entry and "_target_" in entry]


def build_trainer(trainer_cfg: DictConfig, **kwargs: Any) -> Any:
    """The Trainer; a setting Lightning refuses (devices, strategy, accelerator...) becomes one message."""
    from hydra.errors import InstantiationException
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    try:
        return instantiate(trainer_cfg, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__
        if not isinstance(cause, MisconfigurationException | ValueError | TypeError):
            raise
        settings = ", ".join(
            f"trainer.{k}={trainer_cfg.get(k)}" for k in ("accelerator", "devices", "strategy", "precision")
        )
        raise NeuronlabError(f"the trainer refused its settings ({settings}): {first_line(cause)}") from None
