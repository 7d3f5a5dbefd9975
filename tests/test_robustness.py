"""Nothing lost, nothing confusing: resume after SIGKILL, Ctrl-C/SIGTERM, reproducibility, and one clear
message for every kind of bad input (the README's troubleshooting table, case by case)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from neuronlab.io.checkpoint import load_checkpoint
from tests.conftest import (
    ctrl_c_as_in_a_terminal,
    flip_labels,
    only,
    read_scalars,
    run_cli,
    run_entry,
    write_mnist,
)


def run_main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    """``neuronlab-train args...`` in this process: (exit code, stderr)."""
    code, _, err = run_entry(monkeypatch, capsys, "train", *args)
    return code, err


def runs(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.rglob(".hydra"))


def start(tmp_path: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "NEURONLAB_OUTPUT_ROOT": str(tmp_path / "outputs"), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "neuronlab.train", *args],
        cwd=tmp_path,
        env=env,
        preexec_fn=ctrl_c_as_in_a_terminal,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_last_checkpoint(tmp_path: Path, proc: subprocess.Popen, timeout: float = 120) -> Path:
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = list((tmp_path / "outputs").rglob("checkpoints/last.ckpt"))
        if found:
            return found[0].parents[1]
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        time.sleep(0.02)
    raise AssertionError("no last.ckpt appeared")


# --- resume -----------------------------------------------------------------------------------------


def test_resume_after_sigkill_continues_the_same_folder_and_matches_an_uninterrupted_run(tmp_path):
    data = write_mnist(tmp_path / "data", "MNIST", n_train=600, n_test=200)
    flip_labels(data, "train", np.arange(0, 600, 4))  # accuracies below 100 %: they can tell runs apart
    args = [
        "experiment=mnist",
        f"paths.data_dir={data}",
        "data.val_size=100",
        "data.batch_size=8",
        "trainer.max_epochs=3",
        "trainer.deterministic=true",
        "seed=3",
    ]
    (tmp_path / "reference").mkdir()
    reference = run_cli("neuronlab.train", *args, cwd=tmp_path / "reference")
    assert reference.returncode == 0, reference.stderr[-3000:]
    reference_run = only(runs(tmp_path / "reference" / "outputs"))
    expected = json.loads((reference_run / "result.json").read_text())

    proc = start(tmp_path, *args)
    run = wait_for_last_checkpoint(tmp_path, proc)
    proc.send_signal(signal.SIGKILL)  # no chance to clean up
    proc.wait()
    killed_at = load_checkpoint(run / "checkpoints" / "last.ckpt")["epoch"]
    assert killed_at < 2

    # a run folder never chooses a path: the data folder is given again (the saved one is refused)
    resumed = run_cli("neuronlab.train", f"resume={run}", f"paths.data_dir={data}", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert runs(tmp_path / "outputs") == [run]  # the same run folder, no new one
    result = json.loads((run / "result.json").read_text())
    assert result["metrics"]["val/acc"] < 1.0
    for key in ("test/acc", "val/acc_best", "val/acc", "train/acc", "val/loss", "train/loss", "test/loss"):
        assert result["metrics"][key] == expected["metrics"][key], key
    same_state(run / "checkpoints" / "last.ckpt", reference_run / "checkpoints" / "last.ckpt")
    # the curves continue: one point per epoch, no step twice. Validation points are flushed with the
    # checkpoint, so all three are there; Lightning writes an epoch's train/* just after its checkpoint,
    # so a kill in that instant (as here) may take the killed epoch's train point with it.
    scalars = read_scalars(run / "tensorboard")
    val_steps = [step for step, _ in scalars["val/loss"]]
    assert val_steps == sorted(set(val_steps)) and len(val_steps) == 3
    train_steps = [step for step, _ in scalars["train/loss"]]
    assert train_steps == sorted(set(train_steps)) and len(train_steps) in (2, 3)
    assert train_steps[-1] == val_steps[-1]


def same_state(a: Path, b: Path) -> None:
    """Two checkpoints hold bit-identical weights and optimizer state (Adam's moments and step)."""
    first, second = load_checkpoint(a), load_checkpoint(b)
    assert (first["epoch"], first["global_step"]) == (second["epoch"], second["global_step"])
    assert first["state_dict"].keys() == second["state_dict"].keys()
    for key, value in first["state_dict"].items():
        assert torch.equal(value, second["state_dict"][key]), key
    (opt_a,), (opt_b,) = first["optimizer_states"], second["optimizer_states"]
    assert opt_a["param_groups"] == opt_b["param_groups"]
    assert opt_a["state"].keys() == opt_b["state"].keys() and opt_a["state"]
    for index, state in opt_a["state"].items():
        for name, value in state.items():
            assert torch.equal(value, opt_b["state"][index][name]), (index, name)


def curves(run: Path) -> dict[str, list[tuple[int, float]]]:
    """The run's train/*, val/* and test/* curves as TensorBoard shows them: (step, value) pairs."""
    return {
        k: v
        for k, v in read_scalars(run / "tensorboard").items()
        if k.split("/")[0] in ("train", "val", "test")
    }


def test_resume_continues_bit_for_bit_and_the_curves_exactly(tmp_path, monkeypatch, capsys):
    """A run killed after epoch 2 whose event file already holds later epochs (written before the kill)
    resumes to the same weights, Adam moments and curves as an uninterrupted run: same data order, RNG
    (dropout masks) and optimizer state, no event twice. Label noise keeps accuracies below 100 %."""
    data = write_mnist(tmp_path / "data", "MNIST", n_train=300, n_test=100)
    flip_labels(data, "train", np.arange(0, 300, 3))
    args = [
        "experiment=mnist",
        f"paths.data_dir={data}",
        "data.val_size=60",
        "data.batch_size=16",
        "trainer.deterministic=true",
        "callbacks.figures=null",
        "seed=3",
    ]

    def train_in(root: str, *more: str) -> None:
        monkeypatch.setenv("NEURONLAB_OUTPUT_ROOT", str(tmp_path / root))
        code, err = run_main(monkeypatch, capsys, *more)
        assert code == 0, err[-3000:]

    train_in("reference", *args, "trainer.max_epochs=4")
    reference = only(runs(tmp_path / "reference"))
    assert 0.3 < json.loads((reference / "result.json").read_text())["metrics"]["val/acc"] < 1.0

    train_in("outputs", *args, "trainer.max_epochs=2")
    run = only(runs(tmp_path / "outputs"))
    last = run / "checkpoints" / "last.ckpt"
    after_two = last.read_bytes()
    train_in("outputs", f"resume={run}", "trainer.max_epochs=4", f"paths.data_dir={data}")
    assert runs(tmp_path / "outputs") == [run]
    same_state(last, reference / "checkpoints" / "last.ckpt")
    assert curves(run) == curves(reference)

    # killed after epoch 2's checkpoint, its later epochs already in the event file
    last.write_bytes(after_two)
    (run / "result.json").unlink()
    train_in("outputs", f"resume={run}", f"paths.data_dir={data}")
    assert runs(tmp_path / "outputs") == [run]
    same_state(last, reference / "checkpoints" / "last.ckpt")
    assert curves(run) == curves(reference)
    assert len(curves(run)["val/loss"]) == 4
    result = json.loads((run / "result.json").read_text())["metrics"]
    assert result == json.loads((reference / "result.json").read_text())["metrics"]


def test_ckpt_path_to_a_run_folder_resumes_it_and_later_overrides_win(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NEURONLAB_OUTPUT_ROOT", str(tmp_path / "outputs"))
    assert run_main(monkeypatch, capsys, "trainer.max_epochs=20")[0] == 0
    run = only(runs(tmp_path / "outputs"))
    first = load_checkpoint(run / "checkpoints" / "last.ckpt")
    assert run_main(monkeypatch, capsys, f"ckpt_path={run}", "trainer.max_epochs=30")[0] == 0
    assert runs(tmp_path / "outputs") == [run]
    last = load_checkpoint(run / "checkpoints" / "last.ckpt")
    assert last["epoch"] == 29 and last["global_step"] == first["global_step"] + 10  # 10 more, not 30
    for tag, points in curves(run).items():  # continued: each step once
        steps = [step for step, _ in points]
        assert steps == sorted(set(steps)), tag
    assert len(curves(run)["train/loss"]) == 30


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_and_sigterm_stop_cleanly_and_say_how_to_resume(tmp_path, sig, code):
    proc = start(tmp_path, "callbacks.early_stopping=null", "trainer.max_epochs=100000")
    run = wait_for_last_checkpoint(tmp_path, proc)
    time.sleep(0.3)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err[-3000:]
    assert f"Resume with: neuronlab-train resume={run}" in err
    assert "Traceback" not in err
    interrupted = load_checkpoint(run / "checkpoints" / "interrupted.ckpt")
    assert interrupted["global_step"] >= load_checkpoint(run / "checkpoints" / "last.ckpt")["global_step"]
    assert json.loads((run / "result.json").read_text())["status"] == "interrupted"


def fit_pressing_ctrl_c(tmp_path: Path, press: type, max_epochs: int):
    """A real one-process fit on XOR with ``GracefulInterrupt`` and the callback class ``press`` (which
    raises SIGINT as a terminal's Ctrl-C does); returns both callbacks once Lightning has ended the fit."""
    import functools

    import lightning.pytorch as L

    from neuronlab.data import GatesDataModule
    from neuronlab.models import SimpleNN
    from neuronlab.run.callbacks import GracefulInterrupt
    from neuronlab.tasks import Classifier

    interrupt, probe = GracefulInterrupt(str(tmp_path)), press()
    trainer = L.Trainer(
        max_epochs=max_epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        callbacks=[interrupt, probe],
    )
    task = Classifier(SimpleNN(), optimizer=functools.partial(torch.optim.Adam, lr=0.1))
    with pytest.raises(SystemExit):  # Lightning ends an interrupted fit with sys.exit(1)
        trainer.fit(task, datamodule=GatesDataModule(gate="xor"))
    return interrupt, probe


def test_ctrl_c_stops_at_the_end_of_the_step_it_arrived_in_and_python_gets_its_handler_back(
    tmp_path, python_ctrl_c
):
    """The handler only notes the Ctrl-C; the run stops at that step's end (never in the middle of a
    write), saves interrupted.ckpt there, and Python's own Ctrl-C handling is back afterwards."""
    import lightning.pytorch as L

    class CtrlCAtStep3(L.Callback):
        def on_train_batch_start(self, trainer, *args) -> None:
            self.handler = signal.getsignal(signal.SIGINT)
            if trainer.global_step == 3:
                signal.raise_signal(signal.SIGINT)  # as a terminal's Ctrl-C: the handler runs here

    interrupt, probe = fit_pressing_ctrl_c(tmp_path, CtrlCAtStep3, max_epochs=50)
    assert interrupt.stopped_by == "SIGINT"
    assert load_checkpoint(tmp_path / "interrupted.ckpt")["global_step"] == 4  # step 3 finished, no more
    assert probe.handler not in (signal.default_int_handler, signal.SIG_IGN)  # deferred while training
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Python's own again


def test_ctrl_c_after_the_last_step_ends_the_run_as_interrupted_and_python_gets_its_handler_back(
    tmp_path, python_ctrl_c
):
    """Pressed once no step is left to end: teardown stops the run; Lightning then sets SIGINT to "ignore"
    (it expects the process to end), and the handler from before the run must come back, or a notebook
    (and every process a sweep starts after it) would ignore Ctrl-C from then on."""
    import lightning.pytorch as L

    class CtrlCAtTrainEnd(L.Callback):
        def on_train_end(self, trainer, pl_module) -> None:
            signal.raise_signal(signal.SIGINT)

    interrupt, _ = fit_pressing_ctrl_c(tmp_path, CtrlCAtTrainEnd, max_epochs=2)
    assert interrupt.stopped_by == "SIGINT"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# --- reproducible -----------------------------------------------------------------------------------


def test_same_seed_and_config_give_identical_metrics_and_the_run_records_its_environment(
    compose_cfg, mnist_dir, tmp_path
):
    from neuronlab.train import train

    overrides = [
        "experiment=mnist",
        f"paths.data_dir={mnist_dir}",
        "data.val_size=100",
        "trainer.max_epochs=2",
    ]
    first = train(compose_cfg(overrides, run_dir=tmp_path / "one"))
    second = train(compose_cfg(overrides, run_dir=tmp_path / "two"))
    assert first == second
    env = json.loads((tmp_path / "one" / "environment.json").read_text())
    from importlib.metadata import version

    assert env["packages"]["torch"] == version("torch") and env["packages"]["lightning"] == version(
        "lightning"
    )
    assert "git_commit" in env and env["python"]


# --- bad input: one message naming key/file, found, allowed; non-zero exit; no traceback -------------


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURONLAB_OUTPUT_ROOT", str(tmp_path / "outputs"))
    return write_mnist(tmp_path / "data", "MNIST", n_train=600, n_test=200)


def bad_input_cases(data: Path, tmp_path: Path) -> dict[str, tuple[list[str], list[str]]]:
    """case -> (command-line overrides, phrases the message must contain)."""
    mnist = ["experiment=mnist", f"paths.data_dir={data}", "data.val_size=100"]
    return {
        "unknown option": (["model=foo"], ["model/foo", "choose one of: mnist_classifier, modern_network"]),
        "unknown key": (
            ["trainer.max_epoch=5"],
            ["trainer.max_epoch", "not in struct", "+trainer.max_epoch=5"],
        ),
        "wrong type": (["trainer.max_epochs=abc"], ["trainer.max_epochs='abc'", "an integer > 0"]),
        "lr <= 0": (["optimizer.lr=-0.1"], ["optimizer.lr=-0.1", "a number > 0"]),
        "dropout outside [0,1)": (["model.dropout=1.0"], ["model.dropout=1.0", "[0, 1)"]),
        "zero hidden size": ([*mnist, "model.hidden_sizes=[256,0]"], ["model.hidden_sizes=[256, 0]", "> 0"]),
        "batch size <= 0": ([*mnist, "data.batch_size=0"], ["data.batch_size=0", "a positive integer"]),
        "val_size too big": ([*mnist[:2], "data.val_size=600"], ["data.val_size=600", "600 training images"]),
        "input size mismatch": (
            ["data=mnist", f"paths.data_dir={data}", "data.val_size=100"],
            ["model.input_size=2", "784 features"],
        ),
        "data missing offline": (
            ["experiment=mnist", f"paths.data_dir={tmp_path / 'empty'}", "data.download=false"],
            [str(tmp_path / "empty" / "MNIST" / "raw"), "t10k-labels-idx1-ubyte", "data.download=true"],
        ),
        "checkpoint missing": (
            ["ckpt_path=/nowhere/x.ckpt"],
            ["ckpt_path=/nowhere/x.ckpt", "no such checkpoint"],
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "unknown option",
        "unknown key",
        "wrong type",
        "lr <= 0",
        "dropout outside [0,1)",
        "zero hidden size",
        "batch size <= 0",
        "val_size too big",
        "input size mismatch",
        "data missing offline",
        "checkpoint missing",
    ],
)
def test_bad_input_gets_one_clear_message(tiny, tmp_path, monkeypatch, capsys, case):
    overrides, phrases = bad_input_cases(tiny, tmp_path)[case]
    code, err = run_main(monkeypatch, capsys, *overrides)
    assert code == 2 and len([line for line in err.splitlines() if line.startswith("error: ")]) == 1, err
    for phrase in phrases:
        assert phrase in err, (phrase, err)
    assert "Traceback" not in err
    assert not list((tmp_path / "outputs").rglob("*.ckpt"))  # nothing that looks like a trained result
    for result in (tmp_path / "outputs").rglob("result.json"):
        assert json.loads(result.read_text())["status"] == "failed"


def test_truncated_idx_file_is_named(tiny, tmp_path, monkeypatch, capsys):
    images = tiny / "MNIST" / "raw" / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:5000])
    code, err = run_main(
        monkeypatch, capsys, "experiment=mnist", f"paths.data_dir={tiny}", "data.val_size=100"
    )
    assert code == 2 and str(images) in err and "truncated" in err and "Traceback" not in err


def test_corrupt_checkpoint_and_checkpoint_of_another_architecture(tiny, tmp_path, monkeypatch, capsys):
    corrupt = tmp_path / "corrupt.ckpt"
    corrupt.write_bytes(b"PK\x03\x04 definitely not a checkpoint")
    code, err = run_main(monkeypatch, capsys, f"ckpt_path={corrupt}")
    assert code == 2 and f"ckpt_path={corrupt} is not a readable checkpoint" in err

    assert run_main(monkeypatch, capsys, "trainer.max_epochs=10")[0] == 0
    best = only(list((tmp_path / "outputs").rglob("best.ckpt")))
    code, err = run_main(monkeypatch, capsys, "model.hidden_size=8", f"ckpt_path={best}")
    assert (
        code == 2 and "holds another architecture" in err and "hidden_size: checkpoint 4 vs config 8" in err
    )

    from neuronlab.errors import NeuronlabError
    from neuronlab.eval import evaluate  # noqa: F401  (eval's path uses the same loader)
    from neuronlab.io.checkpoint import load_classifier

    with pytest.raises(NeuronlabError, match="not a readable checkpoint"):
        load_classifier(corrupt)


def test_diverging_training_stops_naming_epoch_and_step_and_keeps_the_last_good_checkpoint(
    tiny, tmp_path, monkeypatch, capsys
):
    # fine for a few epochs, then the learning rate explodes (x1e12 per epoch) until the weights overflow
    args = [
        "optimizer=sgd",
        "optimizer.lr=0.1",
        "scheduler=step",
        "scheduler.step_size=1",
        "scheduler.gamma=1e12",
    ]
    code, err = run_main(monkeypatch, capsys, *args)
    assert code == 2 and "Traceback" not in err
    assert "are no longer finite" in err and "at epoch 3, step 4" in err
    last = load_checkpoint(only(list((tmp_path / "outputs").rglob("last.ckpt"))))
    assert last["epoch"] == 2
    assert all(torch.isfinite(v).all() for k, v in last["state_dict"].items() if k.startswith("net."))


def test_nan_loss_names_epoch_and_step(tiny, tmp_path, monkeypatch, capsys):
    code, err = run_main(
        monkeypatch, capsys, "optimizer=sgd", "optimizer.lr=1e30", "trainer.check_val_every_n_epoch=1"
    )
    assert code == 2 and "Traceback" not in err
    assert "at epoch 0, step 1" in err and "lower optimizer.lr" in err
    assert not list((tmp_path / "outputs").rglob("*.ckpt"))  # no checkpoint of diverged weights


def _mount_tmpfs(target: Path, options: str) -> bool:
    target.mkdir(parents=True, exist_ok=True)
    return (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True
        ).returncode
        == 0
    )


def _tmpfs(tmp_path: Path, options: str, purpose: str):
    target = tmp_path / "mounted"
    if os.geteuid() != 0 or not _mount_tmpfs(target, options):
        pytest.skip(f"needs root and tmpfs mounts to make {purpose}")
    yield target
    subprocess.run(["umount", "--lazy", str(target)], check=False)  # our log file may still be open there


@pytest.fixture
def small_disk(tmp_path):
    yield from _tmpfs(tmp_path, "size=1m", "a full disk")


@pytest.fixture
def read_only_disk(tmp_path):
    yield from _tmpfs(tmp_path, "ro,size=1m", "a read-only folder")


def test_read_only_outputs_folder(read_only_disk, monkeypatch, capsys):
    code, err = run_main(monkeypatch, capsys, f"paths.root_dir={read_only_disk / 'outputs'}")
    assert code == 2 and "cannot write to the outputs folder" in err and "Read-only file system" in err


def test_full_outputs_folder(tiny, small_disk, monkeypatch, capsys):
    """A 1 MB disk: the config fits, the MNIST checkpoint (2.8 MB) does not."""
    code, err = run_main(
        monkeypatch,
        capsys,
        "experiment=mnist",
        f"paths.data_dir={tiny}",
        "data.val_size=100",
        f"paths.root_dir={small_disk}",
        "logger=none",
        "callbacks.figures=null",
    )
    assert code == 2 and "No space left on device" in err and "Traceback" not in err
    assert not [
        p for p in small_disk.rglob("*.ckpt") if p.stat().st_size > 0 and p.name in ("best.ckpt", "last.ckpt")
    ]


@pytest.fixture
def tiny_disk(tmp_path):
    yield from _tmpfs(tmp_path, "size=24k", "a disk too small for the first checkpoint")


def test_a_full_disk_before_the_first_checkpoint_ends_in_one_line_and_resume_says_start_anew(
    tiny_disk, monkeypatch, capsys
):
    """24 kB: the run's record fits, its first last.ckpt does not. The run ends in one line; resume=
    refuses in one line that says there is nothing to continue and what to do, and changes nothing."""
    code, err = run_main(monkeypatch, capsys, "trainer.max_epochs=2", f"paths.root_dir={tiny_disk}")
    assert code == 2 and err.count("error:") == 1 and "No space left on device" in err, err
    run = only(runs(tiny_disk))
    assert not list(run.rglob("*.ckpt"))
    before = {
        p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name not in ("train.log", ".lock")
    }
    code, err = run_main(monkeypatch, capsys, f"resume={run}", "trainer.max_epochs=3")
    line = err.strip().splitlines()[-1]
    assert code == 2 and err.count("error:") == 1 and "Traceback" not in err
    assert "kept no checkpoint to continue from" in line and "start it again as a new run" in line, line
    after = {
        p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name not in ("train.log", ".lock")
    }
    assert after == before
