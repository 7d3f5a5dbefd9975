"""Commands start Lightning without the optional packages that torchmetrics imports eagerly."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

OPTIONAL = ("torchvision", "scipy", "matplotlib")

PROBE = """
import json, sys
from neuronlab.run import lean_imports
lean_imports.install()
import lightning.pytorch, torch, torchmetrics
loaded = sorted(m for m in ("torchvision", "scipy", "matplotlib") if m in sys.modules)
from lightning_utilities.core.imports import RequirementCache, module_available, package_available
metric = torchmetrics.classification.MulticlassAccuracy(num_classes=3, average="micro")
metric.update(torch.tensor([0, 1, 2, 2]), torch.tensor([0, 1, 2, 1]))
from torchvision.transforms import v2  # neuronlab's own use (augmentation) still imports
print(json.dumps({
    "loaded": loaded,
    "afterwards": [bool(RequirementCache("torchvision")), package_available("scipy"),
                   module_available("matplotlib.pyplot")],
    "accuracy": float(metric.compute()),
    "loader": type(torchmetrics.__spec__.loader).__name__,
    "finders": [type(f).__name__ for f in sys.meta_path],
}))
"""


def _probe(**env: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_lightning_starts_without_torchmetrics_optional_imports_and_checks_answer_truly_afterwards():
    lean = _probe()
    assert lean["loaded"] == []
    # nothing stays patched: later checks see the installed packages, metrics work, the hook is gone
    assert lean["afterwards"] == [True, True, True]
    assert lean["accuracy"] == pytest.approx(0.75)
    assert lean["loader"] == "SourceFileLoader"
    assert "_LeanTorchmetrics" not in lean["finders"]
    full = _probe(NEURONLAB_LEAN_IMPORTS="0")
    if not full["loaded"]:
        pytest.skip("torchmetrics no longer imports them by itself: run/lean_imports.py can go")
    assert set(full["loaded"]) == set(OPTIONAL)  # the switch is what keeps them out


def test_a_training_run_imports_none_of_them(tmp_path):
    """The main job, start to finish (XOR: fit, figures, checkpoints, test, report): what the process
    holds in ``sys.modules`` when it exits."""
    env = {**os.environ, "NEURONLAB_OUTPUT_ROOT": str(tmp_path / "outputs")}
    seen = tmp_path / "modules.json"
    script = (
        "import atexit, json, sys\n"
        f"atexit.register(lambda: open({str(seen)!r}, 'w').write(json.dumps(sorted(sys.modules))))\n"
        "sys.argv = ['neuronlab-train', 'trainer.max_epochs=20']\n"
        "from neuronlab.train import main\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    modules = set(json.loads(seen.read_text()))
    assert {"lightning.pytorch", "torchmetrics", "neuronlab.run.figures", "PIL.Image"} <= modules
    assert not {m for m in modules if m.split(".")[0] in OPTIONAL}
    assert json.loads(next((tmp_path / "outputs").rglob("result.json")).read_text())["status"] == "completed"
