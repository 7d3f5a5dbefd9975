"""FiguresCallback through real runs: the figures and the graph read back from the event file."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from neuronlab.models import SimpleNN
from neuronlab.run.figures import FiguresCallback, Picture, boundary_figure, png_summary, prediction_grid
from neuronlab.train import train
from tests.conftest import read_scalars


def read_events(event_dir: Path) -> EventAccumulator:
    acc = EventAccumulator(str(event_dir), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    return acc


def image_steps(acc: EventAccumulator) -> dict[str, list[int]]:
    return {tag: [e.step for e in acc.Images(tag)] for tag in acc.Tags()["images"]}


def decode(acc: EventAccumulator, tag: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(acc.Images(tag)[-1].encoded_image_string)))


def pixels(fig: Picture) -> np.ndarray:
    """What TensorBoard shows of ``fig``: the PNG the callback writes, decoded."""
    return np.asarray(Image.open(io.BytesIO(png_summary("t", fig).value[0].image.encoded_image_string)))


def test_mnist_run_logs_prediction_grids_confusion_per_class_activations_and_graph(
    compose_cfg, mnist_dir, tmp_path
):
    cfg = compose_cfg(
        ["experiment=mnist", f"paths.data_dir={mnist_dir}", "data.val_size=100", "trainer.max_epochs=2"]
    )
    metrics = train(cfg)
    event_dir = tmp_path / "run" / "tensorboard"
    acc = read_events(event_dir)
    steps = image_steps(acc)
    assert set(steps) >= {
        "model/activations",
        "val/predictions",
        "test/predictions",
        "test/confusion_matrix",
        "test/acc_per_class",
    }, steps
    assert len(steps["model/activations"]) == 1  # once per run
    assert len(steps["val/predictions"]) == 2  # each validation of the 2 epochs
    assert steps["val/predictions"][0] < steps["val/predictions"][1]
    for tag in steps:
        picture = decode(acc, tag)
        assert picture.ndim == 3 and picture.shape[2] == 3 and min(picture.shape[:2]) > 100, tag
        assert picture.std() > 10, f"{tag} is a blank image"  # something was drawn
    graph = acc.Graph()
    assert any("Linear" in node.name for node in graph.node), [n.name for n in graph.node][:10]

    scalars = read_scalars(event_dir)
    per_class = {tag: series[-1][1] for tag, series in scalars.items() if tag.startswith("test/acc_class/")}
    assert set(per_class) == {f"test/acc_class/{d}" for d in range(10)}
    # the tiny test set has 20 images per class: the mean of the per-class accuracies is the accuracy
    assert abs(np.mean(list(per_class.values())) - metrics["test/acc"]) < 1e-6
    assert "test/acc_class/0" not in metrics  # the figures add nothing to the run's metrics/result.json


def test_gates_run_logs_the_decision_boundary_every_n_epochs(compose_cfg, tmp_path):
    cfg = compose_cfg(
        [
            "experiment=xor",
            "trainer.max_epochs=40",
            "callbacks.early_stopping=null",
            "callbacks.figures.every_n_epochs=20",
        ]
    )
    train(cfg)
    acc = read_events(tmp_path / "run" / "tensorboard")
    steps = image_steps(acc)
    # validation every 10 epochs (one step each), figures every 20: after epochs 20 and 40
    assert steps["val/decision_boundary"] == [20, 40]
    assert steps["test/decision_boundary"] == [40]
    assert {"model/activations", "test/confusion_matrix", "test/acc_per_class"} <= set(steps)
    assert "val/predictions" not in steps  # image grids are for the MNIST family
    assert acc.Graph().node
    assert {"test/acc_class/0", "test/acc_class/1"} <= set(read_scalars(tmp_path / "run" / "tensorboard"))


def test_without_a_tensorboard_logger_the_callback_is_a_no_op(compose_cfg, tmp_path):
    cfg = compose_cfg(["experiment=xor", "trainer.max_epochs=20", "logger=csv"])
    assert cfg.callbacks.figures._target_ == "neuronlab.run.figures.FiguresCallback"
    metrics = train(cfg)
    assert "test/acc" in metrics
    assert not list((tmp_path / "run").rglob("events.out.tfevents.*"))


def test_prediction_grid_marks_mistakes_in_red_with_the_true_class():
    images = torch.rand(5, 1, 28, 28)
    classes = ["T-shirt/top", "Trouser", "Pullover"]
    fig = prediction_grid(images, [0, 1, 2, 1, 0], [0, 1, 1, 1, 2], classes, "test")
    texts = dict(fig.texts)
    assert texts["Trouser"] == "black"
    assert texts["Pullover\n(true Trouser)"] == "red"
    assert texts["T-shirt/top\n(true Pullover)"] == "red"
    assert pixels(fig).shape[2] == 3


def test_decision_boundary_shows_the_nets_probability_at_each_point():
    net = SimpleNN()
    points = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    fig = boundary_figure(net, points, torch.tensor([0, 1, 1, 0]), "XOR")
    with torch.no_grad():
        probs = torch.sigmoid(net(points)).squeeze(1).tolist()
    labels = [text for text, _ in fig.texts]
    assert labels == [f"{y}  (P={p:.2f})" for y, p in zip([0, 1, 1, 0], probs, strict=True)]
    assert net.training  # drawing does not leave the net in eval mode


def test_every_n_epochs_must_be_positive():
    with pytest.raises(ValueError, match="every_n_epochs=0"):
        FiguresCallback(every_n_epochs=0)


def test_decision_boundary_colours_the_probability_and_draws_the_half_line():
    net = SimpleNN()
    with torch.no_grad():  # P(class 1) = sigmoid(20 (x - 0.5)): blue left of x = 0.5, red right of it
        net.layers[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]]))
        net.layers[0].bias.zero_()
        net.layers[-1].weight.copy_(torch.tensor([[20.0, 0.0, 0.0, 0.0]]))
        net.layers[-1].bias.fill_(-10.0)
    fig = boundary_figure(net, torch.tensor([[0.0, 0.0]]), torch.tensor([0]), "test")
    image = pixels(fig).astype(int)
    row = image[30 + 150]  # the plot's middle row (y = 0.5): 300 pixels from x = -0.25 to 1.25, at 44
    left, right, middle = row[44 + 40], row[44 + 260], row[44 + 150 - 2 : 44 + 150 + 2]
    assert left[2] > left[0] + 50 and right[0] > right[2] + 50  # blue, then red
    assert (middle.sum(axis=1) == 0).any()  # the black 0.5 line
