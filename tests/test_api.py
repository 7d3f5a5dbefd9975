"""The notebook API: neuronlab.train / eval / predict compose the command line's config, return what a
run produced, run several times in one process and leave no global state behind."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig

import neuronlab
from neuronlab.errors import ConfigError, NeuronlabError


def test_train_eval_predict_from_python_several_times(outputs, capsys):
    argv, filters = list(sys.argv), list(warnings.filters)
    first = neuronlab.train(["trainer.max_epochs=20"])
    second = neuronlab.train(["trainer.max_epochs=20", "model.activation=tanh", "seed=1"])
    for run in (first, second):
        result = json.loads((run.run_dir / "result.json").read_text())
        assert result["status"] == "completed" and run.metrics == result["metrics"]
        assert run.checkpoint == run.run_dir / "checkpoints" / "best.ckpt" and run.checkpoint.is_file()
        assert (run.run_dir / ".hydra" / "overrides.yaml").is_file()  # resumable, like a CLI run
        assert run.run_dir.parent == outputs / "xor" / "runs"
    assert first.run_dir != second.run_dir
    assert "'model.activation=tanh'" not in (first.run_dir / ".hydra" / "overrides.yaml").read_text()
    assert "model.activation=tanh" in (second.run_dir / ".hydra" / "overrides.yaml").read_text()
    assert "test/acc" in capsys.readouterr().out  # the summary, as in a terminal

    tested = neuronlab.eval([f"ckpt_path={first.checkpoint}"])
    assert tested.metrics["test/acc"] == pytest.approx(first.metrics["test/acc"])
    assert tested.checkpoint == first.checkpoint and tested.run_dir.parent == outputs / "eval" / "runs"
    rows = neuronlab.predict([f"ckpt_path={first.run_dir}", "inputs=[[0,1],[1,1]]"])
    assert [r.name for r in rows] == ["[0, 1]", "[1, 1]"] and all(r.error is None for r in rows)

    overrides = (first.run_dir / ".hydra" / "overrides.yaml").read_bytes()
    # another process writes there: refused, the folder left as it is
    with (
        held_lock(first.run_dir) as holder,
        pytest.raises(NeuronlabError, match=f"is in use by process {holder.pid}"),
    ):
        neuronlab.train([f"resume={first.run_dir}", "trainer.max_epochs=30"])
    assert (first.run_dir / ".hydra" / "overrides.yaml").read_bytes() == overrides
    resumed = neuronlab.train([f"resume={first.run_dir}", "trainer.max_epochs=30"])
    assert resumed.run_dir == first.run_dir and resumed.metrics["epochs"] == 30
    again = neuronlab.train([f"resume={first.run_dir}"])  # complete: says so, trains nothing
    assert again.metrics == resumed.metrics and "is already complete" in capsys.readouterr().out

    with pytest.raises(NeuronlabError, match=r"optimizer.lr=-1.0 is not allowed|optimizer.lr=-1 is not"):
        neuronlab.train(["optimizer.lr=-1"])
    with pytest.raises(NeuronlabError, match="Could not find 'model/foo'"):
        neuronlab.train(["model=foo"])
    # nothing left behind: Hydra's singletons, the command line, the warning filters
    assert not GlobalHydra.instance().is_initialized() and HydraConfig.instance().cfg is None
    assert sys.argv == argv and warnings.filters == filters


def test_errors_are_the_command_lines(outputs, tmp_path):
    """The same refusals and records as the command line: a failed eval's folder says why; a search
    (which needs ``-m``) is refused before anything is written."""
    with pytest.raises(NeuronlabError, match="no such checkpoint file") as failed:
        neuronlab.eval([f"ckpt_path={tmp_path}/nowhere.ckpt"])
    (folder,) = (outputs / "eval" / "runs").iterdir()
    result = json.loads((folder / "result.json").read_text())
    assert result["status"] == "failed" and result["error"] == str(failed.value)
    with pytest.raises(NeuronlabError, match="needs -m: neuronlab-train -m hparams_search=mnist_optuna"):
        neuronlab.train(["hparams_search=mnist_optuna"])
    assert not (outputs / "mnist").exists()
    with pytest.raises(ConfigError, match=r"^the override 5 \(int\) is not a string: pass each override"):
        neuronlab.train([5])
    with pytest.raises(
        ConfigError, match=r"^overrides='seed=1' is one string: pass a list, e.g. \['seed=1'\]"
    ):
        neuronlab.eval("seed=1")


def test_a_sweep_job_folder_is_a_checkpoint_as_typed(outputs, tmp_path):
    """A sweep job's folder name holds ``=`` and ``,`` (Hydra's sweep syntax): ``ckpt_path=<that folder>``
    typed as the sweep printed it works, on the command line and from Python."""
    import shutil

    from tests.conftest import run_cli

    trained = neuronlab.train(["trainer.max_epochs=2"])
    job = tmp_path / "sweep" / "0_model.activation=relu,seed=0"
    shutil.copytree(trained.run_dir, job)
    tested = neuronlab.eval([f"ckpt_path={job}"])
    assert tested.checkpoint.parent.parent == job and "test/acc" in tested.metrics
    done = run_cli("neuronlab.eval", f"ckpt_path={job}", cwd=tmp_path)
    assert done.returncode == 0 and "test/acc" in done.stdout, done.stderr[-3000:]


@contextmanager
def held_lock(run_dir: Path) -> Iterator[subprocess.Popen]:
    """Another process holding ``run_dir``'s run lock while the block runs."""
    code = "import time\nfrom neuronlab.run.paths import run_lock\n"
    code += f"with run_lock({str(run_dir)!r}): time.sleep(120)"
    holder = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.time() + 60
        while f"process {holder.pid} " not in (run_dir / ".lock").read_text():
            assert time.time() < deadline and holder.poll() is None
            time.sleep(0.05)
        yield holder
    finally:
        holder.kill()
        holder.wait()


def test_the_package_names_are_the_functions_and_the_command_modules_stay_modules():
    """``neuronlab.train`` is :func:`neuronlab.api.train`, in a fresh process whatever is imported after
    it; the command modules are what ``python -m``, the console scripts and DDP workers run."""
    code = (
        "import sys, neuronlab\n"
        "first = neuronlab.train\n"
        "from neuronlab.train import main, train\n"  # the command module, imported after
        "import neuronlab.api as api\n"
        "assert neuronlab.train is first is api.train and neuronlab.eval is api.eval\n"
        "assert neuronlab.predict is api.predict and callable(main) and callable(train)\n"
        "assert sys.modules['neuronlab.train'].main is main\n"
        "print('torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr[-2000:]
    light = "import sys, neuronlab; print(sorted({'torch', 'hydra', 'omegaconf'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", light], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stderr[-2000:]
    with pytest.raises(AttributeError):
        neuronlab.nothing  # noqa: B018
