"""Shared fixtures: small valid MNIST-format IDX files, and running the real Hydra entry points."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

import neuronlab
from neuronlab.config import CONF_DIR
from neuronlab.data.idx import write_idx

# neuronlab.train/eval/predict are the notebook functions; the package gives them those names on first use,
# after loading the command modules (neuronlab/__init__.py): before the test files import those modules
assert callable(neuronlab.train)

REPO = Path(__file__).resolve().parents[1]


def make_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Learnable 28x28 uint8 digits: class c lights a 6x6 square at a class-specific place, plus noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n, dtype=np.uint8) % 10
    rng.shuffle(labels)
    images = rng.integers(0, 60, size=(n, 28, 28), dtype=np.uint8)
    for i, c in enumerate(labels):
        row, col = 2 + (c // 5) * 12, 1 + (c % 5) * 5
        images[i, row : row + 6, col : col + 6] = 255
    return images, labels


def write_mnist(
    root: Path, folder: str = "MNIST", n_train: int = 600, n_test: int = 200, gz: bool = False
) -> Path:
    """Write the four IDX files in torchvision's layout ``root/<folder>/raw``; returns ``root``."""
    raw = root / folder / "raw"
    suffix = ".gz" if gz else ""
    for split, n, seed in (("train", n_train, 0), ("t10k", n_test, 1)):
        images, labels = make_images(n, seed)
        write_idx(raw / f"{split}-images-idx3-ubyte{suffix}", images)
        write_idx(raw / f"{split}-labels-idx1-ubyte{suffix}", labels)
    return root


def torchvision_mnist(root: Path, train: bool):
    """torchvision's MNIST dataset with the lesson's transforms (ToTensor + Normalize): the reference."""
    from torchvision import datasets, transforms

    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    return datasets.MNIST(str(root), train=train, download=False, transform=tf)


def ctrl_c_as_in_a_terminal() -> None:
    """A suite started in the background (``cmd &``) passes SIGINT on as ignored, and Python keeps it so:
    give a training process (``preexec_fn=``) the disposition a terminal gives it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def python_ctrl_c() -> Iterator[None]:
    """Python's own Ctrl-C in this process for the test, as in a terminal; the suite's handler afterwards."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture
def mnist_dir(tmp_path: Path) -> Path:
    """A data folder with tiny MNIST and Fashion-MNIST (600 train / 200 test images each)."""
    root = tmp_path / "data"
    write_mnist(root, "MNIST")
    write_mnist(root, "FashionMNIST", gz=True)
    return root


@pytest.fixture
def outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every run of this test writes under ``tmp_path/outputs``."""
    root = tmp_path / "outputs"
    monkeypatch.setenv("NEURONLAB_OUTPUT_ROOT", str(root))
    return root


@pytest.fixture
def compose_cfg(tmp_path: Path) -> Iterator:
    """Compose a real config (``conf/``) as the entry point would, with a run folder under tmp_path."""

    import neuronlab.run.paths  # noqa: F401  (the commands' resolvers: run_id, sweep_job_folder, ...)

    def _compose(overrides: list[str], config_name: str = "train", run_dir: Path | None = None) -> DictConfig:
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
        out = run_dir or tmp_path / "run"
        out.mkdir(parents=True, exist_ok=True)
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(out)
            cfg.hydra.job.config_name = config_name
        HydraConfig.instance().set_config(cfg)
        return cfg

    yield _compose
    GlobalHydra.instance().clear()
    HydraConfig.instance().cfg = None  # as Hydra leaves it after a job: later tests start clean


def run_cli(
    module: str, *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Run ``python -m <module> args...`` as a user would, from ``cwd`` (outputs go to ``cwd/outputs``)."""
    full_env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "NEURONLAB_OUTPUT_ROOT": str(cwd / "outputs"),
        **(env or {}),
    }
    if "HYDRA_FULL_ERROR" not in (env or {}):  # the developer's own setting would change the output
        full_env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=cwd,
    )


def one_error_line(err: str) -> str:
    """The one ``error:`` line a refused command printed (and no traceback)."""
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err[-3000:]
    return lines[0]


def read_scalars(event_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar series in the TensorBoard event files of ``event_dir``, read with tensorboard's reader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(event_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def only(paths: list[Path]) -> Path:
    assert len(paths) == 1, paths
    return paths[0]


def run_entry(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, module: str, *args: str):
    """``python -m neuronlab.<module> args...`` in this process: (exit code, stdout, stderr)."""
    import importlib
    import logging

    main = importlib.import_module(f"neuronlab.{module}").main
    monkeypatch.setattr(sys, "argv", [f"neuronlab-{module}", *args])
    GlobalHydra.instance().clear()
    # Hydra configures logging for the run; its handlers hold this test's captured (later closed) streams
    loggers = [logging.getLogger(), *map(logging.getLogger, list(logging.Logger.manager.loggerDict))]
    saved = {log: (log.handlers[:], log.level, log.propagate) for log in loggers}
    code = 0
    try:
        main()
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else 1
    finally:
        GlobalHydra.instance().clear()
        for log in [logging.getLogger(), *map(logging.getLogger, list(logging.Logger.manager.loggerDict))]:
            # a logger first made during the call (e.g. neuronlab.run, which does not propagate) keeps its own
            handlers, level, propagate = saved.get(log, ([], log.level, log.propagate))
            log.handlers[:] = handlers
            log.setLevel(level)
            log.propagate = propagate
    out, err = capsys.readouterr()
    return code, out, err


def flip_labels(root: Path, split: str, indices: np.ndarray | list[int], folder: str = "MNIST") -> None:
    """Give the samples at ``indices`` of ``split`` ("train" or "t10k") a wrong label (label + 1 mod 10):
    data on which a model cannot reach 100 %, so accuracies and losses say something."""
    from neuronlab.data.idx import read_idx

    path = root / folder / "raw" / f"{split}-labels-idx1-ubyte"
    labels = read_idx(path).numpy().copy()
    labels[np.asarray(indices)] = (labels[np.asarray(indices)] + 1) % 10
    write_idx(path, labels)
