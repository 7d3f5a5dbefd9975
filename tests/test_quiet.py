"""Quiet, readable output: no advertising tips, no library deprecations, no logging-interval warning in a
default run; warnings a user can act on stay; the end-of-run summary prints paths whole."""

from __future__ import annotations

import logging
import warnings

from neuronlab.run import quiet
from tests.conftest import only, run_cli

NOISE = (
    "💡",
    "Tip:",
    "litlogger",
    "litmodels",
    "deprecated",
    "Deprecation",
    "FutureWarning",
    "smaller than the logging interval",
)


def test_default_run_prints_no_noise_and_the_summary_keeps_paths_whole(tmp_path):
    done = run_cli("neuronlab.train", cwd=tmp_path, env={"COLUMNS": "80"})
    assert done.returncode == 0, done.stderr[-3000:]
    lines = (done.stdout + done.stderr).splitlines()
    assert not [line for line in lines if any(n in line for n in NOISE)], done.stdout + done.stderr
    run = only(list((tmp_path / "outputs" / "xor" / "runs").iterdir()))
    out = done.stdout.splitlines()
    assert len(f"  best checkpoint  {run}/checkpoints/best.ckpt") > 80  # longer than the terminal...
    assert f"  best checkpoint  {run}/checkpoints/best.ckpt" in out  # ...and still on one line
    assert f"  run folder       {run}" in out
    assert f"  tensorboard      tensorboard --logdir {run}/tensorboard" in out
    assert "  test/acc         1.0000" in out


def test_warnings_a_user_can_act_on_stay(caplog):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet.install()
        for module, category in (
            ("lightning.pytorch.utilities._pytree", FutureWarning),
            ("torch.utils.data", DeprecationWarning),
            ("neuronlab.tasks.classifier", DeprecationWarning),  # ours: we must fix it, so it shows
            ("lightning.pytorch.trainer", UserWarning),  # e.g. a dataloader or precision advice
        ):
            warnings.warn_explicit(f"from {module}", category, "x.py", 1, module=module)
        warnings.warn_explicit(
            "The number of training batches (1) is smaller than the logging interval", UserWarning, "x.py", 1
        )
    assert sorted(str(w.message) for w in caught) == [
        "from lightning.pytorch.trainer",
        "from neuronlab.tasks.classifier",
    ]
    tips = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    with caplog.at_level(logging.INFO, logger="lightning.pytorch.utilities.rank_zero"):
        tips.info("💡 Tip: For seamless cloud logging, try installing litlogger")
        tips.info("GPU available: False, used: False")
    assert [r.getMessage() for r in caplog.records] == ["GPU available: False, used: False"]
