"""DataModules state their facts (kind, classes, normalisation, input shape); checkpoints store them;
predict, export and figures ask them instead of guessing from sizes or names."""

from __future__ import annotations

import functools
from pathlib import Path

import lightning.pytorch as L
import pytest
import torch
from lightning.pytorch.loggers import TensorBoardLogger

from neuronlab.data import (
    DataFacts,
    FashionMNISTDataModule,
    GatesDataModule,
    InMemoryDataModule,
    MNISTDataModule,
)
from neuronlab.errors import NeuronlabError
from neuronlab.export import export
from neuronlab.io import checkpoint as ckpt_module
from neuronlab.io.checkpoint import data_facts, load_checkpoint
from neuronlab.models import MLP, probabilities
from neuronlab.predict import predict
from neuronlab.run.figures import FiguresCallback
from neuronlab.tasks import Classifier
from neuronlab.train import train
from tests.conftest import read_scalars
from tests.test_figures import image_steps, read_events

GATES = "neuronlab.data.gates.GatesDataModule"


class CubeDataModule(InMemoryDataModule):
    """Points with three coordinates (the corners of the unit cube), labelled by the third one: a points
    DataModule whose input size is neither 2 nor 784, with its own class names."""

    kind = "points"
    classes = ("low", "high")
    input_shape = (3,)
    name = "cube"

    def __init__(self, seed: int = 0) -> None:
        super().__init__(batch_size=None, seed=seed)
        self._save_config(seed=seed)  # its own description: no "gate" for anything to guess from

    def setup(self, stage: str | None = None) -> None:
        corners = torch.tensor([[a, b, c] for a in (0.0, 1.0) for b in (0.0, 1.0) for c in (0.0, 1.0)])
        labels = corners[:, 2].long()
        self.splits = {name: (corners.clone(), labels.clone()) for name in ("train", "val", "test")}


def test_facts_are_class_attributes_and_the_family_resolves_by_name():
    assert (GatesDataModule.kind, GatesDataModule.input_shape, GatesDataModule.input_size) == (
        "points",
        (2,),
        2,
    )
    assert (MNISTDataModule.kind, MNISTDataModule.input_size, MNISTDataModule.num_classes) == (
        "images",
        784,
        10,
    )
    assert FashionMNISTDataModule.classes[0] == "T-shirt/top" and FashionMNISTDataModule.fills_frame
    assert CubeDataModule.input_size == 3 and CubeDataModule.num_classes == 2  # derived per subclass
    dm = MNISTDataModule(name="fashion_mnist", data_dir="/nowhere")  # data.name=fashion_mnist still works
    assert type(dm) is FashionMNISTDataModule and dm.facts().mean == FashionMNISTDataModule.mean
    with pytest.raises(ValueError, match="does not fit FashionMNISTDataModule"):
        FashionMNISTDataModule(name="mnist")
    assert probabilities(torch.zeros(4, 1)).shape == (4,)  # one logit: P(class 1) by sigmoid
    torch.testing.assert_close(probabilities(torch.zeros(2, 4)), torch.full((2, 4), 0.25))


def test_facts_are_declared_once_and_checked_when_a_datamodule_is_defined():
    """DataFacts is the one list: a DataModule's facts, its checkpoint entry and defaults follow it."""
    import dataclasses

    fields = [f.name for f in dataclasses.fields(DataFacts)]
    assert list(GatesDataModule(gate="and").state_dict()["facts"]) == fields
    assert CubeDataModule().facts() == DataFacts("points", ("low", "high"), (3,), name="cube")  # defaults
    with pytest.raises(ValueError, match="kind='pictures' is not valid"):

        class Pictures(InMemoryDataModule):  # refused where it is written, not at its first checkpoint
            kind = "pictures"
            classes = ("a", "b")
            input_shape = (2,)


def test_old_checkpoints_without_facts_take_them_from_their_datamodule_class():
    old = {  # what main wrote before facts were stored: the description only
        "datamodule_hyper_parameters": {
            "_target_": "neuronlab.data.mnist.MNISTDataModule",
            "name": "fashion_mnist",
            "data_dir": "/nowhere",
        }
    }
    facts = data_facts(old, "old.ckpt")
    assert facts == FashionMNISTDataModule(data_dir="/nowhere").facts()
    assert facts.kind == "images" and facts.input_shape == (1, 28, 28) and facts.fills_frame
    gates = {
        "datamodule_hyper_parameters": {"_target_": "neuronlab.data.gates.GatesDataModule", "gate": "or"}
    }
    assert data_facts(gates, "g.ckpt") == DataFacts("points", ("0", "1"), (2,), name="or")
    with pytest.raises(NeuronlabError, match="does not record the data"):
        data_facts({"datamodule_hyper_parameters": {}}, "bare.ckpt")


@pytest.mark.parametrize(
    ("facts", "message"),
    [
        ({"kind": "images", "classes": ["0", "1"], "input_shape": [2]}, "input_shape"),
        (
            {"kind": "images", "classes": ["0", "1"], "input_shape": [1, 1, 2]},
            "GatesDataModule serves points",
        ),
        ({"kind": "points", "classes": "01", "input_shape": [2]}, "classes"),
        ({"kind": "points", "classes": ["0", "1", "2"], "input_shape": [2]}, "in 3 classes"),
        ({"kind": "points", "classes": ["0", "1"], "input_shape": [2], "std": 0.0}, "std"),
        ({"kind": "points", "classes": ["0", "1"], "input_shape": [2], "code": "os.system"}, "keys among"),
        ({"kind": "points", "classes": ["0", "1"], "input_shape": [True, 1]}, "input_shape"),
        ("points", "expected"),
        ({"kind": "\x1b[2J" + "k" * 10_000, "classes": ["0", "1"], "input_shape": [2]}, "kind="),
    ],
)
def test_stored_facts_are_plain_typed_values_that_fit_their_class(facts, message):
    stored = {
        "datamodule_hyper_parameters": {"_target_": GATES, "gate": "and"},
        "GatesDataModule": {"facts": facts},
    }
    with pytest.raises(NeuronlabError, match=message) as err:
        data_facts(stored, "t.ckpt")
    assert "ckpt_path=t.ckpt" in str(err.value) and "not loaded" in str(err.value)
    assert len(str(err.value)) < 1000 and "\x1b" not in str(err.value)  # printed as one short line


def test_stored_data_arguments_are_named_escaped_and_capped():
    stored = {"datamodule_hyper_parameters": {"_target_": GATES, "gate": "\x1b[2J" + "g" * 10_000}}
    with pytest.raises(NeuronlabError, match="data.gate=") as err:
        data_facts(stored, "t.ckpt")
    assert len(str(err.value)) < 1000 and "\x1b" not in str(err.value)


def test_a_gates_checkpoint_stores_its_facts_and_predict_reads_them(compose_cfg, tmp_path):
    assert train(compose_cfg(["experiment=xor", "logger=none"]))["test/acc"] == 1.0
    path = tmp_path / "run" / "checkpoints" / "last.ckpt"
    checkpoint = load_checkpoint(path)
    assert checkpoint["GatesDataModule"]["facts"] == GatesDataModule(gate="xor").facts().to_plain()
    # stored class names (plain strings) are what predict shows; kind and shape stay the class's
    checkpoint["GatesDataModule"]["facts"]["classes"] = ["off", "on"]
    torch.save(checkpoint, path)
    cfg = compose_cfg([f"ckpt_path={path}", "inputs=[[0,0],[0,1]]"], config_name="predict")
    assert [r.prediction for r in predict(cfg)] == ["off", "on"]


@pytest.fixture
def cube_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A real checkpoint of a net trained on :class:`CubeDataModule` (allowed for this test only)."""
    allowed = ckpt_module._datamodules()
    target = f"{CubeDataModule.__module__}.{CubeDataModule.__qualname__}"
    allowed[target] = CubeDataModule
    monkeypatch.setattr(ckpt_module, "_datamodules", lambda: allowed)
    L.seed_everything(0)
    task = Classifier(MLP(3, [8], 1), optimizer=functools.partial(torch.optim.Adam, lr=0.05))
    logger = TensorBoardLogger(str(tmp_path), name="tb", version="")
    trainer = L.Trainer(
        max_epochs=150,
        logger=logger,
        callbacks=[FiguresCallback(graph=False)],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        check_val_every_n_epoch=50,
    )
    datamodule = CubeDataModule()
    trainer.fit(task, datamodule=datamodule)
    assert trainer.test(task, datamodule=datamodule, verbose=False)[0]["test/acc"] == 1.0
    path = tmp_path / "cube.ckpt"
    trainer.save_checkpoint(path)
    return path


def test_predict_export_and_figures_take_the_kind_from_the_datamodule(
    cube_checkpoint, compose_cfg, tmp_path, capsys
):
    # figures: points, but not in the plane: no decision boundary, no image grid (28x28 would crash);
    # the per-class scalars carry the DataModule's class names
    tb = tmp_path / "tb"
    scalars = read_scalars(tb)
    assert {"test/acc_class/low", "test/acc_class/high"} <= set(scalars)
    images = image_steps(read_events(tb))
    assert not any("decision_boundary" in t or "predictions" in t for t in images), images

    # predict: three numbers per point (not 2, not 784), answered with the DataModule's class names
    cfg = compose_cfg(
        [f"ckpt_path={cube_checkpoint}", "inputs=[[0,0,1],[1,1,0],[0,1]]"], config_name="predict"
    )
    rows = predict(cfg)
    assert [r.prediction for r in rows[:2]] == ["high", "low"]
    assert rows[0].name == "[0, 0, 1]" and rows[0].details.startswith("P(high) = ")
    assert rows[2].error and "expected a point of 3 numbers" in rows[2].error
    cfg = compose_cfg([f"ckpt_path={cube_checkpoint}", "inputs=[1,0,1]"], config_name="predict")
    (row,) = predict(cfg)  # one point on its own
    assert row.prediction == "high"
    capsys.readouterr()

    # export: checked on the DataModule's test split, described by its facts
    cfg = compose_cfg([f"ckpt_path={cube_checkpoint}", "format=torchscript"], config_name="export")
    assert export(cfg) <= 1e-6
    out = capsys.readouterr().out
    assert "8 test samples of cube" in out and "(batch, 3) points" in out and "low, high" in out
    scripted = torch.jit.load(str(cube_checkpoint.with_suffix(".pt")))
    assert scripted(torch.tensor([[0.0, 0.0, 1.0]])).shape == (1,)
