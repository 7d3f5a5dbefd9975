"""The config is shaped like the objects it builds: ``conf/task/`` names the LightningModule around the
net, optimizer and scheduler; ``conf/model/`` is exactly a net's constructor; recipes are shared per data
family and name the run folder after the data."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import torch
import yaml
from hydra.utils import instantiate

from neuronlab.config import CONF_DIR
from neuronlab.models import NETS
from neuronlab.run import report
from neuronlab.tasks import Classifier


@pytest.mark.parametrize("option", sorted(p.stem for p in (Path(CONF_DIR) / "model").glob("*.yaml")))
def test_a_model_config_is_exactly_its_nets_constructor(option):
    config = yaml.safe_load((Path(CONF_DIR) / "model" / f"{option}.yaml").read_text())
    target = config.pop("_target_")
    cls = next(c for c in NETS.values() if f"neuronlab.models.{c.__name__}" == target)
    wanted = set(inspect.signature(cls.__init__).parameters) - {"self", "args", "kwargs"}
    if not wanted:  # MNISTClassifier(*args, **kwargs): ModernNetwork's arguments
        wanted = set(inspect.signature(cls.__mro__[1].__init__).parameters) - {"self"}
    assert set(config) == wanted


@pytest.mark.parametrize(
    ("overrides", "net", "optimizer", "scheduler", "compile"),
    [
        ([], "SimpleNN", torch.optim.Adam, None, False),
        (["model=modern_network", "model.input_size=2", "model.output_size=2", "model.hidden_sizes=[3]"],
         "ModernNetwork", torch.optim.Adam, None, False),
        (["optimizer=sgd", "scheduler=step", "task.compile=true"], "SimpleNN", torch.optim.SGD,
         torch.optim.lr_scheduler.StepLR, True),
    ],
)  # fmt: skip
def test_one_instantiate_builds_the_task_around_net_optimizer_and_scheduler(
    compose_cfg, overrides, net, optimizer, scheduler, compile
):
    cfg = compose_cfg(overrides)
    task = instantiate(cfg.task)
    assert isinstance(task, Classifier) and type(task.net).__name__ == net
    assert task.net.config() == {
        **task.net.config(),
        **{k: v for k, v in cfg.model.items() if k != "_target_"},
    }
    assert (
        task.optimizer_factory.func is optimizer and task.optimizer_factory.keywords["lr"] == cfg.optimizer.lr
    )
    assert (task.scheduler_factory and task.scheduler_factory.func) is scheduler
    assert task.compile_net is compile and task.hparams["compile"] is compile
    assert "compile" not in cfg.model
    hparams = report.hparams_of(cfg)  # what TensorBoard, MLflow and the sweep summaries are given
    assert hparams["task.compile"] is compile and "model.compile" not in hparams


@pytest.mark.parametrize(
    ("overrides", "task_name", "lr", "max_epochs"),
    [
        ([], "xor", 0.1, 1000),
        (["data=and"], "and", 0.1, 1000),
        (["data=or"], "or", 0.1, 1000),
        (["data=mnist", "model=mnist_classifier"], "mnist", 0.001, 5),
        (["data=fashion_mnist", "model=mnist_classifier"], "fashion_mnist", 0.001, 5),
        (["experiment=xor"], "xor", 0.1, 1000),
        (["experiment=mnist"], "mnist", 0.001, 5),
        (["experiment=mnist_modern"], "mnist_modern", 0.001, 5),
        (["data=and", "optimizer.lr=0.5", "task_name=mine"], "mine", 0.5, 1000),
    ],
)
def test_recipes_are_shared_per_family_and_the_run_folder_is_named_after_the_data(
    compose_cfg, overrides, task_name, lr, max_epochs
):
    cfg = compose_cfg(overrides)
    assert cfg.task_name == task_name
    assert f"/{task_name}/runs/" in cfg.hydra.run.dir
    assert (cfg.optimizer.lr, cfg.trainer.max_epochs) == (lr, max_epochs)
    gates = cfg.data._target_.endswith("GatesDataModule")
    assert (cfg.callbacks.get("early_stopping") is not None) == gates
    if "experiment=mnist_modern" in overrides:
        assert cfg.model._target_ == "neuronlab.models.ModernNetwork"


def test_recipe_and_experiment_files_hold_no_copies():
    """Each data option's recipe only names its family's; mnist_modern only swaps mnist's model."""
    recipes = Path(CONF_DIR) / "recipe"
    for data, family in [("xor", "gates"), ("and", "gates"), ("or", "gates"), ("mnist", "images")]:
        assert yaml.safe_load((recipes / f"{data}.yaml").read_text()) == {"defaults": [family]}
    assert yaml.safe_load((recipes / "fashion_mnist.yaml").read_text()) == {"defaults": ["images"]}
    modern = yaml.safe_load((Path(CONF_DIR) / "experiment" / "mnist_modern.yaml").read_text())
    assert modern == {
        "defaults": ["mnist", {"override /model": "modern_network"}],
        "task_name": "mnist_modern",
    }
