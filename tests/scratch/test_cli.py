import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from neuronlab.scratch import NeuralNetwork, Perceptron
from neuronlab.scratch.cli import validate

REPO = Path(__file__).parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_cli(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
        "NEURONLAB_OUTPUT_ROOT": str(tmp_path / "outputs"),
    }
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, "-m", "neuronlab.scratch.cli", *overrides],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )


def run_folder(tmp_path: Path) -> Path:
    (folder,) = (tmp_path / "outputs" / "scratch" / "runs").iterdir()
    return folder


def config(**overrides: object):
    """conf/scratch.yaml without its hydra section, as validate() sees it inside a run."""
    cfg = OmegaConf.load(REPO / "conf" / "scratch.yaml")
    del cfg["hydra"]
    cfg.out_dir = "unused"
    return OmegaConf.merge(cfg, overrides)


def test_perceptron_and_prints_truth_table_and_saves_curve(tmp_path):
    proc = run_cli(tmp_path, "model=perceptron", "gate=and")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Perceptron on AND: converged after" in out
    assert " x1  x2 | target | prediction\n" in out
    for row in [
        "  0   0 |      0 |          0",
        "  0   1 |      0 |          0",
        "  1   1 |      1 |          1",
    ]:
        assert row in out
    assert "accuracy: 4/4 (100%)" in out
    folder = run_folder(tmp_path)
    assert (folder / "loss_curve.png").read_bytes()[:8] == PNG_MAGIC
    assert (folder / ".hydra" / "config.yaml").is_file()
    assert str(folder / "loss_curve.png") in out


def test_numpy_net_xor_prints_probabilities(tmp_path):
    proc = run_cli(tmp_path, "model=numpy_net", "gate=xor", "epochs=3000", "loss=bce", "print_every=1000")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert " x1  x2 | target | prediction | probability" in out
    assert "accuracy: 4/4 (100%)" in out
    epochs = [line.split()[1] for line in out.splitlines() if line.startswith("epoch")]
    assert epochs == ["1000", "2000", "3000"]
    assert (run_folder(tmp_path) / "loss_curve.png").is_file()


def test_perceptron_xor_says_it_is_not_linearly_separable(tmp_path):
    proc = run_cli(tmp_path, "model=perceptron", "gate=xor", "epochs=20", "print_every=null")
    assert proc.returncode == 0, proc.stderr
    assert "did not converge" in proc.stdout
    assert "XOR is not linearly separable" in proc.stdout
    assert not any(line.startswith("epoch") for line in proc.stdout.splitlines())  # print_every=null


def test_out_dir_override(tmp_path):
    proc = run_cli(tmp_path, "gate=nor", f"out_dir={tmp_path / 'mine'}")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "mine" / "loss_curve.png").is_file()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model=cnn", "invalid model='cnn'; allowed: perceptron, numpy_net"),
        ("gate=xnor", "invalid gate='xnor'; allowed: and, or, nand, nor, xor"),
        ("epochs=0", "invalid epochs=0; allowed: an integer > 0"),
        ("lr=-0.5", "invalid lr=-0.5; allowed: a number > 0"),
    ],
)
def test_bad_input_is_one_clear_message(tmp_path, override, message):
    proc = run_cli(tmp_path, override)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: {message}"
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"epochs": "ten"}, "invalid epochs='ten'; allowed: an integer > 0"),
        ({"epochs": 2.5}, "invalid epochs=2.5"),
        ({"lr": 0}, "invalid lr=0"),
        ({"seed": -1}, "invalid seed=-1"),
        ({"print_every": 0}, "invalid print_every=0"),
        ({"hidden": 0}, "invalid hidden=0"),
        ({"loss": "l1"}, "invalid loss='l1'; allowed: mse, bce"),
    ],
)
def test_validate_names_key_value_and_rule(overrides, message):
    with pytest.raises(ValueError, match=message):
        validate(config(**overrides))


@pytest.mark.parametrize("model", ["perceptron", "numpy_net"])
def test_default_config_is_valid(model):
    validate(config(model=model))


@pytest.mark.parametrize(("model", "cls"), [("perceptron", Perceptron), ("numpy_net", NeuralNetwork)])
def test_config_defaults_match_the_code_defaults(model, cls):
    defaults = config().model_defaults[model]
    params = inspect.signature(cls.fit).parameters
    assert (defaults.epochs, defaults.lr) == (params["epochs"].default, params["lr"].default)


def test_scratch_package_does_not_import_torch():
    modules = "neuronlab.scratch, neuronlab.scratch.cli, neuronlab.scratch.plots"
    code = f"import sys, {modules}; print('torch' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"
