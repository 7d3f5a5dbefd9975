"""Issue 14: parallel runs never share a folder, one writer per folder, every user error is one line
(exit 2, the same message in result.json), nothing checkable is found after training, predict gives every
input its own row. Bad inputs run in-process (``run_main``) so the table stays fast."""

from __future__ import annotations

import json
import os
import shlex
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from neuronlab.data.idx import write_idx
from neuronlab.io.checkpoint import load_checkpoint
from neuronlab.io.images import ImageError, load_image, prepare
from tests.conftest import make_images, only, read_scalars, run_cli, write_mnist
from tests.test_robustness import run_main, runs, small_disk, start, wait_for_last_checkpoint  # noqa: F401


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURONLAB_OUTPUT_ROOT", str(tmp_path / "outputs"))
    return write_mnist(tmp_path / "data", "MNIST", n_train=300, n_test=100)


def mnist(data: Path) -> list[str]:
    return ["experiment=mnist", f"paths.data_dir={data}", "data.val_size=100", "trainer.max_epochs=1"]


def assert_one_error(code: int, err: str, outputs: Path, *phrases: str) -> str:
    """Exit 2, one ``error:`` line holding ``phrases``, no traceback, and every run folder left behind
    records that same message in its result.json (none is empty)."""
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 2, err[-2000:]
    assert len(lines) == 1 and "Traceback" not in err, err[-2000:]
    message = lines[0].removeprefix("error: ")
    for phrase in phrases:
        assert phrase in message, (phrase, message)
    for folder in runs(outputs) if outputs.exists() else []:
        result = json.loads((folder / "result.json").read_text())
        assert result["status"] == "failed" and result["error"] == message
    assert not list(outputs.rglob("*.ckpt")) if outputs.exists() else True
    return message


# --- one folder per run, one writer per folder -------------------------------------------------------


def test_runs_started_in_the_same_instant_get_their_own_folders_and_a_log(tmp_path):
    procs = [start(tmp_path, "trainer.max_epochs=20") for _ in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
    folders = runs(tmp_path / "outputs")
    assert len(folders) == 2, folders
    for folder in folders:
        assert folder.name[:19].replace("_", "-").replace("-", "").isdigit()  # the time first: they sort
        assert [p.name for p in (folder / "checkpoints").iterdir()] in (
            ["best.ckpt", "last.ckpt"],
            ["last.ckpt", "best.ckpt"],
        )
        assert len(list((folder / "tensorboard").glob("events.out.tfevents.*"))) == 1
        assert json.loads((folder / "result.json").read_text())["status"] == "completed"
        log = (folder / "train.log").read_text()
        assert f"run folder {folder}" in log and "completed" in log and "GPU available" in log


def test_folder_names_are_unique_and_sortable(compose_cfg):
    from neuronlab.run.paths import run_id

    names = [run_id() for _ in range(50)]
    assert len(set(names)) == 50 and all(len(n) == 26 and n[19] == "_" for n in names)
    first = compose_cfg([]).hydra.sweep.dir
    second = compose_cfg([]).hydra.sweep.dir
    assert first != second and first.rsplit("/", 1)[0] == second.rsplit("/", 1)[0]


@pytest.mark.slow
def test_two_sweeps_started_in_the_same_second_do_not_merge(tmp_path):
    args = [
        "-m",
        "model.activation=relu,tanh",
        "trainer.max_epochs=5",
        "logger=none",
        "callbacks.figures=null",
    ]
    env = {**os.environ, "NEURONLAB_OUTPUT_ROOT": str(tmp_path / "outputs"), "PYTHONUNBUFFERED": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "neuronlab.train", *args],
            cwd=tmp_path,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for proc in procs:
        assert proc.wait(timeout=300) == 0, proc.stderr.read()[-3000:]
    sweeps = sorted((tmp_path / "outputs").glob("*/multiruns/*"))
    assert len(sweeps) == 2
    for sweep in sweeps:
        assert sorted(p.name.split("_")[0] for p in sweep.iterdir() if (p / ".hydra").is_dir()) == ["0", "1"]


def test_a_second_writer_is_refused_and_a_killed_run_leaves_no_stuck_lock(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NEURONLAB_OUTPUT_ROOT", str(tmp_path / "outputs"))
    proc = start(tmp_path, "callbacks.early_stopping=null", "trainer.max_epochs=100000")
    run = wait_for_last_checkpoint(tmp_path, proc)
    overrides = (run / ".hydra" / "overrides.yaml").read_bytes()
    code, err = run_main(monkeypatch, capsys, f"resume={run}")
    assert code == 2 and "Traceback" not in err
    assert f"error: {run} is in use by process {proc.pid}" in err and "one run writes in a folder" in err
    assert (run / ".hydra" / "overrides.yaml").read_bytes() == overrides  # the folder was left alone
    assert not (run / "result.json").exists()

    proc.send_signal(signal.SIGKILL)  # the OS releases its lock
    proc.wait()
    killed = load_checkpoint(run / "checkpoints" / "last.ckpt")
    before = killed["callbacks"]["WallClock"]["wall_time"]
    started = time.time()
    code, err = run_main(monkeypatch, capsys, f"resume={run}", f"trainer.max_epochs={killed['epoch'] + 3}")
    assert code == 0, err[-3000:]
    result = json.loads((run / "result.json").read_text())
    # the whole run: the killed part (as its last checkpoint recorded it) and the resumed part
    assert result["wall_time"] >= before + 0.9 * (time.time() - started) - 1.0
    assert result["wall_time"] > before


def test_the_resume_command_printed_after_ctrl_c_is_quoted_for_a_shell(tmp_path, capsys):
    from neuronlab.run.report import print_interrupted

    run = tmp_path / "my runs, ü=1 'x' $HOME" / "run"
    print_interrupted(run, "SIGTERM")
    line = only([ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("Resume with: ")])
    assert shlex.split(line.removeprefix("Resume with: ")) == ["neuronlab-train", f"resume={run}"]


def test_the_resume_command_printed_after_ctrl_c_works_in_a_shell(tmp_path, monkeypatch, capsys):
    from neuronlab.run.report import print_interrupted

    root = tmp_path / "my runs, ü=1 'x'"
    monkeypatch.setenv("NEURONLAB_OUTPUT_ROOT", str(root))
    assert run_main(monkeypatch, capsys, "trainer.max_epochs=20")[0] == 0
    run = only(runs(root))
    print_interrupted(run, "SIGINT")
    line = only([ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("Resume with: ")])
    command = line.removeprefix("Resume with: ")
    assert shlex.split(command) == ["neuronlab-train", f"resume={run}"]
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "NEURONLAB_OUTPUT_ROOT": str(root)}
    done = subprocess.run(
        ["bash", "-c", f"{command} trainer.max_epochs=30"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert runs(root) == [run] and load_checkpoint(run / "checkpoints" / "last.ckpt")["epoch"] == 29


# --- every bad value: one line naming the key, exit 2, the same message in result.json ---------------

# (command-line overrides, phrases of the message); "MNIST" expands to a tiny MNIST run
BAD_VALUES: dict[str, tuple[list[str], list[str]]] = {
    "seed": (["seed=-1"], ["seed=-1", ">= 0"]),
    "test": (["test=maybe"], ["test='maybe'", "true or false"]),
    "ckpt_path": (["ckpt_path=[1,2]"], ["ckpt_path=[1, 2]", "a .ckpt file"]),
    "task_name": (["task_name=a/b"], ["task_name='a/b'"]),
    "optimizer.lr type": (["optimizer.lr=fast"], ["optimizer.lr='fast'", "> 0"]),
    "optimizer.lr inf": (["optimizer.lr=inf"], ["optimizer.lr=inf", "a number > 0"]),
    "data.noise nan": (["data.noise=nan"], ["data.noise=nan"]),
    "optimizer.weight_decay": (["optimizer.weight_decay=-1"], ["optimizer.weight_decay=-1", ">= 0"]),
    "optimizer.momentum": (["optimizer=sgd", "optimizer.momentum=1.5"], ["optimizer.momentum=1.5", "[0, 1)"]),
    "model.hidden_size": (["model.hidden_size=0"], ["model.hidden_size=0", "> 0"]),
    "model.input_size": (["model.input_size=x"], ["model.input_size='x'"]),
    "model.output_size": (["model.output_size=0"], ["model.output_size=0"]),
    "model.activation": (["model.activation=swish"], ["model.activation='swish'", "relu"]),
    "model.activation list": (["model.activation=[1]"], ["model.activation=[1]"]),
    "model.dropout": (["model.dropout=-0.1"], ["model.dropout=-0.1", "[0, 1)"]),
    "task.compile": (["task.compile=yes"], ["task.compile='yes'", "true or false"]),
    "model.hidden_sizes": (["MNIST", "model.hidden_sizes=[]"], ["model.hidden_sizes=[]", "non-empty"]),
    "data.gate": (["data.gate=xnor"], ["data.gate='xnor'", "xor"]),
    "data.repeats": (["data.repeats=0"], ["data.repeats=0"]),
    "data.noise": (["data.noise=-1"], ["data.noise=-1"]),
    "data.batch_size": (["data.batch_size=-4"], ["data.batch_size=-4"]),
    "data.val_size zero": (["MNIST", "data.val_size=0"], ["data.val_size=0", ">= 1"]),
    "data.val_size type": (["MNIST", "data.val_size=half"], ["data.val_size='half'"]),
    "data.eval_batch_size": (["MNIST", "data.eval_batch_size=0"], ["data.eval_batch_size=0"]),
    "data.num_workers": (["MNIST", "data.num_workers=-1"], ["data.num_workers=-1"]),
    "data.download": (["MNIST", "data.download=perhaps"], ["data.download='perhaps'"]),
    "data.name": (["MNIST", "data.name=cifar"], ["data.name='cifar'", "fashion_mnist"]),
    "data.augment": (["MNIST", "data.augment=flip"], ["data.augment='flip'", "affine"]),
    "scheduler.step_size": (["scheduler=step", "scheduler.step_size=0"], ["scheduler.step_size=0"]),
    "scheduler.gamma": (["scheduler=step", "scheduler.gamma=-1"], ["scheduler.gamma=-1"]),
    "scheduler.T_max": (["scheduler=cosine", "scheduler.T_max=0"], ["scheduler.T_max=0"]),
    "scheduler.eta_min": (["scheduler=cosine", "scheduler.eta_min=-1"], ["scheduler.eta_min=-1"]),
    "scheduler.factor": (["scheduler=plateau", "scheduler.factor=2"], ["scheduler.factor=2", "(0, 1)"]),
    "scheduler.patience": (["scheduler=plateau", "scheduler.patience=-1"], ["scheduler.patience=-1"]),
    "scheduler.mode": (["scheduler=plateau", "scheduler.mode=up"], ["scheduler.mode='up'", "min or max"]),
    "trainer.max_epochs": (["trainer.max_epochs=0"], ["trainer.max_epochs=0"]),
    "trainer.min_epochs": (["trainer.min_epochs=-2"], ["trainer.min_epochs=-2"]),
    "trainer.min_epochs > max_epochs": (
        ["trainer.min_epochs=30", "trainer.max_epochs=20"],
        ["min_epochs=30"],
    ),
    "trainer.devices": (["trainer.devices=abc"], ["trainer.devices='abc'", "auto"]),
    "trainer.devices zero": (["trainer.devices=0"], ["trainer.devices=0"]),
    "trainer.num_nodes": (["trainer.num_nodes=0"], ["trainer.num_nodes=0"]),
    "trainer.precision": (["trainer.precision=abc"], ["trainer.precision='abc'", "bf16-mixed"]),
    "trainer.accelerator": (["trainer.accelerator=quantum"], ["trainer.accelerator='quantum'", "cpu"]),
    "trainer.check_val_every_n_epoch": (["trainer.check_val_every_n_epoch=0"], ["check_val_every_n_epoch=0"]),
    "trainer.log_every_n_steps": (["trainer.log_every_n_steps=0"], ["trainer.log_every_n_steps=0"]),
    "trainer.num_sanity_val_steps": (["trainer.num_sanity_val_steps=-5"], ["num_sanity_val_steps=-5"]),
    "trainer.deterministic": (["trainer.deterministic=always"], ["trainer.deterministic='always'"]),
    "trainer.fast_dev_run": (["trainer.fast_dev_run=-1"], ["trainer.fast_dev_run=-1"]),
    "trainer.strategy": (["trainer.strategy=teleport"], ["trainer.strategy=teleport", "refused"]),
    "figures.every_n_epochs": (
        ["callbacks.figures.every_n_epochs=0"],
        ["callbacks.figures.every_n_epochs=0"],
    ),
    "figures.num_images": (["callbacks.figures.num_images=-1"], ["callbacks.figures.num_images=-1"]),
    "figures.graph": (["callbacks.figures.graph=maybe"], ["callbacks.figures.graph='maybe'"]),
    "early_stopping.patience": (["callbacks.early_stopping.patience=-1"], ["early_stopping.patience=-1"]),
    "early_stopping.monitor": (["callbacks.early_stopping.monitor=loss"], ["early_stopping.monitor='loss'"]),
    "model_checkpoint.monitor": (
        ["callbacks.model_checkpoint.monitor=acc"],
        ["model_checkpoint.monitor='acc'"],
    ),
    "model_checkpoint.mode": (["callbacks.model_checkpoint.mode=best"], ["model_checkpoint.mode='best'"]),
    "progress_bar.refresh_rate": (["MNIST", "callbacks.progress_bar.refresh_rate=-1"], ["refresh_rate=-1"]),
    "optimized_metric": (["optimized_metric=val/f1"], ["optimized_metric='val/f1'", "val/acc_best"]),
    "optimized_metric without test": (["optimized_metric=test/acc", "test=false"], ["needs test=true"]),
    "an interpolation": (["trainer.max_epochs=${nowhere}"], ["trainer.max_epochs cannot be resolved"]),
    "trainer=gpu without a GPU": (["trainer=gpu"], ["needs a GPU", "trainer=cpu"]),
    "hparams_search without -m": (["hparams_search=gates_optuna"], ["needs -m", "neuronlab-train -m"]),
    "16-bit weights": (["trainer.precision=16-true"], ["trainer.precision=16-true", "16-mixed"]),
}


@pytest.mark.parametrize("case", list(BAD_VALUES))
def test_every_bad_value_is_one_line_naming_the_key(tiny, tmp_path, monkeypatch, capsys, case):
    if case == "trainer=gpu without a GPU" and torch.cuda.is_available():
        pytest.skip("a GPU is present")
    overrides, phrases = BAD_VALUES[case]
    args = [a for o in overrides for a in (mnist(tiny) if o == "MNIST" else [o])]
    code, err = run_main(monkeypatch, capsys, *args)
    message = assert_one_error(code, err, tmp_path / "outputs", *phrases)
    if case == "16-bit weights":
        assert "lower optimizer.lr" not in message  # the learning rate is not the cause


def test_what_used_to_crash_now_works(tmp_path, monkeypatch, capsys):
    """``scheduler=plateau`` on the gates (they validate every 10th epoch): the scheduler steps then."""
    monkeypatch.setenv("NEURONLAB_OUTPUT_ROOT", str(tmp_path / "outputs"))
    code, err = run_main(
        monkeypatch,
        capsys,
        "scheduler=plateau",
        "scheduler.patience=0",
        "callbacks.early_stopping=null",
        "trainer.max_epochs=60",
    )
    assert code == 0, err[-3000:]
    lr = load_checkpoint(only(list((tmp_path / "outputs").rglob("last.ckpt"))))["lr_schedulers"][0]
    # stepped on the validating epochs only (frequency = check_val_every_n_epoch): 6 of 60 epochs, the
    # sixth after last.ckpt was written, since Lightning steps epoch schedulers once the epoch's end-of-epoch
    # callbacks (ModelCheckpoint) have run: the checkpoint holds 5 steps (every epoch would be 59, never 0)
    assert lr["last_epoch"] == 5


def test_outputs_root_that_is_a_file_is_one_error(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    for root in (blocker, blocker / "below"):
        code, err = run_main(monkeypatch, capsys, f"paths.root_dir={root}")
        assert code == 2 and err.count("error: ") == 1 and "Traceback" not in err, err
        assert "cannot write to the outputs folder" in err


def test_full_disk_names_the_file(tiny, small_disk, monkeypatch, capsys):  # noqa: F811
    args = [*mnist(tiny), f"paths.root_dir={small_disk}", "logger=none", "callbacks.figures=null"]
    code, err = run_main(monkeypatch, capsys, *args)
    message = assert_one_error(code, err, small_disk, "No space left on device")
    assert "cannot write " + str(small_disk) in message and ".ckpt" in message


# --- data files: checked when read, every split, before training --------------------------------------


@pytest.mark.parametrize(
    ("split", "what", "phrases"),
    [
        ("train", "labels", ["train-labels-idx1-ubyte", "label -1 (sample 3)", "outside 0..9"]),
        ("t10k", "labels", ["t10k-labels-idx1-ubyte", "label 10 (sample 3)"]),
        ("train", "images", ["train-images-idx3-ubyte", "unsigned bytes", "float32"]),
    ],
)
def test_bad_idx_files_are_refused_before_training(tiny, tmp_path, monkeypatch, capsys, split, what, phrases):
    raw = tiny / "MNIST" / "raw"
    images, labels = make_images(300 if split == "train" else 100, seed=0)
    if what == "labels":
        labels = labels.astype(np.int8)
        labels[3] = -1 if split == "train" else 10
        write_idx(raw / f"{split}-labels-idx1-ubyte", labels)
    else:
        write_idx(raw / f"{split}-images-idx3-ubyte", images.astype(np.float32) / 255)
    code, err = run_main(monkeypatch, capsys, *mnist(tiny))
    assert_one_error(code, err, tmp_path / "outputs", *phrases)
    for events in (tmp_path / "outputs").rglob("tensorboard"):
        assert "train/loss" not in read_scalars(events)  # no epoch was trained


# --- the gates' best checkpoint --------------------------------------------------------------------


def test_gates_best_checkpoint_is_the_lowest_loss_and_the_test_reproduces_it(compose_cfg, tmp_path):
    from neuronlab.train import train

    metrics = train(compose_cfg(["experiment=xor"]))
    val_loss = read_scalars(tmp_path / "run" / "tensorboard")["val/loss"]
    assert metrics["test/acc"] == 1.0 and metrics["val/loss"] < 0.01
    assert metrics["test/loss"] == pytest.approx(min(v for _, v in val_loss), rel=1e-5)
    assert metrics["test/loss"] == pytest.approx(metrics["val/loss"], rel=1e-5)


# --- the other commands ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("tolerance=abc", "tolerance='abc' is not allowed: expected a number"),
        ("tolerance=[1]", "tolerance=[1] is not allowed"),
        ("batch_size=0", "batch_size=0 is not allowed: expected an integer in 1..10000"),
        ("batch_size=many", "batch_size='many' is not allowed"),
    ],
)
def test_export_bad_values(compose_cfg, tmp_path, capsys, override, message):
    from neuronlab.errors import run_command
    from neuronlab.export import export

    cfg = compose_cfg([f"ckpt_path={tmp_path}/x.ckpt", override], config_name="export")
    with pytest.raises(SystemExit) as exit_info:
        run_command(lambda: export(cfg))
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err == f"error: {message}" + err.removeprefix(f"error: {message}")
    assert len(err.strip().splitlines()) == 1


def test_export_to_a_place_it_cannot_write_is_one_error(compose_cfg, tmp_path, capsys):
    from neuronlab.errors import run_command
    from neuronlab.export import export
    from neuronlab.train import train

    train(compose_cfg(["experiment=xor", "trainer.max_epochs=20", "logger=none", "callbacks.figures=null"]))
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    (tmp_path / "a-file").write_text("x")
    for output, message in [
        (tmp_path, "is a folder: name a file, e.g. output=model.pt"),
        ("/dev/null", "is not a plain file"),
        (tmp_path / "a-file" / "model.pt", "cannot write output="),
    ]:
        cfg = compose_cfg(
            [f"ckpt_path={ckpt}", "format=torchscript", f"output={output}"], config_name="export"
        )
        with pytest.raises(SystemExit) as exit_info:
            run_command(lambda cfg=cfg: export(cfg))
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and err.startswith(
            f"error: output={output}" if "cannot" not in message else "error: cannot"
        )
        assert message in err and len(err.strip().splitlines()) == 1


def test_summary_of_damaged_job_folders_marks_them_and_reads_the_rest(tmp_path, capsys):
    from neuronlab.summary import main as summary_main

    sweep = tmp_path / "sweep"
    for num, overrides, result in [
        (
            0,
            "- optimizer.lr=0.1\n",
            {"status": "completed", "metrics": {"val/acc_best": 1.0}, "wall_time": 2},
        ),
        (1, "- optimizer.lr=[unclosed\n  bad: : yaml", None),
        (2, "{a: 1}", None),
        (3, "- optimizer.lr=0.3\n", ["not", "a", "result"]),
        (4, "- optimizer.lr=0.4\n", {"status": "completed", "metrics": {"val/acc_best": "high"}}),
    ]:
        (sweep / f"{num}_job" / ".hydra").mkdir(parents=True)
        (sweep / f"{num}_job" / ".hydra" / "overrides.yaml").write_text(overrides)
        if result is not None:
            (sweep / f"{num}_job" / "result.json").write_text(json.dumps(result))
    summary_main([str(sweep)])
    out = capsys.readouterr().out
    rows = {
        line.split("|")[2].strip(): line
        for line in (sweep / "summary.md").read_text().splitlines()[2:]
        if line.startswith("| ")
    }
    assert "Traceback" not in out
    assert "completed" in rows["0"]
    for num in ("1", "2", "3", "4"):
        assert "failed: unreadable" in rows[num], rows


# --- predict: every input classified or its own error row ------------------------------------------


def _png_header_only(path: Path, width: int, height: int, colour_type: int = 0) -> None:
    """A valid PNG signature and IHDR claiming ``width`` x ``height`` (grey or RGBA): a few bytes that would
    decode to a huge picture; only the header is ever read."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def test_pictures_too_large_blank_or_16_bit(tmp_path):
    huge, big, wide = tmp_path / "huge.png", tmp_path / "big.png", tmp_path / "rgba.png"
    _png_header_only(huge, 14000, 14000)  # PIL's own bomb limit
    _png_header_only(big, 12000, 12000)  # under PIL's, over ours
    _png_header_only(wide, 6000, 6000, colour_type=6)  # 36 megapixels, but 137 MiB decoded as RGBA
    for path, phrase in ((huge, "too large"), (big, "144.0 megapixels"), (wide, "137 MiB decoded")):
        with pytest.raises(ImageError, match=phrase):
            load_image(path)

    for size in ((28, 28), (5, 5), (300, 200)):
        for level in (0, 255, 128):
            with pytest.raises(ImageError, match="blank image"):
                prepare(Image.fromarray(np.full(size, level, np.uint8)))

    photo = np.full((2000, 3000), 240, np.uint8)  # a big light photo with one dark stroke
    photo[500:1500, 1400:1550] = 20
    prepared = prepare(Image.fromarray(photo))
    assert prepared.notes[0] == "reduced 1/3 first" and "resized 3000x2000 -> 28x28" in prepared.notes
    assert prepared.pixels.shape == (28, 28) and prepared.pixels.max() == 1.0

    digit = np.zeros((28, 28), np.uint16)
    digit[6:22, 12:16] = 50000  # a 16-bit stroke: ~195 of 255
    picture = tmp_path / "sixteen.png"
    Image.fromarray(digit).save(picture)
    image = load_image(picture)
    assert image.mode.startswith("I")
    prepared = prepare(image)
    expected = np.where(digit > 0, 50000 * 255 / 65535, 0) / 255
    assert np.allclose(prepared.pixels, expected, atol=1e-6)


def test_predict_refuses_non_finite_points_per_row(compose_cfg, tmp_path, capsys):
    from neuronlab.predict import predict
    from neuronlab.train import train

    train(compose_cfg(["experiment=xor", "logger=none", "callbacks.figures=null"]))
    ckpt = tmp_path / "run" / "checkpoints" / "best.ckpt"
    points = "inputs=[[nan,1],[inf,0],[1,0],[0,-inf],[1e308,-1e308]]"
    cfg = compose_cfg([f"ckpt_path={ckpt}", points], config_name="predict")
    rows = predict(cfg)
    assert [r.error is None for r in rows] == [False, False, True, False, False], rows
    assert all("finite" in r.error for r in rows if r.error)
    assert rows[2].prediction == "1"
    assert "4 of 5 inputs failed" in capsys.readouterr().out


def test_predict_folder_with_an_oversized_a_blank_and_a_good_picture(compose_cfg, mnist_dir, tmp_path):
    from tests.test_predict import template, train_tiny_mnist

    ckpt = train_tiny_mnist(compose_cfg, mnist_dir, tmp_path)
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    _png_header_only(pictures / "a_huge.png", 14000, 14000)
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(pictures / "b_blank28.png")
    Image.fromarray(template(7)).save(pictures / "c_seven.png")
    wide = {"COLUMNS": "400"}  # one line per row, whatever the terminal (or none) is
    result = run_cli("neuronlab.predict", f"ckpt_path={ckpt}", f"inputs={pictures}", cwd=tmp_path, env=wide)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    out = " ".join(result.stdout.split())  # the table may fold long cells over several lines
    assert "a_huge.png │ error │ picture too large" in out, out
    assert "b_blank28.png │ error │ blank image" in out
    assert "c_seven.png │ 7 │ 7 " in out
    assert "2 of 3 inputs failed" in result.stdout


def test_run_lock_is_taken_once_and_is_exclusive_across_processes(tmp_path):
    from neuronlab.run.paths import RunLocked, run_lock

    with run_lock(tmp_path / "run"):
        with pytest.raises(RunLocked, match=f"in use by process {os.getpid()} "), run_lock(tmp_path / "run"):
            pass  # a run takes its folder's lock once: a second taker, even in this process, is refused
        code = f"from neuronlab.run.paths import run_lock\nwith run_lock({str(tmp_path / 'run')!r}): pass"
        other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert (
            other.returncode != 0 and "RunLocked" in other.stderr and "is in use by process" in other.stderr
        )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert other.returncode == 0, other.stderr
    holder = subprocess.Popen([sys.executable, "-c", code.replace("pass", "import time; time.sleep(120)")])
    deadline = time.time() + 60
    lock_file = tmp_path / "run" / ".lock"
    while not lock_file.is_file() or f"process {holder.pid} " not in lock_file.read_text():
        assert time.time() < deadline and holder.poll() is None
        time.sleep(0.05)
    with pytest.raises(RunLocked, match=f"in use by process {holder.pid}"), run_lock(tmp_path / "run"):
        pass
    holder.kill()  # SIGKILL: the OS releases the lock
    holder.wait()
    with run_lock(tmp_path / "run"):
        pass
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "planted").mkdir()
    (tmp_path / "planted" / ".lock").symlink_to(victim)  # a run folder from elsewhere
    with pytest.raises(RunLocked, match="is a symbolic link"), run_lock(tmp_path / "planted"):
        pass
    assert victim.read_text() == "precious"
    with run_lock(tmp_path / "unused"):  # a folder the lock made and nothing used is not left behind
        assert (tmp_path / "unused" / ".lock").is_file()
    assert not (tmp_path / "unused").exists() and (tmp_path / "run" / ".lock").is_file()


@pytest.mark.parametrize(
    ("extra", "phrase"),
    [([], "no such checkpoint file"), (["trainer.precision=abc"], "trainer.precision='abc' is not allowed")],
)
def test_a_failed_eval_is_one_line_and_leaves_its_reason_in_its_folder(tmp_path, extra, phrase):
    result = run_cli("neuronlab.eval", f"ckpt_path={tmp_path}/nowhere.ckpt", *extra, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    errors = [ln.removeprefix("error: ") for ln in result.stderr.splitlines() if ln.startswith("error: ")]
    message = only(errors)
    assert phrase in message
    folder = only(list((tmp_path / "outputs").glob("eval/runs/*")))
    assert json.loads((folder / "result.json").read_text()) | {"finished_at": ""} == {
        "finished_at": "",
        "status": "failed",
        "error": message,
    }


def test_a_run_that_never_starts_leaves_no_folder(tmp_path, monkeypatch, capsys):
    """``hydra.run.dir=`` locks the folder before Hydra starts; an option Hydra cannot compose then leaves
    nothing behind, nor does a search without ``-m`` or an unwritable outputs root."""
    monkeypatch.setenv("NEURONLAB_OUTPUT_ROOT", str(tmp_path / "outputs"))
    code, err = run_main(monkeypatch, capsys, f"hydra.run.dir={tmp_path / 'mine'}", "model=foo")
    assert code != 0 and "model/foo" in err
    code, _ = run_main(monkeypatch, capsys, "hparams_search=mnist_optuna")
    assert code == 2
    assert not (tmp_path / "mine").exists() and not runs(tmp_path / "outputs")
