"""Checkpoints are written whole or not at all: a write that fails part way keeps the previous file
byte for byte, loadable, and says which file it could not write. Tested without root: a failing
``fsync``/``os.replace`` in this process, and a file size limit (``RLIMIT_FSIZE``) in a real run."""

from __future__ import annotations

import errno
import json
import os

import pytest
import torch

from neuronlab.errors import NeuronlabError
from neuronlab.io.checkpoint import AtomicCheckpointIO, epochs_done, load_checkpoint, resolve_checkpoint
from neuronlab.models import SimpleNN
from neuronlab.tasks import Classifier
from tests.conftest import only, run_cli
from tests.probes import tests_importable


def checkpoint_of(seed: int) -> dict:
    torch.manual_seed(seed)
    task = Classifier(SimpleNN())
    return {"state_dict": task.state_dict(), "hyper_parameters": dict(task.hparams), "epoch": seed}


def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_a_failed_write_keeps_the_previous_checkpoint_byte_for_byte(tmp_path, monkeypatch, failing):
    io, path = AtomicCheckpointIO(), tmp_path / "run" / "checkpoints" / "last.ckpt"  # folders made
    io.save_checkpoint(checkpoint_of(1), path)
    before = path.read_bytes()
    assert load_checkpoint(path)["epoch"] == 1

    monkeypatch.setattr(os, failing, no_space)
    with pytest.raises(NeuronlabError) as error:
        io.save_checkpoint(checkpoint_of(2), path)
    monkeypatch.undo()
    assert str(error.value) == (
        f"cannot write {path} (No space left on device); the previous last.ckpt is kept: "
        "free some space or choose another paths.root_dir"
    )
    assert path.read_bytes() == before
    assert load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]  # no temporary file left behind

    io.save_checkpoint(checkpoint_of(3), path)  # and the next write goes through whole
    loaded = io.load_checkpoint(path)  # what Lightning calls to resume: the same safe, checked loader
    assert loaded["epoch"] == 3
    assert all(torch.equal(loaded["state_dict"][k], v) for k, v in checkpoint_of(3)["state_dict"].items())


def test_the_first_write_failing_leaves_no_file_under_the_name(tmp_path, monkeypatch):
    path = tmp_path / "best.ckpt"
    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(NeuronlabError, match="no best.ckpt was written"):
        AtomicCheckpointIO().save_checkpoint(checkpoint_of(1), path)
    assert list(tmp_path.iterdir()) == []


def test_a_run_whose_disk_fills_up_keeps_its_last_good_checkpoints(tmp_path):
    """A real run: from epoch 2 on, no file may grow past 4000 bytes (a checkpoint is ~15 kB), so the
    checkpoint write of epoch 2 fails part way. The epoch-1 checkpoints stay whole and load."""
    snapshot = tmp_path / "before"
    result = run_cli(
        "neuronlab.train",
        "trainer.max_epochs=4",
        "trainer.check_val_every_n_epoch=1",
        "logger=none",
        "+callbacks.limit._target_=tests.probes.FileSizeLimit",
        "+callbacks.limit.at_epoch=2",
        "+callbacks.limit.max_bytes=4000",
        f"+callbacks.limit.snapshot={snapshot}",
        cwd=tmp_path,
        env=tests_importable(),
    )
    assert result.returncode == 2, result.stderr[-3000:]
    run = only([p.parent for p in (tmp_path / "outputs").rglob(".hydra")])
    checkpoints = run / "checkpoints"
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith(f"error: cannot write {checkpoints}") and "File too large" in error
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in checkpoints.iterdir()) == ["best.ckpt", "last.ckpt"]  # no .tmp
    for name in ("best.ckpt", "last.ckpt"):
        assert (checkpoints / name).read_bytes() == (snapshot / name).read_bytes(), name
        assert load_checkpoint(checkpoints / name)["epoch"] <= 1
    assert load_checkpoint(checkpoints / "last.ckpt")["epoch"] == 1
    recorded = json.loads((run / "result.json").read_text())
    assert recorded["status"] == "failed"


def test_lightning_resumes_through_the_safe_loader_and_missing_files_are_named(tmp_path):
    damaged = tmp_path / "last.ckpt"
    damaged.write_bytes(b"PK\x03\x04 half a file")
    with pytest.raises(NeuronlabError, match=f"ckpt_path={damaged} is not a readable checkpoint"):
        AtomicCheckpointIO().load_checkpoint(damaged)
    with pytest.raises(NeuronlabError) as missing:
        resolve_checkpoint(tmp_path / "nope.ckpt")
    assert str(missing.value) == (
        f"ckpt_path={tmp_path / 'nope.ckpt'}: no such checkpoint file (expected a .ckpt file or a run folder)"
    )


def test_epochs_done_reads_lightnings_count_and_nothing_else():
    def loops(processed):
        return {"loops": {"fit_loop": {"epoch_progress": {"current": {"processed": processed}}}}}

    assert epochs_done(loops(7)) == 7
    assert epochs_done({}) == epochs_done({"loops": "tampered"}) == 0
    assert epochs_done(loops(-3)) == epochs_done(loops("7")) == epochs_done(loops(True)) == 0


@pytest.mark.parametrize("failing", ["write", "fsync", "replace"])
def test_every_writer_shares_the_atomic_write_and_a_failure_keeps_the_previous_file(
    tmp_path, monkeypatch, failing
):
    """``neuronlab.io.files`` serves result.json, summaries, predictions and checkpoints alike: a failure
    while writing, syncing or renaming keeps the previous bytes and leaves no temporary file."""
    from neuronlab.io.files import atomic_file, atomic_write, atomic_write_json

    path = tmp_path / "result.json"
    atomic_write_json(path, {"status": "completed", "wall_time": 1.5, "at": tmp_path})
    before = path.read_bytes()
    assert json.loads(before) == {"status": "completed", "wall_time": 1.5, "at": str(tmp_path)}

    if failing == "write":  # the writer itself fails part way (savefig, csv): the error reaches the caller
        with pytest.raises(ValueError, match="half"), atomic_file(path) as handle:
            handle.write(b'{"status": ')
            raise ValueError("half a file")
    else:
        monkeypatch.setattr(os, failing, no_space)
        with pytest.raises(OSError, match="No space left"):
            atomic_write(path, "ü" * 10_000)
        monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]

    atomic_write(path, "ü\n")  # text as UTF-8, whatever the locale
    assert path.read_bytes() == "ü\n".encode()
