"""DDP through the real entry point: one run folder, rank-0 outputs, metrics over the whole split."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from neuronlab.io.checkpoint import load_classifier
from neuronlab.run.paths import launcher_rank, run_id
from tests.conftest import flip_labels, only, read_scalars, run_cli, write_mnist
from tests.probes import read_probe, tests_importable


def run_folders(outputs: Path) -> list[Path]:
    return sorted(p.parent for p in outputs.rglob(".hydra"))


def test_ddp_cpu_xor_gives_one_run_folder_one_event_file_one_summary(tmp_path):
    result = run_cli("neuronlab.train", "trainer=ddp_cpu", "trainer.max_epochs=30", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run = only(run_folders(tmp_path / "outputs"))
    assert run.parent.name == "runs"
    assert len(list((run / "tensorboard").glob("events.out.tfevents.*"))) == 1
    assert result.stdout.count("neuronlab run") == 1  # the summary is printed by rank 0 only
    assert {"val/acc", "test/acc"} <= set(read_scalars(run / "tensorboard"))
    task, ckpt = load_classifier(run / "checkpoints" / "last.ckpt")
    assert ckpt["epoch"] == 29
    assert task.predict_step(torch.rand(3, 2)).shape == (3,)
    assert json.loads((run / "result.json").read_text())["status"] == "completed"


def test_ddp_each_rank_takes_its_shard_and_metrics_cover_the_split(tmp_path):
    """2 processes, 401 training images (101 for validation) and 201 test images: shards of unequal size,
    no padding duplicates. Every even test image is mislabelled, and rank 0 evaluates the even ones: an
    epoch metric that is not summed over processes (an average of the two ranks' values) is far off."""
    data = write_mnist(tmp_path / "data", "MNIST", n_train=401, n_test=201)
    flip_labels(data, "t10k", np.arange(0, 201, 2))
    flip_labels(data, "train", np.arange(0, 401, 5))
    common = [f"paths.data_dir={data}", "data.val_size=101", "data.batch_size=32", "data.eval_batch_size=16"]
    probe = tmp_path / "probe"
    trained = run_cli(
        "neuronlab.train",
        "experiment=mnist",
        "trainer=ddp_cpu",
        "trainer.max_epochs=2",
        "callbacks.figures=null",
        "+callbacks.probe._target_=tests.probes.Probe",
        f"+callbacks.probe.out={probe}",
        *common,
        cwd=tmp_path,
        env=tests_importable(),
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    run = only(run_folders(tmp_path / "outputs"))
    ddp_metrics = json.loads((run / "result.json").read_text())["metrics"]
    assert 0.2 < ddp_metrics["test/acc"] < 0.8  # half the test labels are wrong

    # each rank trained on its own 150 of the 300 training images: 5 steps of 32 per epoch, and tested
    # its own shard (101 and 100 images); the confusion matrix, summed over both, counts all 201
    ranks = read_probe(probe)
    assert sorted(ranks) == [0, 1]
    for rank, record in ranks.items():
        assert record["world_size"] == 2
        assert record["train_samples"] == [150, 150], rank
        assert record["train_steps"] == record["global_step"] == 10, rank
        assert record["test_samples"] == (101, 100)[rank]
        assert record["confusion_total"] == 201

    # the same checkpoint, evaluated in one process without Lightning's help
    task, ckpt = load_classifier(run / "checkpoints" / "best.ckpt")
    datamodule = instantiate(ckpt["datamodule_hyper_parameters"])
    datamodule.setup("test")
    x, y = datamodule.splits["test"]
    assert len(y) == 201
    with torch.no_grad():
        logits = task.net(x)
    accuracy = (logits.argmax(-1) == y).float().mean().item()
    loss = torch.nn.functional.cross_entropy(logits, y).item()
    assert ddp_metrics["test/acc"] == pytest.approx(accuracy, abs=1e-6)
    assert ddp_metrics["test/loss"] == pytest.approx(loss, rel=1e-6)
    even, odd = ((logits[i::2].argmax(-1) == y[i::2]).float().mean().item() for i in (0, 1))
    assert odd - even > 0.3  # the two ranks' accuracies differ: an average of the two would be off

    # validation too: the last epoch's val/* (the weights of last.ckpt) over the whole validation split,
    # 51 and 50 images on the two ranks; an average of the ranks' own values would be off
    task, _ = load_classifier(run / "checkpoints" / "last.ckpt")
    datamodule.setup("fit")
    x, y = datamodule.splits["val"]
    assert len(y) == 101
    with torch.no_grad():
        logits = task.net(x)
    losses = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    assert ddp_metrics["val/acc"] == pytest.approx((logits.argmax(-1) == y).float().mean().item(), abs=1e-6)
    assert ddp_metrics["val/loss"] == pytest.approx(losses.mean().item(), rel=1e-6)
    ranks_mean = (losses[0::2].mean().item() + losses[1::2].mean().item()) / 2
    assert abs(ranks_mean - losses.mean().item()) > 1e-5 * losses.mean().item()  # 10x the tolerance above

    # and through neuronlab-eval in one process: the same numbers
    evaluated = run_cli(
        "neuronlab.eval", f"ckpt_path={run / 'checkpoints' / 'best.ckpt'}", "trainer=cpu", cwd=tmp_path
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    eval_run = only([p for p in run_folders(tmp_path / "outputs") if p.parent.parent.name == "eval"])
    eval_metrics = json.loads((eval_run / "result.json").read_text())["metrics"]
    assert eval_metrics["test/acc"] == pytest.approx(ddp_metrics["test/acc"], abs=1e-6)
    assert eval_metrics["test/loss"] == pytest.approx(ddp_metrics["test/loss"], rel=1e-6)


@pytest.mark.slow  # 30 s: two DDP jobs of two processes each; DDP and sweeps are each covered by default
def test_ddp_inside_a_sweep_gives_one_folder_per_job(tmp_path):
    result = run_cli(
        "neuronlab.train",
        "-m",
        "trainer=ddp_cpu",
        "trainer.max_epochs=10",
        "optimizer.lr=0.1,0.05",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    folders = run_folders(tmp_path / "outputs")
    assert len(folders) == 2, folders  # no extra folder per worker, and the sweep was not re-run
    assert all(f.parent.parent.name == "multiruns" for f in folders)
    for job in folders:
        assert len(list((job / "tensorboard").glob("events.out.tfevents.*"))) == 1
        assert (job / "checkpoints" / "last.ckpt").is_file()
        assert json.loads((job / "result.json").read_text())["status"] == "completed"
    assert result.stdout.count("neuronlab run") == 2


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("trainer=gpu", {"accelerator": "gpu", "devices": 1, "strategy": "auto"}),
        ("trainer=ddp", {"accelerator": "gpu", "devices": -1, "strategy": "ddp", "num_nodes": 1}),
        ("trainer=ddp_cpu", {"accelerator": "cpu", "devices": 2, "strategy": "ddp"}),
        ("trainer=cpu", {"accelerator": "cpu", "devices": 1}),
    ],
)
def test_trainer_configs_compose(compose_cfg, option, expected):
    cfg = compose_cfg([option])
    for key, value in expected.items():
        assert cfg.trainer[key] == value, key
    assert cfg.trainer.precision == "32-true"


def test_ddp_knobs_from_the_command_line(compose_cfg):
    cfg = compose_cfg(
        ["trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2", "trainer.precision=bf16-mixed"]
    )
    assert (cfg.trainer.devices, cfg.trainer.num_nodes, cfg.trainer.precision) == (4, 2, "bf16-mixed")


def test_bf16_mixed_precision_runs_on_cpu(compose_cfg, tmp_path):
    from neuronlab.train import train

    probe = tmp_path / "probe"
    overrides = ["trainer=cpu", "trainer.precision=bf16-mixed", "trainer.max_epochs=20"]
    metrics = train(
        compose_cfg(
            [*overrides, "+callbacks.probe._target_=tests.probes.Probe", f"+callbacks.probe.out={probe}"]
        )
    )
    assert 0.0 <= metrics["test/acc"] <= 1.0
    seen = read_probe(probe)[0]
    assert seen["precision"] == "bf16-mixed" and seen["train_output_dtype"] == "torch.bfloat16"


def test_torchrun_processes_share_one_run_folder_named_after_the_rendezvous(monkeypatch, compose_cfg):
    for var in ("NEURONLAB_RUN_ID", "SLURM_NTASKS", "SLURM_JOB_ID"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "mnist1")
    monkeypatch.setenv("WORLD_SIZE", "8")
    monkeypatch.setenv("RANK", "5")
    assert run_id() == "torchrun-mnist1" and launcher_rank() == 5
    cfg = compose_cfg([])
    assert cfg.hydra.run.dir.endswith("/xor/runs/torchrun-mnist1")
    monkeypatch.setenv("WORLD_SIZE", "1")  # a single process under torchrun: a folder of its own
    monkeypatch.delenv("RANK")
    assert run_id()[:4].isdigit()


def test_one_folder_name_for_every_process_of_a_launch(monkeypatch):
    for var in (
        "NEURONLAB_RUN_ID",
        "SLURM_NTASKS",
        "SLURM_JOB_ID",
        "TORCHELASTIC_RUN_ID",
        "RANK",
        "WORLD_SIZE",
    ):
        monkeypatch.delenv(var, raising=False)
    assert run_id()[:4].isdigit() and launcher_rank() == 0
    monkeypatch.setenv("SLURM_NTASKS", "8")
    monkeypatch.setenv("SLURM_JOB_ID", "1234")
    monkeypatch.setenv("SLURM_STEP_ID", "0")
    monkeypatch.setenv("SLURM_PROCID", "5")
    assert run_id() == "slurm-1234.0" and launcher_rank() == 5
    monkeypatch.setenv("NEURONLAB_RUN_ID", "my-run")
    assert run_id() == "my-run"


needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@needs_gpu
def test_gpu_run(tmp_path):
    result = run_cli(
        "neuronlab.train",
        "trainer=gpu",
        "trainer.precision=bf16-mixed",
        "trainer.max_epochs=30",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 CUDA GPUs")
def test_ddp_gpu_run(tmp_path):
    result = run_cli(
        "neuronlab.train", "trainer=ddp", "trainer.devices=2", "trainer.max_epochs=30", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(run_folders(tmp_path / "outputs")) == 1


@pytest.mark.slow
def test_a_real_torchrun_launch_writes_one_folder_named_after_its_rendezvous(tmp_path):
    import shutil
    import sys

    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    if torchrun is None:
        pytest.skip("torchrun is not installed beside this Python")
    result = subprocess.run(
        [
            *(torchrun, "--nnodes=1", "--nproc-per-node=2", "--rdzv-backend=c10d"),
            *("--rdzv-endpoint=localhost:0", "--rdzv-id=lesson1", "-m", "neuronlab.train"),
            *("trainer=ddp_cpu", "trainer.devices=2", "trainer.max_epochs=10", "logger=none"),
        ],
        cwd=tmp_path,
        env={**os.environ, "NEURONLAB_OUTPUT_ROOT": str(tmp_path / "outputs"), "NEURONLAB_RUN_ID": ""},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run = only(run_folders(tmp_path / "outputs"))
    assert run.name == "torchrun-lesson1"
    assert json.loads((run / "result.json").read_text())["status"] == "completed"
