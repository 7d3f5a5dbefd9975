"""The training pipeline through real Hydra composition, a real Trainer, real event files and checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from neuronlab.io.checkpoint import load_checkpoint, load_classifier
from neuronlab.train import train
from tests.conftest import only, read_scalars, run_cli, run_entry
from tests.probes import read_probe

TAGS = {"train/loss", "train/acc", "val/loss", "val/acc", "val/acc_best", "test/loss", "test/acc"}


def test_xor_trains_to_100_percent_with_all_tags_and_a_reloadable_checkpoint(compose_cfg, tmp_path):
    cfg = compose_cfg(["experiment=xor"])
    metrics = train(cfg)
    assert metrics["test/acc"] == 1.0 and metrics["val/acc_best"] == 1.0
    run = tmp_path / "run"
    scalars = read_scalars(run / "tensorboard")
    assert set(scalars) >= TAGS, set(scalars)
    assert len(scalars["train/loss"]) > 10  # one point per epoch
    assert scalars["train/loss"][-1][1] < scalars["train/loss"][0][1]
    assert len(list((run / "tensorboard").glob("events.out.tfevents.*"))) == 1
    # the HPARAMS tab: the hparams plugin's summary is in the event file
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    acc = EventAccumulator(str(run / "tensorboard"))
    acc.Reload()
    content = acc.PluginTagToContent("hparams")["_hparams_/experiment"]
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content).experiment
    assert {"model.hidden_size", "optimizer.lr", "choice/model", "seed"} <= {
        h.name for h in experiment.hparam_infos
    }
    assert {"val/acc_best", "test/acc"} <= {m.name.tag for m in experiment.metric_infos}

    best, last = run / "checkpoints" / "best.ckpt", run / "checkpoints" / "last.ckpt"
    assert best.is_file() and last.is_file()
    raw = torch.load(best, weights_only=True)  # the safe default loads it
    assert raw["hyper_parameters"]["net"]["_target_"].endswith("SimpleNN")
    task, _ = load_classifier(best)
    points = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    probs = task.predict_step(points)
    assert (probs > 0.5).long().tolist() == [0, 1, 1, 0]
    again, _ = load_classifier(best)
    assert torch.equal(again.predict_step(points), probs)  # reload gives identical predictions


@pytest.mark.parametrize(
    ("experiment", "extra"),
    [
        ("mnist", []),
        ("mnist_modern", []),
        ("mnist", ["data=fashion_mnist"]),
    ],
)
def test_mnist_experiments_fast_dev_run(compose_cfg, mnist_dir, experiment, extra):
    cfg = compose_cfg(
        [f"experiment={experiment}", *extra, f"paths.data_dir={mnist_dir}", "trainer.fast_dev_run=true"]
    )
    assert cfg.data.batch_size == 64 and cfg.optimizer.lr == 0.001 and cfg.trainer.max_epochs == 5
    assert cfg.data.val_size == 5000
    cfg.data.val_size = 100  # the tiny data has 600 training images
    metrics = train(cfg)
    assert {"test/acc", "test/loss"} <= set(metrics)


def test_mnist_learns_on_tiny_data_and_eval_reproduces_test_metrics(compose_cfg, mnist_dir, tmp_path):
    cfg = compose_cfg(
        ["experiment=mnist", f"paths.data_dir={mnist_dir}", "data.val_size=100", "trainer.max_epochs=3"]
    )
    metrics = train(cfg)
    assert metrics["test/acc"] > 0.9  # the tiny digits are easy; chance is 0.1
    run = tmp_path / "run"
    best = run / "checkpoints" / "best.ckpt"
    ckpt = load_checkpoint(best)
    assert ckpt["datamodule_hyper_parameters"]["name"] == "mnist"

    from neuronlab.eval import evaluate

    eval_cfg = compose_cfg([f"ckpt_path={best}"], config_name="eval", run_dir=tmp_path / "eval")
    eval_metrics = evaluate(eval_cfg)
    assert eval_metrics["test/acc"] == pytest.approx(metrics["test/acc"])
    assert eval_metrics["test/loss"] == pytest.approx(metrics["test/loss"], rel=1e-5)
    assert {"test/acc", "test/loss"} <= set(read_scalars(tmp_path / "eval" / "tensorboard"))
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "eval" / "tensorboard"))
    events.Reload()
    assert {"test/confusion_matrix", "test/predictions"} <= set(events.Tags()["images"])


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["optimizer=sgd", "scheduler=step"], ("SGD", "StepLR", "ReLU")),
        (
            ["optimizer=adamw", "scheduler=cosine", "model.activation=tanh"],
            ("AdamW", "CosineAnnealingLR", "Tanh"),
        ),
        (["scheduler=plateau", "model.activation=gelu", "logger=csv"], ("Adam", "ReduceLROnPlateau", "GELU")),
        (
            ["model.activation=leaky_relu", "logger=none", "trainer=cpu", "seed=7"],
            ("Adam", None, "LeakyReLU"),
        ),
        (["data=and", "model.activation=sigmoid", "model.hidden_size=8"], ("Adam", None, "Sigmoid")),
    ],
)
def test_every_part_swaps(compose_cfg, overrides, expected, tmp_path):
    """Each swapped part is the one trained with: seen in the built objects and in the checkpoint."""
    probe = tmp_path / "probe"
    cfg = compose_cfg(
        [
            *overrides,
            "trainer.max_epochs=3",
            "trainer.check_val_every_n_epoch=1",
            "+callbacks.probe._target_=tests.probes.Probe",
            f"+callbacks.probe.out={probe}",
        ]
    )
    metrics = train(cfg)
    assert 0.0 <= metrics["test/acc"] <= 1.0
    optimizer, scheduler, activation = expected
    seen = read_probe(probe)[0]
    assert (seen["optimizer"], seen["scheduler"], seen["activations"]) == (optimizer, scheduler, [activation])
    if optimizer == "SGD":
        assert seen["optimizer_defaults"]["momentum"] == 0.9
        assert seen["final_lr"] == pytest.approx(0.1 * 0.5)  # StepLR: halved after 2 of the 3 epochs
    if scheduler == "CosineAnnealingLR":
        assert seen["final_lr"] < 0.1
    if scheduler is None:
        assert seen["final_lr"] == 0.1

    ckpt = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")
    hparams = ckpt["hyper_parameters"]
    assert hparams["optimizer"]["name"].rsplit(".", 1)[-1] == optimizer
    assert (hparams["scheduler"] or {}).get("name", "").rsplit(".", 1)[-1] == (scheduler or "")
    assert len(ckpt["lr_schedulers"]) == (scheduler is not None)
    assert hparams["net"]["activation"] == activation.lower().replace("leakyrelu", "leaky_relu")
    group = ckpt["optimizer_states"][0]["param_groups"][0]
    assert ("momentum" in group and "betas" not in group) == (optimizer == "SGD")
    if "data=and" in overrides:
        assert hparams["net"]["hidden_size"] == 8 and ckpt["datamodule_hyper_parameters"]["gate"] == "and"
    if "logger=csv" in overrides:
        assert (tmp_path / "run" / "csv" / "metrics.csv").is_file()


def test_cli_default_run_prints_summary(tmp_path):
    result = run_cli("neuronlab.train", cwd=tmp_path, env={"COLUMNS": "400"})
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    run = only(list((tmp_path / "outputs" / "xor" / "runs").iterdir()))
    assert "test/acc" in out and "1.0000" in out
    assert f"tensorboard --logdir {run / 'tensorboard'}" in out  # COLUMNS: one line, not folded
    assert (run / ".hydra" / "config.yaml").is_file()
    assert (run / "checkpoints" / "best.ckpt").is_file()
    result_json = json.loads((run / "result.json").read_text())
    assert result_json["status"] == "completed" and result_json["metrics"]["test/acc"] == 1.0


def test_cli_help_and_cfg_show_groups_and_composed_config(tmp_path):
    helped = run_cli("neuronlab.train", "--help", cwd=tmp_path)
    assert helped.returncode == 0
    for group in ("data:", "model:", "optimizer:", "scheduler:", "trainer:", "logger:", "experiment:"):
        assert group in helped.stdout
    assert "mnist_classifier" in helped.stdout and "ddp_cpu" in helped.stdout
    shown = run_cli("neuronlab.train", "experiment=mnist", "optimizer=sgd", "--cfg", "job", cwd=tmp_path)
    assert shown.returncode == 0
    assert "_target_: neuronlab.models.MNISTClassifier" in shown.stdout
    assert "_target_: torch.optim.SGD" in shown.stdout


def test_conf_found_from_any_directory(tmp_path):
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    shown = run_cli("neuronlab.train", "--cfg", "job", cwd=elsewhere)
    assert shown.returncode == 0 and "SimpleNN" in shown.stdout
    assert Path(__file__).parents[1].joinpath("conf").is_dir()


def test_steps_per_execution_16_ends_with_the_weights_of_1(compose_cfg, mnist_dir, tmp_path):
    """Same samples, order, dropout draws, clipping and scheduler steps: K=16 and K=7 (a short last group)
    end bit for bit where K=1 does, and TensorBoard's steps and checkpoints count optimizer steps."""
    results = {}
    for k in (1, 7, 16):
        cfg = compose_cfg(
            [
                "experiment=mnist",
                f"paths.data_dir={mnist_dir}",
                "data.val_size=100",
                "data.batch_size=16",  # 500 images: 32 optimizer steps an epoch
                f"data.steps_per_execution={k}",
                "trainer.max_epochs=2",
                "trainer.deterministic=true",
                "trainer.gradient_clip_val=0.5",
                "scheduler=step",
                "scheduler.step_size=1",
                "test=false",
            ],
            run_dir=tmp_path / f"k{k}",
        )
        train(cfg)
        last = load_checkpoint(tmp_path / f"k{k}" / "checkpoints" / "last.ckpt")
        scalars = read_scalars(tmp_path / f"k{k}" / "tensorboard")
        results[k] = last, scalars
        assert last["global_step"] == 64
        assert [step for step, _ in scalars["train/loss"]] == [31, 63]
    reference, reference_scalars = results[1]
    for k in (7, 16):
        last, scalars = results[k]
        for name, value in reference["state_dict"].items():
            assert torch.equal(last["state_dict"][name], value), (k, name)
        adam, reference_adam = last["optimizer_states"][0]["state"], reference["optimizer_states"][0]["state"]
        assert all(torch.equal(adam[i]["exp_avg"], reference_adam[i]["exp_avg"]) for i in reference_adam)
        assert last["lr_schedulers"] == reference["lr_schedulers"]
        assert scalars["train/loss"] == reference_scalars["train/loss"]
        assert scalars["val/acc"] == reference_scalars["val/acc"]


def test_progress_bar_counts_optimizer_steps(tmp_path, mnist_dir):
    args = ["experiment=mnist", f"paths.data_dir={mnist_dir}", "data.val_size=100", "data.batch_size=16"]
    result = run_cli(
        "neuronlab.train", *args, "trainer.max_epochs=1", "data.steps_per_execution=16", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "32/32" in result.stdout and "2/2 " not in result.stdout


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_bf16_steps_per_execution_16_matches_1(compose_cfg, mnist_dir, tmp_path):
    """On the GPU, in bf16-mixed: K=16 runs the same optimizer steps as K=1 (same kernels in the same
    order; compared within bf16 rounding, since GPU kernels need not be bitwise reproducible)."""
    weights = {}
    for k in (1, 16):
        cfg = compose_cfg(
            [
                "experiment=mnist",
                "trainer=gpu",
                "trainer.precision=bf16-mixed",
                f"paths.data_dir={mnist_dir}",
                "data.val_size=100",
                "data.batch_size=16",
                f"data.steps_per_execution={k}",
                "trainer.max_epochs=2",
                "test=false",
            ],
            run_dir=tmp_path / f"k{k}",
        )
        metrics = train(cfg)
        assert metrics["val/acc"] > 0.5
        last = load_checkpoint(tmp_path / f"k{k}" / "checkpoints" / "last.ckpt")
        assert last["global_step"] == 64
        weights[k] = last["state_dict"]
    for name, value in weights[1].items():
        diff = (weights[16][name].float() - value.float()).abs().max().item()
        assert diff <= 1e-2, (name, diff)


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["--cfg", "job"],
        ["--info"],
        ["optimizer.lr=-1"],
        ["trainer.precision=abc"],
        ["model.activation=abc"],
        ["resume=/nowhere"],
        ["data.gate=xnor"],
        ["model.dropout=2"],
    ],
    ids=[
        "help",
        "cfg",
        "info",
        "bad-value",
        "bad-precision",
        "bad-activation",
        "bad-resume",
        "bad-data",
        "bad-net",
    ],
)
def test_help_config_and_config_errors_answer_without_importing_torch_or_lightning(tmp_path, args):
    import os
    import re
    import subprocess
    import sys

    env = {**os.environ, "NEURONLAB_OUTPUT_ROOT": str(tmp_path / "outputs")}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "neuronlab.train", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    imported = re.findall(r"\|\s+(\S+)\s*$", done.stderr, flags=re.M)
    assert imported and "hydra" in imported
    heavy = {m for m in imported if m.split(".")[0] in ("torch", "lightning", "torchmetrics", "matplotlib")}
    assert not heavy, sorted(heavy)[:5]
    if "=" in args[0]:
        assert done.returncode == 2 and "error: " in done.stderr


def test_validate_knows_the_activations_and_precisions_that_torch_and_lightning_know():
    """validate.py keeps these names itself (it runs before torch is imported): they must stay the same."""
    import typing

    from lightning.fabric.connector import _PRECISION_INPUT

    from neuronlab.models.mlp import ACTIVATIONS
    from neuronlab.run import validate

    assert tuple(ACTIVATIONS) == validate.ACTIVATIONS
    lightning = {str(v) for group in typing.get_args(_PRECISION_INPUT) for v in typing.get_args(group)}
    assert set(validate.PRECISIONS) == lightning and len(validate.PRECISIONS) == len(lightning)


def test_ckpt_path_to_a_file_starts_a_new_run_at_the_checkpoints_step(tmp_path, monkeypatch, capsys):
    """``ckpt_path=<file>`` continues that checkpoint's training (weights, optimizer, epoch, step) in a
    new run folder; the run it came from is left as it was, byte for byte."""
    monkeypatch.setenv("NEURONLAB_OUTPUT_ROOT", str(tmp_path / "outputs"))
    common = ["callbacks.early_stopping=null", "trainer.check_val_every_n_epoch=1"]
    code, _, err = run_entry(monkeypatch, capsys, "train", *common, "trainer.max_epochs=5")
    assert code == 0, err[-3000:]
    first = only([p.parent for p in (tmp_path / "outputs").rglob(".hydra")])
    last = first / "checkpoints" / "last.ckpt"
    before = {p: p.read_bytes() for p in first.rglob("*") if p.is_file()}
    started = load_checkpoint(last)
    assert (started["epoch"], started["global_step"]) == (4, 5)  # one full batch a step

    code, _, err = run_entry(
        monkeypatch, capsys, "train", *common, f"ckpt_path={last}", "trainer.max_epochs=8"
    )
    assert code == 0, err[-3000:]
    second = only([p.parent for p in (tmp_path / "outputs").rglob(".hydra") if p.parent != first])
    assert {p: p.read_bytes() for p in first.rglob("*") if p.is_file()} == before
    ended = load_checkpoint(second / "checkpoints" / "last.ckpt")
    assert (ended["epoch"], ended["global_step"]) == (7, 8)
    assert ended["optimizer_states"][0]["state"][0]["step"].item() == 8  # Adam's own count goes on too
    old, new = read_scalars(first / "tensorboard"), read_scalars(second / "tensorboard")
    old_steps, new_steps = [s for s, _ in old["train/loss"]], [s for s, _ in new["train/loss"]]
    assert len(old_steps) == 5 and len(new_steps) == 3 and new_steps[0] > old_steps[-1]
    assert json.loads((second / "result.json").read_text())["metrics"]["epochs"] == 8


def test_the_last_epoch_validates_whatever_the_interval_and_a_short_resume_finishes(
    tmp_path, monkeypatch, capsys
):
    """XOR validates every 10 epochs: a 25-epoch run validates at 10, 20 and 25, and resuming it for 2 more
    epochs validates at 27 (it used to end with "optimized_metric val/acc_best was not logged")."""
    monkeypatch.setenv("NEURONLAB_OUTPUT_ROOT", str(tmp_path / "outputs"))
    code, _, err = run_entry(
        monkeypatch, capsys, "train", "callbacks.early_stopping=null", "trainer.max_epochs=25"
    )
    assert code == 0, err[-3000:]
    run = only([p.parent for p in (tmp_path / "outputs").rglob(".hydra")])
    assert [step for step, _ in read_scalars(run / "tensorboard")["val/loss"]] == [
        9,
        19,
        24,
    ]  # one step an epoch

    code, _, err = run_entry(monkeypatch, capsys, "train", f"resume={run}", "trainer.max_epochs=27")
    assert code == 0, err[-3000:]
    result = json.loads((run / "result.json").read_text())
    assert result["status"] == "completed" and result["metrics"]["epochs"] == 27
    assert [step for step, _ in read_scalars(run / "tensorboard")["val/loss"]] == [9, 19, 24, 26]
