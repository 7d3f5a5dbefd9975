"""One sweep job per GPU (neuronlab.sweeps.devices), on fake device slots: a CPU machine has no GPUs, and
the slots' locks, waits and records are the same whatever the ids name."""

from __future__ import annotations

import csv
import itertools
import json
import os
import re
import select
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from neuronlab.errors import ConfigError
from neuronlab.run.report import JOB_DEVICES
from neuronlab.sweeps.devices import FAKE_DEVICES, job_devices, needed, take
from tests.conftest import run_cli

# a job's process: holds n slots of [0, 1, 2] and says which, until it is stopped
HOLD = """
import sys, time
from pathlib import Path
from neuronlab.sweeps.devices import take
with take(Path(sys.argv[1]), [0, 1, 2], int(sys.argv[2])) as ids:
    print(*ids, flush=True)
    time.sleep(600)
"""
_LINE = re.compile(r"^\[([^\]]+)\]\[neuronlab\.run\]\[INFO\] - device slots \[(\d+)\] (taken|released)$")


def _slot(job: Path) -> int:
    (slot,) = json.loads((job / "environment.json").read_text())["devices"]
    return slot


def _holder(folder: Path, n: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder), str(n)], stdout=subprocess.PIPE, text=True
    )


def _ids(proc: subprocess.Popen, wait_s: float) -> list[int] | None:
    """The slots ``proc`` took, or None if it still waits after ``wait_s``."""
    ready, _, _ = select.select([proc.stdout], [], [], wait_s)
    return [int(i) for i in proc.stdout.readline().split()] if ready else None


@pytest.fixture
def holders():
    started: list[subprocess.Popen] = []

    def start(folder: Path, n: int) -> subprocess.Popen:
        started.append(_holder(folder, n))
        return started[-1]

    yield start
    for proc in started:
        proc.kill()
        proc.wait()


def test_four_jobs_on_two_slots_never_overlap_on_one_slot(tmp_path):
    done = run_cli(
        "neuronlab.train",
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=4",
        "optimizer.lr=0.1,0.05,0.02,0.01",
        "trainer.max_epochs=10",
        cwd=tmp_path,
        env={FAKE_DEVICES: "0,1"},
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "device slots: 2 job(s) at once, one GPU each, on GPUs 0, 1 (fake)" in done.stdout
    jobs = [p for p in (tmp_path / "outputs" / "xor" / "multiruns").glob("*/[0-9]*") if p.is_dir()]
    assert len(jobs) == 4
    held: dict[int, list[tuple[datetime, datetime]]] = {0: [], 1: []}
    for job in jobs:
        events = [m.groups() for m in map(_LINE.match, (job / "train.log").read_text().splitlines()) if m]
        (start, slot, taken), (end, slot_again, released) = events  # one slot, taken then released
        assert (taken, released, slot) == ("taken", "released", slot_again)
        held[int(slot)].append((datetime.fromisoformat(start), datetime.fromisoformat(end)))
        assert _slot(job) == int(slot)
    # both slots used (usually two jobs each; on a loaded machine a quick job may free its slot for a third)
    assert all(held.values()) and sum(map(len, held.values())) == 4
    for spans in held.values():
        spans.sort()
        # each job took the slot once the one before had released it
        assert all(start < end <= next_start for (start, end), (next_start, _) in itertools.pairwise(spans))
        assert all(start < end for start, end in spans)
    # the summary table says which slot each job trained on
    with open(jobs[0].parent / "summary.csv", newline="") as handle:
        recorded = {row["folder"]: row["devices"] for row in csv.DictReader(handle)}
    assert recorded == {job.name: str(_slot(job)) for job in jobs}
    assert "┃ devices ┃" in done.stdout


def test_a_killed_jobs_slot_is_taken_by_the_next_job(tmp_path, holders):
    folder = tmp_path / ".devices"
    first, second, third = holders(folder, 1), holders(folder, 1), holders(folder, 1)
    assert sorted(_ids(first, 60) + _ids(second, 60) + _ids(third, 60)) == [0, 1, 2]
    waiting = holders(folder, 1)
    assert _ids(waiting, 2) is None  # every slot is held: it waits rather than sharing
    os.kill(second.pid, signal.SIGKILL)  # no clean-up runs: the OS drops its lock
    second.wait()
    assert _ids(waiting, 30) is not None


def test_a_ddp_job_takes_as_many_slots_as_it_has_devices(tmp_path, holders, compose_cfg, monkeypatch):
    assert needed(compose_cfg(["trainer.devices=2"]).trainer, 3) == 2
    assert needed(compose_cfg(["trainer=ddp"]).trainer, 3) == 3  # devices=-1: every slot
    with pytest.raises(ConfigError, match=r"trainer.devices=4 needs 4 device slots and the sweep has 3"):
        needed(compose_cfg(["trainer.devices=4"]).trainer, 3)

    folder = tmp_path / ".devices"
    with take(folder, [0, 1, 2], 2) as ids:
        assert ids == [0, 1]
        pair, single = holders(folder, 2), holders(folder, 1)
        assert _ids(single, 60) == [2]
        assert _ids(pair, 2) is None  # one slot free, two needed: it waits
    assert _ids(pair, 30) == [0, 1]

    # a DDP worker Lightning starts for such a job trains on its job's slots and takes none itself
    cfg = compose_cfg(["trainer.devices=2"])
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv(JOB_DEVICES, "2,3")
    monkeypatch.delenv(FAKE_DEVICES, raising=False)
    with job_devices(cfg):
        assert list(cfg.trainer.devices) == [2, 3]
    assert not folder.joinpath("3.lock").exists()


def test_a_sweep_whose_jobs_cannot_get_their_slots_is_one_line_before_any_job(tmp_path):
    """Hydra only warns of a callback's error and then fails every job ("Error executing job", jobs listed
    as interrupted): the sweep's start refuses it in one line, and no job folder is made."""
    done = run_cli(
        "neuronlab.train",
        "-m",
        "trainer.devices=3",
        "seed=0,1",
        cwd=tmp_path,
        env={FAKE_DEVICES: "0,1"},
    )
    assert done.returncode == 2
    assert done.stderr == (
        "error: trainer.devices=3 needs 3 device slots and the sweep has 2: lower trainer.devices or list "
        "more GPUs in sweep_devices\n"
    )
    assert not list((tmp_path / "outputs").glob("*/multiruns/*/*/result.json"))
