"""The default run's console says each thing once, in one format, on one stream; ``train.log`` keeps the
full record (see neuronlab.run.quiet and conf/hydra/default.yaml's job_logging)."""

from __future__ import annotations

import re

from tests.conftest import only, run_cli

# Hydra's file format "[time][logger][LEVEL] - message" and the console's "LEVEL: message"
_PREFIX = re.compile(r"^(\[[^\]]*\]\[[^\]]*\]\[[A-Z]+\] - |[A-Z]+: )")


def _messages(text: str) -> list[str]:
    return [_PREFIX.sub("", line).strip() for line in text.splitlines() if line.strip()]


def test_the_default_run_says_each_thing_once_and_its_log_keeps_everything(tmp_path):
    done = run_cli("neuronlab.train", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    said = _messages(done.stdout) + _messages(done.stderr)
    repeated = sorted({m for m in said if said.count(m) > 1})
    assert not repeated, done.stdout + done.stderr
    assert "it/s" not in done.stdout + done.stderr  # no progress bar for one step per epoch
    # Lightning's messages and neuronlab's own log lines: on stderr, in Lightning's format; none on stdout
    assert "INFO: Seed set to 0" in done.stderr.splitlines()
    assert "INFO: GPU available: False, used: False" in done.stderr.splitlines()
    assert not [line for line in done.stdout.splitlines() if _PREFIX.match(line)], done.stdout
    log = (only(list((tmp_path / "outputs" / "xor" / "runs").iterdir())) / "train.log").read_text()
    for message in ("Seed set to 0", "GPU available", "Restoring states", "Loaded model", "completed"):
        assert message in log, log
