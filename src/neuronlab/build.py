"""Turn a composed config into objects: the one place where config meets code (no training here)."""

from __future__ import annotations

from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from neuronlab.data.base import InMemoryDataModule
from neuronlab.errors import NeuronlabError
from neuronlab.models import MLP
from neuronlab.tasks import Classifier


def build_net(cfg: DictConfig) -> tuple[MLP, bool]:
    """The net of ``cfg.model`` and whether to ``torch.compile`` it (``model.compile``)."""
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    assert isinstance(model_cfg, dict)
    compile_net = bool(model_cfg.pop("compile", False))
    return instantiate(model_cfg), compile_net


def check_compatible(net: MLP, datamodule: InMemoryDataModule, data_name: str) -> None:
    """A model whose input or output size does not fit the data is refused before training."""
    if net.input_size != datamodule.input_size:
        raise NeuronlabError(
            f"model.input_size={net.input_size} does not match data={data_name}, whose samples have "
            f"{datamodule.input_size} features: pick a model made for it or set model.input_size="
            f"{datamodule.input_size}"
        )
    expected = 1 if datamodule.num_classes == 2 and net.output_size == 1 else datamodule.num_classes
    if net.output_size != expected:
        raise NeuronlabError(
            f"model.output_size={net.output_size} does not match data={data_name}, which has "
            f"{datamodule.num_classes} classes: set model.output_size={datamodule.num_classes}"
            + (" (or 1 for a single sigmoid output)" if datamodule.num_classes == 2 else "")
        )


def build_task(cfg: DictConfig, datamodule: InMemoryDataModule, data_name: str) -> Classifier:
    """The LightningModule: the net, and the optimizer/scheduler as partials from ``_partial_`` configs."""
    net, compile_net = build_net(cfg)
    check_compatible(net, datamodule, data_name)
    scheduler = instantiate(cfg.scheduler) if cfg.get("scheduler") else None
    return Classifier(
        net,
        optimizer=instantiate(cfg.optimizer),
        scheduler=scheduler,
        num_classes=datamodule.num_classes,
        compile=compile_net,
    )


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
        first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        settings = ", ".join(
            f"trainer.{k}={trainer_cfg.get(k)}" for k in ("accelerator", "devices", "strategy", "precision")
        )
        raise NeuronlabError(f"the trainer refused its settings ({settings}): {first}") from None
