"""Discoverability: each command's --help starts with a short human summary before Hydra's config dump,
and bash tab completion for neuronlab-train works end to end (script generated, sourced, queried)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_cli

BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    ("module", "command", "shown"),
    [
        ("neuronlab.train", "neuronlab-train", ["logger: csv, mlflow, none, tensorboard", "resume="]),
        ("neuronlab.eval", "neuronlab-eval", ["ckpt_path=<checkpoint file or run folder>", "logger: csv"]),
        ("neuronlab.predict", "neuronlab-predict", ["output=predictions.csv", "fit=box|stretch"]),
        ("neuronlab.export", "neuronlab-export", ["format=onnx|torchscript"]),
        ("neuronlab.scratch.cli", "neuronlab-scratch", ["model=perceptron|numpy_net"]),
    ],
)
def test_help_starts_with_a_short_human_summary(tmp_path, module, command, shown):
    helped = run_cli(module, "--help", cwd=tmp_path)
    assert helped.returncode == 0, helped.stderr
    out = helped.stdout
    assert out.startswith(f"{command}: ")
    summary, _, dump = out.partition("== Full config (override any key: foo.bar=value) ==")
    assert dump.strip() and "ckpt_path" not in summary.split("Usage")[0]
    for phrase in (*shown, "Usage", f"{command} -sc install=bash"):
        assert phrase in summary, phrase
    assert len(summary.splitlines()) < 45  # short: one screen
    assert not (tmp_path / "outputs").exists()  # --help writes nothing


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completion_script_installs_and_completes_options(tmp_path):
    exe = BIN / "neuronlab-train"
    script = subprocess.run([exe, "-sc", "install=bash"], capture_output=True, text=True, cwd=tmp_path)
    assert script.returncode == 0, script.stderr
    assert "complete -o nospace -o default -F hydra_bash_completion neuronlab-train" in script.stdout
    (tmp_path / "completion.bash").write_text(script.stdout)
    shell = """
        source completion.bash
        complete_line() {
            COMP_LINE="$1"; COMP_POINT=${#COMP_LINE}; COMP_WORDS=($COMP_LINE)
            COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
            hydra_bash_completion; printf '%s\\n' "${COMPREPLY[@]}"; echo ---
        }
        complete_line "neuronlab-train model=m"
        complete_line "neuronlab-train logger=tensorboard"
    """
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    models, loggers, _ = done.stdout.split("---\n")
    assert set(models.split()) == {"model=mnist_classifier", "model=modern_network"}
    assert set(loggers.split()) == {"logger=tensorboard", "logger=tensorboard_mlflow"}
    assert not (tmp_path / "outputs").exists()


def test_cfg_job_shows_a_resumed_run_and_refuses_a_sweep_in_one_line(tmp_path):
    """``--cfg job`` after ``resume=<run>`` shows the config the resume would run (its saved overrides, the
    user's, its checkpoint), whatever the order; with ``-m`` (which Hydra refuses beside --cfg) one line."""
    import yaml

    trained = run_cli("neuronlab.train", "trainer.max_epochs=1", "model.activation=tanh", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-3000:]
    (run,) = (tmp_path / "outputs").glob("*/runs/*")
    for args in (["trainer.max_epochs=3", "--cfg", "job"], ["--cfg", "job", "trainer.max_epochs=3"]):
        shown = run_cli("neuronlab.train", f"resume={run}", *args, cwd=tmp_path)
        assert shown.returncode == 0, shown.stderr[-3000:]
        config = yaml.safe_load(shown.stdout)
        assert config["trainer"]["max_epochs"] == 3 and config["model"]["activation"] == "tanh"
        assert config["ckpt_path"] == str(run / "checkpoints" / "last.ckpt")
    swept = run_cli("neuronlab.train", "-m", "seed=0,1", "--cfg", "job", cwd=tmp_path)
    assert swept.returncode == 2 and swept.stderr.startswith("error: --cfg shows one run's config")
    assert swept.stderr.count("\n") == 1
