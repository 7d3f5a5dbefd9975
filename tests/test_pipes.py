"""A command whose output is piped into a reader that goes away (``neuronlab-train ... | head -1``): the run
goes on and is recorded as it ended, and ``--help | head -1`` ends quietly, as command-line tools do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def closed_reader(tmp_path: Path, *args: str, stderr_too: bool = False) -> subprocess.CompletedProcess:
    """Run ``python -m args`` with its stdout (and stderr) a pipe whose reader closed before it printed."""
    env = {**os.environ, "NEURONLAB_OUTPUT_ROOT": str(tmp_path / "outputs")}
    env.pop("HYDRA_FULL_ERROR", None)
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone: every write to the pipe fails with EPIPE
    try:
        with open(tmp_path / "stderr", "w") as err:
            done = subprocess.run(
                [sys.executable, "-m", *args],
                stdout=write_end,
                stderr=write_end if stderr_too else err,
                env=env,
                cwd=tmp_path,
                timeout=300,
            )
    finally:
        os.close(write_end)
    done.stderr = (tmp_path / "stderr").read_text()
    return done


@pytest.mark.parametrize("stderr_too", [False, True], ids=["stdout", "stdout-and-stderr"])
def test_a_run_whose_reader_went_away_completes(tmp_path, stderr_too):
    done = closed_reader(tmp_path, "neuronlab.train", "trainer.max_epochs=2", stderr_too=stderr_too)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "Logging error" not in done.stderr
    (result,) = (tmp_path / "outputs").glob("*/runs/*/result.json")
    assert json.loads(result.read_text())["status"] == "completed"


@pytest.mark.parametrize("module", ["neuronlab.train", "neuronlab.eval"])
def test_help_into_a_closed_pipe_ends_quietly(tmp_path, module):
    done = closed_reader(tmp_path, module, "--help")
    assert done.returncode == 141 and done.stderr == ""


def test_printed_commands_run_as_printed_from_a_folder_with_spaces_and_quotes(tmp_path):
    """The summary's ``tensorboard --logdir`` and the "already complete ... train it longer:" command are
    shell-quoted: pasted into a shell, they name the run's own folders."""
    import shlex

    from tests.conftest import run_cli

    home = tmp_path / "it's a folder"
    home.mkdir()
    done = run_cli("neuronlab.train", "trainer.max_epochs=2", cwd=home)
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = (home / "outputs").glob("*/runs/*")
    line = next(x for x in done.stdout.splitlines() if x.strip().startswith("tensorboard "))
    assert shlex.split(line)[1:] == ["tensorboard", "--logdir", str(run / "tensorboard")]

    again = run_cli("neuronlab.train", f"resume={run}", cwd=home)
    assert again.returncode == 0 and "already complete" in again.stdout, again.stderr[-3000:]
    command = shlex.split(again.stdout.partition("To train it longer: ")[2])
    assert command[:2] == ["neuronlab-train", f"resume={run}"]
    longer = run_cli("neuronlab.train", *command[1:], cwd=home)
    assert longer.returncode == 0, longer.stderr[-3000:]
    assert json.loads((run / "result.json").read_text())["metrics"]["epochs"] == 4


def test_the_error_line_starts_on_its_own_line_after_a_progress_bar(tmp_path):
    """stdout and stderr into one file (``> log 2>&1``): the bar's line (on stdout) is ended before the
    ``error:`` line (on stderr) is printed, instead of the error being glued to it."""
    from tests.conftest import write_mnist

    data = write_mnist(tmp_path / "data", n_train=300, n_test=50)
    env = {**os.environ, "NEURONLAB_OUTPUT_ROOT": str(tmp_path / "outputs")}
    env.pop("HYDRA_FULL_ERROR", None)
    args = ["experiment=mnist", f"data.data_dir={data}", "data.val_size=100", "trainer.max_epochs=1"]
    with open(tmp_path / "log", "w") as log:
        done = subprocess.run(
            [sys.executable, "-m", "neuronlab.train", *args, "optimizer.lr=1e30"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp_path,
            timeout=300,
        )
    text = (tmp_path / "log").read_text()
    assert done.returncode == 2 and "Epoch 0" in text, text[-3000:]
    assert any(line.startswith("error: the validation loss is nan") for line in text.split("\n")), text[-800:]
