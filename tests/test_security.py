"""Files from someone else (checkpoints, run folders) choose no code and no path: each attack of issue 12 is
tried on real files written here, through the real commands; each must end in one `error:` line with exit
code 2 and leave every file outside the command's own outputs as it was."""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from neuronlab.errors import NeuronlabError
from neuronlab.io.checkpoint import load_checkpoint, load_classifier
from neuronlab.tasks import Classifier
from tests.conftest import one_error_line, run_cli, run_entry

MARKER = "owned.txt"


class Evil:
    """A pickle that creates a marker file when loaded without ``weights_only``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return (Path.write_text, (self.marker, "code ran"))


def snapshot(root: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """Every file under ``root`` (but those under ``skip``) with a hash of its bytes."""
    files = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not path.is_symlink() and not rel.startswith(skip):
            files[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished XOR run folder (20 epochs, validated every epoch)."""
    root = tmp_path_factory.mktemp("trained")
    done = run_cli(
        "neuronlab.train",
        "trainer.max_epochs=20",
        "trainer.check_val_every_n_epoch=1",
        "callbacks.early_stopping=null",
        "callbacks.figures=null",
        cwd=root,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return next((root / "outputs").rglob("checkpoints")).parent


@pytest.fixture
def run(trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the trained run in this test's folder; outputs of commands go to tmp_path/outputs."""
    monkeypatch.setenv("NEURONLAB_OUTPUT_ROOT", str(tmp_path / "outputs"))
    copy = tmp_path / "shared" / "run"
    shutil.copytree(trained, copy)
    return copy


def tampered(run: Path, name: str, change: Callable[[dict[str, Any]], None]) -> Path:
    """A copy of the run's best checkpoint with ``change`` applied to its dict."""
    checkpoint = torch.load(run / "checkpoints" / "best.ckpt", weights_only=True)
    change(checkpoint)
    path = run.parent / name
    torch.save(checkpoint, path)
    return path


# --- 1. a stored DataModule _target_ never runs --------------------------------------------------------


@pytest.mark.parametrize("command", ["eval", "export"])
def test_a_checkpoint_cannot_choose_the_datamodule_code(run, tmp_path, monkeypatch, capsys, command):
    victim = tmp_path / "shared" / "victim.txt"
    victim.write_text("precious")
    evil = tmp_path / "shared" / "evil.pkl"
    evil.write_bytes(pickle.dumps(Evil(tmp_path / MARKER)))
    attacks = {
        "truncate.ckpt": {"_target_": "builtins.open", "file": str(victim), "mode": "w"},
        "pickle.ckpt": {"_target_": "torch.load", "f": str(evil), "weights_only": False},
        "lookalike.ckpt": {"_target_": "neuronlab.data.gates.GatesDataModuleX", "gate": "xor"},
        "extra.ckpt": {"_target_": "neuronlab.data.gates.GatesDataModule", "gate": "xor", "f": "x"},
        "type.ckpt": {"_target_": "neuronlab.data.gates.GatesDataModule", "gate": "xor", "repeats": "9"},
        "huge.ckpt": {"_target_": "neuronlab.data.gates.GatesDataModule", "gate": "xor", "repeats": 10**9},
    }
    for name, data in attacks.items():
        ckpt = tampered(run, name, lambda c, data=data: c.__setitem__("datamodule_hyper_parameters", data))
        before = snapshot(tmp_path, skip=("outputs",))
        code, _, err = run_entry(monkeypatch, capsys, command, f"ckpt_path={ckpt}")
        line = one_error_line(err)
        assert code == 2 and f"ckpt_path={ckpt}" in line and "datamodule_hyper_parameters" in line, line
        assert snapshot(tmp_path, skip=("outputs",)) == before, name
        assert victim.read_text() == "precious" and not (tmp_path / MARKER).exists()


def test_a_pickle_as_checkpoint_runs_nothing_and_never_suggests_weights_only_false(
    run, tmp_path, monkeypatch, capsys
):
    evil = tmp_path / "evil.ckpt"
    evil.write_bytes(pickle.dumps(Evil(tmp_path / MARKER)))
    for command in ("eval", "predict", "export"):
        extra = ["inputs=[[0,1]]"] if command == "predict" else []
        code, _, err = run_entry(monkeypatch, capsys, command, f"ckpt_path={evil}", *extra)
        line = one_error_line(err)
        assert code == 2 and "is not a readable checkpoint" in line and "weights_only=False" not in err
    assert not (tmp_path / MARKER).exists()


def test_a_recorded_data_folder_is_read_never_written():
    from neuronlab.io.checkpoint import datamodule_from_checkpoint

    stored = {"_target_": "neuronlab.data.mnist.MNISTDataModule", "name": "mnist", "data_dir": "/x"}
    stored["download"] = True
    datamodule, name = datamodule_from_checkpoint({"datamodule_hyper_parameters": stored}, "c.ckpt")
    assert name == "mnist" and str(datamodule.data_dir) == "/x" and datamodule.download is False
    mine, _ = datamodule_from_checkpoint({"datamodule_hyper_parameters": stored}, "c.ckpt", data_dir="/mine")
    assert str(mine.data_dir) == "/mine" and mine.download is True  # the user's own folder: as stored


# --- 2. a run folder's saved overrides set plain values of known keys only ------------------------------


@pytest.mark.parametrize(
    ("override", "why"),
    [
        ("hydra.callbacks.evil._target_=builtins.print", "hydra.* keys"),
        ("hydra/launcher=joblib", "hydra.* keys"),
        ("+callbacks.evil._target_=lightning.pytorch.callbacks.ModelSummary", "adds or removes"),
        ("++trainer.fast_dev_run=true", "adds or removes"),
        ("~callbacks.interrupt", "adds or removes"),
        ("callbacks.figures._target_=builtins.print", "choose code"),
        ("optimizer._partial_=false", "choose code"),
        ("trainer.plugins=[{_target_: builtins.print}]", "only numbers, strings"),
        ("seed=${oc.env:HOME}", "only numbers, strings"),
        ("model=../../../tmp/evil", "model must be one of"),
        ("optimizer.lr=choice(0.1,0.2)", "is a sweep"),
        ("data@trainer=mnist", "config package"),
        ("logger.tensorboard.name=../../../x", "a run folder may set only"),
        ("callbacks.model_checkpoint.dirpath=/tmp", "never chooses where files are"),
        ("callbacks.model_checkpoint.filename=../../x", "never chooses where files are"),
        ("paths.root_dir=/", "never chooses where files are"),
        ("trainer.default_root_dir=/", "never chooses where files are"),
    ],
)
def test_a_run_folder_cannot_add_code_hydra_keys_or_paths(run, tmp_path, monkeypatch, capsys, override, why):
    overrides = run / ".hydra" / "overrides.yaml"
    overrides.write_text(yaml.safe_dump(["trainer.max_epochs=25", override]))
    before = snapshot(tmp_path)
    code, _, err = run_entry(monkeypatch, capsys, "train", f"resume={run}", "trainer.max_epochs=30")
    line = one_error_line(err)
    assert code == 2 and repr(override) in line and why in line and str(overrides) in line, line
    assert snapshot(tmp_path) == before


def test_the_user_may_give_what_a_run_folder_may_not(run, tmp_path):
    from neuronlab.run.resume import resume_argv

    (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(["callbacks.figures.num_images=4"]))
    (run / "result.json").write_text(json.dumps({"status": "interrupted"}))
    argv = resume_argv(["neuronlab-train", f"resume={run}", "paths.data_dir=/data", "optimizer.lr=0.05"])
    assert argv[1:4] == ["callbacks.figures.num_images=4", "paths.data_dir=/data", "optimizer.lr=0.05"]
    assert argv[4] == "hydra.output_subdir=null"  # the resume's own record is written once it is accepted
    assert argv[5].startswith("ckpt_path=") and argv[6] == f"hydra.run.dir='{run}'"
    # a saved path is refused, but the same key given by the user replaces it
    (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(["paths.data_dir=/elsewhere"]))
    with pytest.raises(NeuronlabError, match="never chooses where files are read or written"):
        resume_argv(["neuronlab-train", f"resume={run}"])
    assert "paths.data_dir=/data" in resume_argv(["neuronlab-train", f"resume={run}", "paths.data_dir=/data"])


@pytest.mark.parametrize("content", ["{a: 1}", "- [unclosed", "!!python/object:os.system {}", "- 3"])
def test_a_malformed_overrides_file_is_one_clear_error(run, monkeypatch, capsys, content):
    (run / ".hydra" / "overrides.yaml").write_text(content)
    code, _, err = run_entry(monkeypatch, capsys, "train", f"resume={run}")
    assert code == 2 and "overrides.yaml" in one_error_line(err)


def test_a_run_folder_with_links_out_of_it_is_refused(run, tmp_path, monkeypatch, capsys):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.rmtree(run / "tensorboard")
    (run / "tensorboard").symlink_to(outside, target_is_directory=True)
    code, _, err = run_entry(monkeypatch, capsys, "train", f"resume={run}", "trainer.max_epochs=30")
    assert code == 2 and "is a symbolic link" in one_error_line(err)
    assert list(outside.iterdir()) == []


# --- 3. callback state naming files outside the run -----------------------------------------------------


def _escape_model_checkpoint_state(checkpoint: dict[str, Any], folder: Path, escape: str) -> int:
    """Point every ModelCheckpoint state of ``checkpoint`` at ``escape``; returns how many it changed."""
    changed = 0
    for key, state in checkpoint["callbacks"].items():
        if key.startswith("ModelCheckpoint") and state.get("best_model_path"):  # the best-model callback
            state.update(
                dirpath=str(folder),  # the folder it is resumed in: Lightning restores all of it
                best_k_models={escape: torch.tensor(-1.0)},
                best_model_path=escape,
                kth_best_model_path=escape,
                best_model_score=torch.tensor(-1.0),
                kth_value=torch.tensor(-1.0),
            )
            changed += 1
    return changed


def test_resume_never_removes_a_file_that_the_checkpoint_names_outside_the_run(
    run, tmp_path, monkeypatch, capsys
):
    victim = tmp_path / "victim.ckpt"
    victim.write_bytes(b"a checkpoint someone cares about")
    last = run / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, weights_only=True)
    escape = str(run / "checkpoints" / ".." / ".." / ".." / "victim.ckpt")
    assert _escape_model_checkpoint_state(checkpoint, run / "checkpoints", escape) >= 1  # not a no-op
    torch.save(checkpoint, last)
    (run / "result.json").write_text(json.dumps({"status": "interrupted"}))
    code, _, err = run_entry(monkeypatch, capsys, "train", f"resume={run}", "trainer.max_epochs=23")
    assert code == 0, err[-3000:]
    assert victim.read_bytes() == b"a checkpoint someone cares about"
    assert (run / "checkpoints" / "best.ckpt").is_file()
    assert load_checkpoint(last)["epoch"] == 22


def test_the_model_checkpoint_guard_refuses_dot_dot_paths_that_lightnings_own_check_accepts(run, tmp_path):
    """Lightning compares ``Path.absolute()`` (``checkpoints/../../../x.ckpt`` starts with the folder), so
    its own ModelCheckpoint keeps such a state and would later delete ``x.ckpt``; ours resets it."""
    from lightning.pytorch.callbacks import ModelCheckpoint as LightningModelCheckpoint

    from neuronlab.run.callbacks import ModelCheckpoint

    folder = run / "checkpoints"
    checkpoint = torch.load(folder / "last.ckpt", weights_only=True)
    escape = str(folder / ".." / ".." / ".." / "victim.ckpt")
    _escape_model_checkpoint_state(checkpoint, folder, escape)
    state = next(
        s
        for k, s in checkpoint["callbacks"].items()
        if k.startswith("ModelCheckpoint") and s["best_k_models"]
    )
    theirs = LightningModelCheckpoint(dirpath=folder, monitor="val/loss", filename="best")
    theirs.load_state_dict(dict(state))
    assert theirs.best_model_path == escape  # what our guard exists for
    ours = ModelCheckpoint(dirpath=folder, monitor="val/loss", filename="best")
    ours.load_state_dict(dict(state))
    assert ours.best_model_path == "" and ours.best_k_models == {}


# --- 4. a tampered net description is one clear message -------------------------------------------------


def _set_net(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda c: c["hyper_parameters"]["net"].__setitem__(key, value)


TAMPERINGS = {
    "unknown class": (_set_net("_target_", "torch.nn.Transformer"), "'torch.nn.Transformer' is not allowed"),
    "lookalike class": (_set_net("_target_", "neuronlab.models.mlp.SimpleNNX"), "SimpleNNX' is not allowed"),
    "extra key": (_set_net("bias", False), "SimpleNN has no argument 'bias'"),
    "wrong type": (_set_net("hidden_size", "4"), "model.hidden_size='4'"),
    "negative size": (_set_net("hidden_size", -4), "model.hidden_size=-4"),
    "huge size": (_set_net("hidden_size", 60000), "does not match the weights"),
    "bad activation": (_set_net("activation", "os.system"), "model.activation='os.system'"),
    "not a dict": (lambda c: c["hyper_parameters"].__setitem__("net", "SimpleNN"), "expected a mapping"),
    "wrong num_classes": (lambda c: c["hyper_parameters"].__setitem__("num_classes", 10), "10 classes"),
    "bool num_classes": (
        lambda c: c["hyper_parameters"].__setitem__("num_classes", True),
        "num_classes=True",
    ),
    "optimizer class": (
        lambda c: c["hyper_parameters"]["optimizer"].__setitem__("name", "builtins.exec"),
        "'builtins.exec' is not allowed",
    ),
    "optimizer argument": (
        lambda c: c["hyper_parameters"]["optimizer"].__setitem__("params", "x"),
        "has no argument 'params'",
    ),
    "optimizer name type": (
        lambda c: c["hyper_parameters"]["optimizer"].__setitem__("name", 5),
        "5 is not allowed",
    ),
    "lightning version": (
        lambda c: c.__setitem__("pytorch-lightning_version", "not.a.version"),
        "pytorch-lightning_version is not valid",
    ),
    "control characters": (
        lambda c: c["hyper_parameters"]["net"].__setitem__("_target_", "\x1b[2Jevil\nerror: forged"),
        "'\\x1b[2Jevil\\nerror: forged' is not allowed",
    ),
    "unknown hparam": (lambda c: c["hyper_parameters"].__setitem__("_target_", "os.system"), "unknown keys"),
    "epoch type": (lambda c: c.__setitem__("epoch", "3"), "epoch is not valid"),
    "rng state": (lambda c: c.__setitem__("rng_state", {"torch": torch.zeros(3)}), "rng_state.torch"),
    "optimizer state": (lambda c: c.__setitem__("optimizer_states", [{"lr": 1}]), "optimizer_states[0]"),
    "plain state dict": (lambda c: c.pop("state_dict"), "not a Lightning checkpoint"),
    "callback state": (
        lambda c: [state.__setitem__("best_model_score", "x") for state in c["callbacks"].values()],
        ".best_model_score is not valid",
    ),
    "loop counter": (
        lambda c: c["loops"]["fit_loop"]["epoch_progress"]["current"].__setitem__("processed", -1),
        "loops is not valid",
    ),
}


@pytest.mark.parametrize("case", sorted(TAMPERINGS))
def test_a_tampered_checkpoint_is_refused_with_what_is_wrong(run, case):
    change, expected = TAMPERINGS[case]
    ckpt = tampered(run, "tampered.ckpt", change)
    with pytest.raises(NeuronlabError) as refused:
        load_classifier(ckpt)
    assert str(refused.value).startswith(f"ckpt_path={ckpt}") and expected in str(refused.value)
    assert "\n" not in str(refused.value) and "\x1b" not in str(refused.value)


@pytest.mark.parametrize("command", ["eval", "predict", "export"])
def test_every_command_reports_a_tampered_net_in_one_line(run, tmp_path, monkeypatch, capsys, command):
    ckpt = tampered(run, "tampered.ckpt", _set_net("hidden_size", [4]))
    extra = ["inputs=[[0,1]]"] if command == "predict" else []
    before = snapshot(tmp_path, skip=("outputs",))
    code, _, err = run_entry(monkeypatch, capsys, command, f"ckpt_path={ckpt}", *extra)
    line = one_error_line(err)
    assert code == 2 and "model.hidden_size=[4]" in line and f"ckpt_path={ckpt}" in line
    assert snapshot(tmp_path, skip=("outputs",)) == before


# --- 5. export never writes over what it reads ---------------------------------------------------------


def test_export_refuses_to_overwrite_its_own_checkpoint(run, tmp_path, monkeypatch, capsys):
    best = run / "checkpoints" / "best.ckpt"
    as_pt = run.parent / "model.pt"
    shutil.copy(best, as_pt)
    link = run.parent / "link.onnx"
    link.symlink_to(best)
    hard = run.parent / "hard.onnx"
    hard.hardlink_to(best)
    cases = [
        [f"ckpt_path={as_pt}", "format=torchscript"],  # the default output name is the checkpoint itself
        [f"ckpt_path={best}", f"output={best}"],
        [f"ckpt_path={best}", f"output={run / 'checkpoints' / '..' / 'checkpoints' / 'best.ckpt'}"],
        [f"ckpt_path={best}", f"output={link}"],
        [f"ckpt_path={best}", f"output={hard}"],
    ]
    for args in cases:
        before = snapshot(tmp_path)
        code, _, err = run_entry(monkeypatch, capsys, "export", *args)
        assert code == 2 and "is the checkpoint being exported" in one_error_line(err), args
        assert snapshot(tmp_path) == before
    assert load_classifier(as_pt) and load_classifier(best)


# --- 6. one loader rebuilds the task; Lightning's own loader is pointed at it ----------------------------


def test_load_classifier_rebuilds_the_net_and_optimizer_and_lightnings_loader_points_at_it(run):
    best = run / "checkpoints" / "best.ckpt"
    task, _ = load_classifier(best)
    assert type(task.net).__name__ == "SimpleNN" and task.optimizer_factory.func is torch.optim.Adam
    points = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    assert task.predict_step(points).round().tolist() == [0.0, 1.0, 1.0, 0.0]
    with pytest.raises(ValueError, match=r"neuronlab\.io\.checkpoint\.load_classifier\(path\)"):
        Classifier.load_from_checkpoint(best, weights_only=True)  # the stored net is a description


def test_a_checkpoint_that_would_unpack_past_the_cap_is_refused_before_it_is_unpacked(tmp_path, monkeypatch):
    """A deflated archive of zeros: a few kB on disk, 16 MiB unpacked (the cap lowered to 4 MiB here; the
    same check holds a 2.9 MB file that unpacks to 3.6 GB under the real 1 GiB cap)."""
    import zipfile

    import neuronlab.io.checkpoint as ckpt_module

    monkeypatch.setattr(ckpt_module, "MAX_INFLATED_BYTES", 4 << 20)
    bomb = tmp_path / "bomb.ckpt"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data/0", bytes(16 << 20))
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(NeuronlabError, match="would unpack to 16 MiB .more than 4 MiB.: not a neuronlab"):
        load_checkpoint(bomb)


# --- 7. resuming a completed run -----------------------------------------------------------------------


def test_resuming_a_completed_run_changes_nothing_and_a_longer_run_keeps_every_metric(
    run, tmp_path, monkeypatch, capsys
):
    before = snapshot(tmp_path)
    code, out, err = run_entry(monkeypatch, capsys, "train", f"resume={run}")
    assert code == 0 and "is already complete: it trained 20 epochs" in out, out + err
    assert "trainer.max_epochs=40" in out
    assert snapshot(tmp_path) == before
    code, out, err = run_entry(monkeypatch, capsys, "train", f"resume={run}", "trainer.max_epochs=20")
    assert code == 0 and "already complete" in out and snapshot(tmp_path) == before

    code, _, err = run_entry(monkeypatch, capsys, "train", f"resume={run}", "trainer.max_epochs=24")
    assert code == 0, err[-3000:]
    result = json.loads((run / "result.json").read_text())
    assert result["status"] == "completed" and result["metrics"]["epochs"] == 24
    for key in ("train/loss", "train/acc", "val/loss", "val/acc", "val/acc_best", "test/loss", "test/acc"):
        assert key in result["metrics"], key


def test_a_finished_checkpoint_in_a_new_run_asks_for_more_epochs(run, monkeypatch, capsys):
    last = run / "checkpoints" / "last.ckpt"
    code, _, err = run_entry(monkeypatch, capsys, "train", f"ckpt_path={last}", "trainer.max_epochs=20")
    assert code == 2 and "has already trained 20 epochs" in one_error_line(err)
