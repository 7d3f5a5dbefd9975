"""Promises that planted bugs once slipped past (issue 23, "the tests do not guard what they claim"): each
test here goes through a real command on real files and fails when its guard is removed or weakened
(``scripts/mutation_table.py`` plants each bug and checks that these tests catch it)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import optuna
import pytest
import torch
import yaml
from optuna.trial import TrialState

from neuronlab.io.checkpoint import epochs_done, load_checkpoint, load_classifier
from tests.conftest import one_error_line, run_cli, run_entry

QUIET = ["callbacks.figures=null", "callbacks.early_stopping=null", "trainer.check_val_every_n_epoch=1"]


def snapshot(root: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """Every file under ``root`` (links too, by where they point), with a hash of its bytes."""
    files = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(skip) or path.name in skip:
            continue
        if path.is_symlink():
            files[rel] = f"-> {path.readlink()}"
        elif path.is_file():
            files[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A completed XOR run of 4 epochs, trained as 2 epochs and then resumed for 2 more, and a copy of its
    ``last.ckpt`` after the first 2 (an older checkpoint of the same run)."""
    root = tmp_path_factory.mktemp("finished")
    first = run_cli("neuronlab.train", "trainer.max_epochs=2", *QUIET, cwd=root)
    assert first.returncode == 0, first.stderr[-3000:]
    run = next((root / "outputs").rglob("checkpoints")).parent
    older = root / "epoch2.ckpt"
    shutil.copy(run / "checkpoints" / "last.ckpt", older)
    more = run_cli("neuronlab.train", f"resume={run}", "trainer.max_epochs=4", cwd=root)
    assert more.returncode == 0, more.stderr[-3000:]
    assert epochs_done(load_checkpoint(run / "checkpoints" / "last.ckpt")) == 4
    return run, older


@pytest.fixture
def run(finished: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the finished run in this test's folder; commands write under tmp_path/outputs."""
    monkeypatch.setenv("NEURONLAB_OUTPUT_ROOT", str(tmp_path / "outputs"))
    copy = tmp_path / "shared" / "run"
    shutil.copytree(finished[0], copy)
    return copy


# --- a run folder chooses no Hydra key, whatever part of Hydra it names --------------------------------


@pytest.mark.parametrize(
    "override",
    [
        "hydra.job.env_set.NEURONLAB_PLANTED=1",  # an environment variable for the run
        "hydra.job.chdir=true",
        "hydra.job_logging.root.level=DEBUG",
        "hydra.verbose=true",
    ],
)
def test_a_run_folder_sets_no_hydra_key_of_any_kind(run, tmp_path, monkeypatch, capsys, override):
    overrides = run / ".hydra" / "overrides.yaml"
    overrides.write_text(yaml.safe_dump(["trainer.max_epochs=4", override]))
    before = snapshot(tmp_path)
    code, _, err = run_entry(monkeypatch, capsys, "train", f"resume={run}", "trainer.max_epochs=6")
    line = one_error_line(err)
    assert code == 2 and repr(override) in line and "hydra.* keys" in line and str(overrides) in line, line
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("override", ["data.repeats=20000000", "data.num_workers=4096"])
def test_a_run_folder_asks_for_no_more_data_copies_or_workers_than_a_checkpoint_may(
    run, tmp_path, monkeypatch, capsys, override
):
    """The caps of a stored checkpoint hold for stored overrides too (20 million copies of the gates'
    points took 7.7 GB before the run even started)."""
    (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(["trainer.max_epochs=4", override]))
    before = snapshot(tmp_path)
    code, _, err = run_entry(monkeypatch, capsys, "train", f"resume={run}", "trainer.max_epochs=6")
    line = one_error_line(err)
    assert code == 2 and repr(override) in line and "at most" in line, line
    assert snapshot(tmp_path) == before


# --- no link anywhere in the folders a resume writes to ------------------------------------------------


@pytest.mark.parametrize(
    "planted", [".hydra/config.yaml", "checkpoints/best.ckpt", "tensorboard/hparams.yaml"]
)
def test_a_link_inside_a_run_folders_hydra_checkpoints_or_tensorboard_is_refused(
    run, tmp_path, monkeypatch, capsys, planted
):
    victim = tmp_path / "victim.txt"
    victim.write_text("the user's file\n")
    link = run / planted
    assert link.is_file()  # a file the resumed run would write again
    link.unlink()
    link.symlink_to(victim)
    before = snapshot(tmp_path)
    code, _, err = run_entry(monkeypatch, capsys, "train", f"resume={run}", "trainer.max_epochs=6")
    line = one_error_line(err)
    assert code == 2 and f"{link} is a symbolic link" in line, line
    assert snapshot(tmp_path) == before and victim.read_text() == "the user's file\n"


# --- a resume starts from the newest checkpoint of the run ---------------------------------------------


def test_an_older_interrupted_checkpoint_never_wins_over_a_newer_last(
    run, finished, tmp_path, monkeypatch, capsys
):
    """An interrupted run, resumed and trained on, keeps its stale ``interrupted.ckpt``: the resume still
    starts from ``last.ckpt`` (4 epochs), never goes back to the older one (2 epochs) and retrains over it."""
    shutil.copy(finished[1], run / "checkpoints" / "interrupted.ckpt")
    before = snapshot(tmp_path)
    code, out, err = run_entry(monkeypatch, capsys, "train", f"resume={run}", "trainer.max_epochs=3")
    assert code == 0 and f"{run} is already complete: it trained 4 epochs" in out, out + err[-3000:]
    assert snapshot(tmp_path) == before
    assert epochs_done(load_checkpoint(run / "checkpoints" / "last.ckpt")) == 4


# --- a loss that is no longer finite stops the run at that step ----------------------------------------


def test_a_diverging_run_stops_at_its_first_non_finite_step_and_keeps_its_last_good_checkpoint(tmp_path):
    """XOR trains one step per epoch: with lr=1e30 the first step is finite and blows the weights up, the
    second (epoch 1, step 1) is not. The run stops there, before any checkpoint of those weights (the
    gates validate every 10th epoch: the training loss is what is checked here)."""
    args = ["optimizer.lr=1e30", "trainer.max_epochs=3", "callbacks.figures=null"]
    done = run_cli("neuronlab.train", *args, cwd=tmp_path)
    line = one_error_line(done.stderr)
    assert done.returncode == 2, done.stderr[-3000:]
    assert line.startswith("error: the training loss was not finite at epoch 1, step 1:"), line
    assert "lower optimizer.lr" in line
    run = next((tmp_path / "outputs").rglob("checkpoints")).parent
    result = json.loads((run / "result.json").read_text())
    assert result["status"] == "failed" and "not finite at epoch 1, step 1" in result["error"]
    last = load_checkpoint(run / "checkpoints" / "last.ckpt")  # the last good one: resumable
    assert epochs_done(last) == 1 and last["global_step"] == 1
    task, _ = load_classifier(run / "checkpoints" / "last.ckpt")
    assert all(torch.isfinite(p).all() for p in task.parameters())


# --- a pruned trial says the epoch the pruner stopped it at --------------------------------------------


def test_a_pruned_trial_reports_each_epoch_as_its_step_and_stops_right_after_the_warmup(tmp_path):
    """Two trials, validated every epoch; the median pruner may stop a trial after ``pruner_warmup_epochs=2``
    epochs, i.e. at epoch 3 at the earliest. Trial 0 (lr 0.3) learns; trial 1 (lr 1e-6) learns nothing and
    is stopped at epoch 3 exactly: the study holds its epochs 1-3 as steps 0-2 (Optuna's steps count
    from 0, the epochs column from 1), its result.json and the summary say epoch 3."""
    sweep = tmp_path / "sweep"
    done = run_cli(
        "neuronlab.train",
        "-m",
        "hparams_search=gates_optuna",
        "optimizer.lr=choice(0.000001,0.3)",
        "model.activation=tanh",
        "model.hidden_size=8",
        "hydra.sweeper.sampler=random",
        "hydra.sweeper.seed=0",  # draws 0.3, then 1e-6
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.pruner_startup_trials=1",
        "hydra.sweeper.pruner_warmup_epochs=2",
        "optimized_metric=val/loss",  # continuous: no ties between the two trials
        "hydra.sweeper.direction=minimize",
        "trainer.max_epochs=6",
        "trainer.check_val_every_n_epoch=1",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    study = optuna.load_study(study_name="neuronlab", storage=f"sqlite:///{sweep / 'optuna.db'}")
    good, hopeless = study.trials
    assert (good.state, good.params["optimizer.lr"]) == (TrialState.COMPLETE, 0.3)
    assert (hopeless.state, hopeless.params["optimizer.lr"]) == (TrialState.PRUNED, 1e-6)
    assert sorted(good.intermediate_values) == [0, 1, 2, 3, 4, 5]
    assert sorted(hopeless.intermediate_values) == [0, 1, 2]
    folder = next(p for p in sweep.iterdir() if p.name.startswith("1_"))
    result = json.loads((folder / "result.json").read_text())
    assert result["status"] == "pruned" and result["pruned_epoch"] == 3 and result["metrics"]["epochs"] == 3
    assert result["metrics"]["val/loss"] == pytest.approx(hopeless.intermediate_values[2])
    assert "pruned at epoch 3" in (sweep / "summary.md").read_text()


# --- a re-run grid never takes one job's folder for another's ------------------------------------------


def test_a_rerun_grid_refuses_a_job_folder_that_holds_another_jobs_result(tmp_path):
    sweep = tmp_path / "sweep"
    args = ["neuronlab.train", "-m", "optimizer.lr=0.1,0.05", "trainer.max_epochs=2", *QUIET]
    args.append(f"hydra.sweep.dir={sweep}")
    first = run_cli(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    job0, job1 = sorted(p for p in sweep.iterdir() if p.is_dir())
    shutil.copy(job1 / "result.json", job0 / "result.json")  # job 0's folder now says it is job 1
    before = {job: snapshot(job, skip=("train.log", ".lock")) for job in (job0, job1)}

    again = run_cli(*args, cwd=tmp_path)
    line = one_error_line(again.stderr)
    assert again.returncode == 2, again.stderr[-3000:]
    assert f"the job folder {job0} holds another job's results" in line, line
    assert snapshot(job0, skip=("train.log", ".lock")) == before[job0]  # nothing of job 0 overwritten
    assert snapshot(job1, skip=("train.log", ".lock", "sweep_resume.json")) == before[job1]  # job 1: skipped
    assert json.loads((job1 / "sweep_resume.json").read_text())["action"] == "skipped"


def test_every_planted_bug_of_the_mutation_table_still_finds_its_line():
    """``scripts/mutation_table.py`` plants each bug by replacing one exact piece of source: when the code
    moves, the entry must move with it, or the promise it guards goes unchecked without anyone noticing."""
    import runpy

    repo = Path(__file__).resolve().parents[1]
    mutations = runpy.run_path(str(repo / "scripts" / "mutation_table.py"))["MUTATIONS"]
    lost = [
        m.name
        for m in mutations
        if (repo / "src" / "neuronlab" / m.file).read_text(encoding="utf-8").count(m.old) != 1
    ]
    assert not lost, f"update these entries of scripts/mutation_table.py: {lost}"
