"""A shared run or sweep folder can hold links at every name neuronlab might write through: none of them is
ever followed. Each writer path: the one atomic writer (unit), a resumed run, the sweep summary, a re-run
grid whose job folder is a link, and the stale temporary files a killed writer leaves."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest

from neuronlab.io.files import atomic_write, open_lock_file, remove_stale_temporaries
from tests.conftest import run_cli

OLD_NAMES = 4096  # the former `.<name>.<pid>.tmp`: links for this many pids around ours


def plant(folder: Path, name: str, target: Path, pids: range) -> None:
    for pid in pids:
        (folder / f".{name}.{pid}.tmp").symlink_to(target)


def test_the_writer_never_follows_a_planted_temporary_name(tmp_path, monkeypatch):
    victim = tmp_path / "victim"
    victim.write_text("the user's file\n")
    run = tmp_path / "run"
    run.mkdir()
    plant(run, "result.json", victim, range(os.getpid() - 10, os.getpid() + 10))
    # the attacker even guesses the first random name: the exclusive create refuses it and draws again
    drawn = iter(["guessed", "guessed", "fresh"])
    monkeypatch.setattr(secrets, "token_hex", lambda n: next(drawn))
    (run / ".result.json.guessed.tmp").symlink_to(victim)
    atomic_write(run / "result.json", "{}\n")
    assert victim.read_text() == "the user's file\n"
    assert (run / "result.json").read_text() == "{}\n" and not (run / "result.json").is_symlink()
    assert not (run / ".result.json.fresh.tmp").exists()


def test_a_link_at_the_target_name_is_replaced_not_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    (tmp_path / "summary.csv").symlink_to(victim)
    atomic_write(tmp_path / "summary.csv", "a,b\n")
    assert victim.read_text() == "keep\n"
    assert not (tmp_path / "summary.csv").is_symlink()


def test_lock_files_and_stale_temporaries_never_follow_a_link(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    (tmp_path / ".lock").symlink_to(victim)
    with pytest.raises(OSError):
        open_lock_file(tmp_path / ".lock")
    (tmp_path / ".last.ckpt.123.tmp").write_bytes(b"x" * 100)  # a killed writer's leftover
    (tmp_path / ".result.json.abc.tmp").symlink_to(victim)
    removed = remove_stale_temporaries(tmp_path)
    assert sorted(p.name for p in removed) == [".last.ckpt.123.tmp", ".result.json.abc.tmp"]
    assert victim.read_text() == "keep\n"


def _trained_run(tmp_path: Path) -> Path:
    result = run_cli("neuronlab.train", "trainer.max_epochs=2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    return next((tmp_path / "outputs").glob("*/runs/*"))


def test_resume_and_summary_write_nothing_through_links_for_every_pid(tmp_path):
    """A run folder full of links at the old temporary names (one per pid around ours) and a killed
    writer's checkpoint-sized leftover: the resume writes inside the run only and removes them all."""
    victim = tmp_path / "bashrc"
    victim.write_text("# the user's shell start-up\n")
    run = _trained_run(tmp_path)
    pids = range(max(1, os.getpid() - OLD_NAMES // 2), os.getpid() + OLD_NAMES // 2)
    for name in ("result.json", "environment.json"):
        plant(run, name, victim, pids)
    plant(run / "checkpoints", "last.ckpt", victim, range(os.getpid(), os.getpid() + 64))
    (run / "checkpoints" / ".last.ckpt.0a1b2c.tmp").write_bytes(b"\0" * 4096)  # left by a SIGKILL

    result = run_cli("neuronlab.train", f"resume={run}", "trainer.max_epochs=3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert victim.read_text() == "# the user's shell start-up\n"
    assert [p.name for p in run.glob(".*.tmp")] == []
    assert [p.name for p in (run / "checkpoints").glob(".*.tmp")] == []


def test_summary_of_a_sweep_writes_nothing_through_links(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    sweep = tmp_path / "sweep"
    result = run_cli(
        "neuronlab.train", "-m", "seed=0,1", "trainer.max_epochs=2", f"hydra.sweep.dir={sweep}", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-2000:]
    plant(sweep, "summary.csv", victim, range(max(1, os.getpid() - 2000), os.getpid() + 2000))
    (sweep / "summary.md").unlink()
    (sweep / "summary.md").symlink_to(victim)
    result = run_cli("neuronlab.summary", str(sweep), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert victim.read_text() == "keep\n"
    assert not (sweep / "summary.md").is_symlink()
    assert [p.name for p in sweep.glob(".*.tmp")] == []


@pytest.mark.parametrize("where", ["job folder", "job log"])
def test_a_regrid_whose_job_folder_holds_a_link_is_refused_before_anything_is_written(tmp_path, where):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    sweep = tmp_path / "sweep"
    args = ["-m", "seed=0,1", "trainer.max_epochs=2", f"hydra.sweep.dir={sweep}"]
    assert run_cli("neuronlab.train", *args, cwd=tmp_path).returncode == 0
    job = sorted(p for p in sweep.iterdir() if p.is_dir())[1]
    if where == "job folder":
        os.rename(job, elsewhere / "moved")
        job.symlink_to(elsewhere / "moved")
        watched = elsewhere / "moved"
    else:
        (job / "train.log").unlink()
        (job / "train.log").symlink_to(elsewhere / "log")
        watched = elsewhere
    before = sorted((p.relative_to(watched), p.stat().st_mtime_ns) for p in watched.rglob("*"))

    result = run_cli("neuronlab.train", *args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "is a symbolic link" in errors[0], result.stderr[-2000:]
    assert sorted((p.relative_to(watched), p.stat().st_mtime_ns) for p in watched.rglob("*")) == before
