"""The dashboards a sweep prints, opened in a real browser: a finished Optuna search's exact
``tensorboard`` and ``optuna-dashboard`` commands, served on loopback ports and read in headless Chromium
(scripts/screenshots.py, which also makes docs/images/dashboard_*.png)."""

from __future__ import annotations

import importlib.util
import shlex
import shutil
import socket
import subprocess
import sys

import pytest

from neuronlab.summary.cli import dashboard_commands
from tests.conftest import REPO


def _screenshots():
    spec = importlib.util.spec_from_file_location("screenshots", REPO / "scripts" / "screenshots.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks itself up there
    spec.loader.exec_module(module)
    return module


def test_the_commands_are_quoted_for_the_shell(tmp_path):
    sweep = tmp_path / "a sweep; rm -rf ~"
    sweep.mkdir()
    assert dashboard_commands(sweep) == [f"tensorboard --logdir '{sweep}'"]  # no study: no optuna-dashboard
    (sweep / "optuna.db").touch()
    tensorboard, optuna_dashboard = dashboard_commands(sweep)
    assert shlex.split(tensorboard) == ["tensorboard", "--logdir", str(sweep)]
    assert shlex.split(optuna_dashboard) == ["optuna-dashboard", f"sqlite:///{sweep}/optuna.db"]


def test_a_finished_search_is_seen_in_tensorboard_and_optuna_dashboard(tmp_path):
    for program, package in (("chromium", "Debian's chromium"), ("optuna-dashboard", "neuronlab[dashboard]")):
        if shutil.which(program) is None:
            pytest.skip(
                f"{program} is not installed: install {package} (.ci/run does) to open the dashboards"
            )
    screenshots = _screenshots()
    (tmp_path / "shots").mkdir()
    seen = screenshots.look(tmp_path, tmp_path / "shots")

    sweep = seen.sweep_dir
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert len(jobs) == 2
    # printed at the end of the search, and by neuronlab-summary: the same exact commands
    assert seen.commands == [f"tensorboard --logdir {sweep}", f"optuna-dashboard sqlite:///{sweep}/optuna.db"]
    summary = subprocess.run(
        [sys.executable, "-m", "neuronlab.summary", str(sweep)], capture_output=True, text=True, timeout=120
    )
    assert summary.returncode == 0, summary.stderr[-2000:]
    assert summary.stdout.splitlines()[-3:] == ["open in a browser:", *(f"  {c}" for c in seen.commands)]

    # TensorBoard: both trials' runs, and the train/loss and val/acc curves
    assert seen.tensorboard_runs == [f"{job}/tensorboard" for job in jobs]
    assert seen.tensorboard_tags == ["train/loss", "val/acc"]
    # optuna-dashboard: the study by name, with its two trials
    assert "neuronlab (id=1)" in seen.optuna_texts and "2 Trials" in seen.optuna_texts
    assert {"Trial 0", "Trial 1"} <= set(seen.optuna_texts)
    for shot in seen.shots.values():
        assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 20_000
    # both servers are stopped: nothing listens on their ports any more
    for url in seen.urls:
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", int(url.rsplit(":", 1)[1].strip("/")))) != 0
