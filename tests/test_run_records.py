"""The record says what the run did: a resume that would train otherwise than its record says is
refused, ``result.json`` names the checkpoint that was tested, a folder holds one run, a run id or a
quoted root stays inside the outputs, and a run stopped during its final test resumes into that test."""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import pytest

from neuronlab.run.folder import best_checkpoint
from tests.conftest import only, run_cli, run_entry
from tests.test_resume_errors import files
from tests.test_robustness import runs


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A completed 2-epoch XOR run with a step schedule: one to copy per test."""
    root = tmp_path_factory.mktemp("trained")
    done = run_cli("neuronlab.train", "trainer.max_epochs=2", "logger=none", "scheduler=step", cwd=root)
    assert done.returncode == 0, done.stderr[-3000:]
    return only(runs(root / "outputs"))


def copy_of(trained: Path, tmp_path: Path) -> Path:
    run = tmp_path / "outputs" / "xor" / "runs" / trained.name
    shutil.copytree(trained, run)
    return run


@pytest.mark.parametrize(
    ("change", "phrases"),
    [
        (
            ["optimizer.lr=0.0001"],
            ["optimizer.lr=0.1 (not 0.0001)", "to change the optimizer, start a new run"],
        ),
        (["scheduler.gamma=0.9"], ["scheduler.gamma=0.5 (not 0.9)", "start a new run"]),
        (
            ["scheduler=cosine"],
            ["was trained with scheduler torch.optim.lr_scheduler.StepLR", "scheduler=step"],
        ),
    ],
)
def test_a_resume_that_changes_the_optimizer_or_scheduler_is_refused_and_changes_nothing(
    trained, tmp_path, change, phrases
):
    """The restored optimizer/scheduler state would bring the old settings back while the record said the
    new ones; and a refused resume leaves a finished run's result.json and .hydra/ as they were."""
    run = copy_of(trained, tmp_path)
    before = files(run)
    done = run_cli("neuronlab.train", f"resume={run}", "trainer.max_epochs=3", *change, cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-3000:]
    err = done.stderr.strip().splitlines()
    assert err[-1].startswith("error: ") and "Traceback" not in done.stderr
    for phrase in phrases:
        assert phrase in err[-1], (phrase, err[-1])
    after = files(run)
    assert {p: b for p, b in after.items() if p.name not in ("train.log", ".lock")} == {
        p: b for p, b in before.items() if p.name not in ("train.log", ".lock")
    }


def test_a_moved_run_resumed_records_the_checkpoint_it_tested(trained, tmp_path):
    """A moved folder's checkpoint state names the old folder: the best is tracked afresh (best-v1.ckpt)
    and result.json must name that file, the one tested, not the stale best.ckpt."""
    run = copy_of(trained, tmp_path)
    done = run_cli("neuronlab.train", f"resume={run}", "trainer.max_epochs=3", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((run / "result.json").read_text())
    tested = Path(result["best_checkpoint"])
    assert tested.parent == run / "checkpoints" and tested.is_file()
    newest = max((run / "checkpoints").glob("best*.ckpt"), key=lambda p: p.stat().st_mtime_ns)
    assert tested == newest
    assert f"best checkpoint  {tested}" in done.stdout
    assert best_checkpoint(run) == tested  # what neuronlab.train([...]) returns as the run's checkpoint


def test_a_second_fresh_run_into_a_folder_holding_a_run_is_refused(trained, tmp_path):
    run = copy_of(trained, tmp_path)
    before = files(run)
    done = run_cli(
        "neuronlab.train", "trainer.max_epochs=1", "logger=none", f"hydra.run.dir={run}", cwd=tmp_path
    )
    assert done.returncode == 2
    assert done.stderr.count("error:") == 1 and "Traceback" not in done.stderr
    assert "already holds a run" in done.stderr and "resume=" in done.stderr
    assert files(run) == before


def test_the_same_run_id_twice_is_refused_the_second_time(trained, tmp_path):
    """``NEURONLAB_RUN_ID`` names the folder: the second run with it would write into the first's."""
    run = copy_of(trained, tmp_path)
    before = files(run)
    env = {"NEURONLAB_RUN_ID": run.name}
    done = run_cli("neuronlab.train", "trainer.max_epochs=1", "logger=none", cwd=tmp_path, env=env)
    assert done.returncode == 2 and done.stderr.count("error:") == 1 and "Traceback" not in done.stderr
    assert f"{run} already holds a run" in done.stderr and f"resume={run}" in done.stderr
    assert files(run) == before


def test_a_run_id_that_is_not_a_plain_folder_name_is_refused(tmp_path):
    done = run_cli(
        "neuronlab.train",
        "trainer.max_epochs=1",
        "logger=none",
        cwd=tmp_path,
        env={"NEURONLAB_RUN_ID": "../../.."},
    )
    assert done.returncode == 2 and done.stderr.count("error:") == 1 and "Traceback" not in done.stderr
    assert "NEURONLAB_RUN_ID='../../..'" in done.stderr and "plain folder name" in done.stderr
    assert not (tmp_path / "outputs").exists() or not list((tmp_path / "outputs").rglob("*.hydra"))
    assert not [p for p in tmp_path.iterdir() if p.name not in ("outputs",)]


def test_a_quoted_root_dir_is_used_as_the_path_it_names(tmp_path):
    root = tmp_path / "out root"
    done = run_cli(
        "neuronlab.train", "trainer.max_epochs=1", "logger=none", f"paths.root_dir='{root}'", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert only(runs(root)).is_relative_to(root)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out root"]  # nothing like ./'...' beside it


def test_ctrl_c_during_the_final_test_resumes_into_that_test(tmp_path, monkeypatch, capsys, python_ctrl_c):
    """Fit completed, a real SIGINT arrived as the test started: the printed resume command re-runs it."""
    import os

    from neuronlab.tasks import Classifier

    monkeypatch.setenv("NEURONLAB_OUTPUT_ROOT", str(tmp_path / "outputs"))
    monkeypatch.setattr(Classifier, "on_test_start", lambda self: os.kill(os.getpid(), signal.SIGINT))
    code, _, err = run_entry(monkeypatch, capsys, "train", "trainer.max_epochs=2", "logger=none")
    assert code == 130, err[-3000:]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Lightning left it "ignore"
    monkeypatch.undo()
    run = only(runs(tmp_path / "outputs"))
    assert json.loads((run / "result.json").read_text())["status"] == "interrupted"
    command = only([line for line in err.splitlines() if line.startswith("Resume with: ")])
    assert command == f"Resume with: neuronlab-train resume={run}"
    done = run_cli("neuronlab.train", f"resume={run}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((run / "result.json").read_text())
    assert result["status"] == "completed" and result["metrics"]["epochs"] == 2
    assert {"test/acc", "val/acc_best"} <= set(result["metrics"])
    assert result["best_checkpoint"] == str(run / "checkpoints" / "best.ckpt")
