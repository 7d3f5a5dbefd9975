"""``resume=<run folder>`` that cannot go on: one ``error:`` line saying what is wrong and what to do,
exit code 2, and the run folder left exactly as it was."""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import pytest

from tests.conftest import only, run_cli, run_entry


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run that was killed after its last checkpoint (no result.json): one to copy per test."""
    root = tmp_path_factory.mktemp("trained")
    done = run_cli("neuronlab.train", "trainer.max_epochs=20", "logger=none", cwd=root)
    assert done.returncode == 0, done.stderr[-3000:]
    run = only([p.parent for p in (root / "outputs").rglob(".hydra")])
    (run / "result.json").unlink()
    return run


def files(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


CASES = {
    "no such folder": (lambda run: [f"resume={run.parent / 'nowhere'}"], ["not a neuronlab run folder"]),
    "not a run folder": (lambda run: [f"resume={run / 'checkpoints'}"], ["not a neuronlab run folder"]),
    "a sweep": (lambda run: ["-m", f"resume={run}"], ["resume one run at a time, without -m"]),
    "no checkpoint": (lambda run: [f"resume={run}"], ["a folder without checkpoints/last.ckpt"]),
    "damaged checkpoint": (lambda run: [f"resume={run}"], ["last.ckpt is not a readable checkpoint"]),
    "another optimizer": (
        lambda run: [f"resume={run}", "optimizer=sgd"],
        ["was trained with optimizer torch.optim.adam.Adam", "optimizer=adam"],
    ),
    "another architecture": (
        lambda run: [f"resume={run}", "model.hidden_size=8"],
        ["holds another architecture", "hidden_size: checkpoint 4 vs config 8"],
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_a_run_that_cannot_resume_says_why_and_is_left_as_it_was(
    trained, tmp_path, monkeypatch, capsys, case
):
    run = tmp_path / "outputs" / "xor" / "runs" / trained.name
    shutil.copytree(trained, run)
    if case == "no checkpoint":
        shutil.rmtree(run / "checkpoints")
    if case == "damaged checkpoint":
        last = run / "checkpoints" / "last.ckpt"
        last.write_bytes(last.read_bytes()[:1000])
    before = files(tmp_path)
    monkeypatch.setenv("NEURONLAB_OUTPUT_ROOT", str(tmp_path / "outputs"))
    args, phrases = CASES[case]
    code, out, err = run_entry(monkeypatch, capsys, "train", *args(run))
    assert code == 2, (out, err)
    assert err.startswith("error: ") and "Traceback" not in err
    for phrase in phrases:
        assert phrase in err, (phrase, err)
    # train.log may say why; .lock names the last process that locked the folder (the refused resume)
    after = {p: b for p, b in files(tmp_path).items() if p.name not in ("train.log", ".lock")}
    assert after == {p: b for p, b in before.items() if p.name not in ("train.log", ".lock")}


def test_an_accepted_resume_records_its_config_as_hydra_did(trained, tmp_path, monkeypatch, capsys):
    """Hydra writes no .hydra/ for a resume; the run writes it once the checkpoint is accepted."""
    import yaml

    run = tmp_path / "outputs" / "xor" / "runs" / trained.name
    shutil.copytree(trained, run)
    monkeypatch.setenv("NEURONLAB_OUTPUT_ROOT", str(tmp_path / "outputs"))
    code, out, err = run_entry(monkeypatch, capsys, "train", f"resume={run}", "trainer.max_epochs=40")
    assert code == 0, (out, err)
    overrides = yaml.safe_load((run / ".hydra" / "overrides.yaml").read_text())
    assert "trainer.max_epochs=40" in overrides and "trainer.max_epochs=20" not in overrides
    assert yaml.safe_load((run / ".hydra" / "config.yaml").read_text())["trainer"]["max_epochs"] == 40
    hydra_after = yaml.safe_load((run / ".hydra" / "hydra.yaml").read_text())["hydra"]
    assert hydra_after["output_subdir"] == ".hydra"  # where the record is, not the null the resume ran with
    assert "hydra.output_subdir=null" not in hydra_after["overrides"]["hydra"]
    assert json.loads((run / "result.json").read_text())["status"] == "completed"


# --- resume_argv on hand-made run folders (no training: fast enough for mutation testing) -----------


def hand_made_run(root: Path, status: str | None, max_epochs: int = 20, done: int = 20) -> Path:
    """A run folder as neuronlab-train leaves it: saved overrides, config, last.ckpt after ``done`` epochs."""
    import json

    import yaml

    from neuronlab.io.checkpoint import AtomicCheckpointIO
    from neuronlab.models import SimpleNN
    from neuronlab.tasks import Classifier

    run = root / "outputs" / "xor" / "multiruns" / "2024-01-01_00-00-00" / "1_model.activation=tanh,seed=1"
    (run / ".hydra").mkdir(parents=True)
    saved = [
        "model.activation=tanh",
        f"trainer.max_epochs={max_epochs}",
        "seed=1",
        "ckpt_path=/old/last.ckpt",
    ]
    (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([*saved, "resume=/old"]))
    (run / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"trainer": {"max_epochs": max_epochs}}))
    task = Classifier(SimpleNN())
    loops = {"fit_loop": {"epoch_progress": {"current": {"processed": done, "completed": done}}}}
    checkpoint = {"state_dict": task.state_dict(), "epoch": done - 1, "global_step": done, "loops": loops}
    AtomicCheckpointIO().save_checkpoint(checkpoint, run / "checkpoints" / "last.ckpt")
    if status:
        (run / "result.json").write_text(json.dumps({"status": status}))
    return run


def test_resume_argv_gives_the_runs_checked_overrides_its_folder_and_last_checkpoint(tmp_path):
    from neuronlab.run.paths import hydra_quote
    from neuronlab.run.resume import resume_argv

    run = hand_made_run(tmp_path, status=None)
    where = [
        "hydra.output_subdir=null",  # Hydra writes no .hydra/: train() does, once the checkpoint is accepted
        f"ckpt_path={hydra_quote(str(run / 'checkpoints' / 'last.ckpt'))}",
        f"hydra.run.dir={hydra_quote(str(run))}",
    ]
    saved = ["model.activation=tanh", "trainer.max_epochs=20", "seed=1"]
    assert resume_argv(["neuronlab-train", f"resume={run}"]) == ["neuronlab-train", *saved, *where]
    # later command-line values win: the saved one is left out, the given one kept in its place
    assert resume_argv(["neuronlab-train", "trainer.max_epochs=30", f"ckpt_path={run}", "seed=2"]) == [
        "neuronlab-train",
        "model.activation=tanh",
        "trainer.max_epochs=30",
        "seed=2",
        *where,
    ]
    # a checkpoint file, or no run folder at all: the command line is Hydra's, unchanged
    for argv in (
        ["neuronlab-train", f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}"],
        ["neuronlab-train", "seed=3"],
    ):
        assert resume_argv(argv) == argv
    (run / "checkpoints" / "last.ckpt").rename(run / "checkpoints" / "interrupted.ckpt")
    assert resume_argv(["neuronlab-train", f"resume={run}"])[-2] == where[1].replace(
        "last.ckpt", "interrupted.ckpt"
    )


@pytest.mark.parametrize(
    ("given", "complete"),
    [
        ([], True),
        (["trainer.max_epochs=20"], True),
        (["trainer.max_epochs=abc"], True),  # not a number: the config's own check names it later
        (["trainer.max_epochs=21"], False),
        (["trainer.max_epochs=-1"], False),
    ],
)
def test_a_completed_run_is_left_alone_unless_asked_for_more_epochs(tmp_path, given, complete):
    from neuronlab.run.resume import AlreadyComplete, resume_argv

    run = hand_made_run(tmp_path, status="completed")
    argv = ["neuronlab-train", f"resume={run}", *given]
    if not complete:
        assert resume_argv(argv)[-2].startswith("ckpt_path=")
        return
    with pytest.raises(AlreadyComplete) as done:
        resume_argv(argv)
    assert str(done.value) == (
        f"{run} is already complete: it trained 20 epochs. Nothing was changed. To train it longer: "
        f"neuronlab-train {shlex.quote(f'resume={run}')} trainer.max_epochs=40"  # runs as printed in a shell
    )


def test_a_run_that_stopped_early_says_how_to_train_on(tmp_path):
    from neuronlab.run.resume import AlreadyComplete, resume_argv

    run = hand_made_run(tmp_path, status="completed", max_epochs=1000, done=30)
    with pytest.raises(
        AlreadyComplete, match=r"trained 30 epochs and stopped early \(trainer.max_epochs=1000\)"
    ) as done:
        resume_argv(["neuronlab-train", f"resume={run}"])
    assert str(done.value).endswith("trainer.max_epochs=60 callbacks.early_stopping=null")
    assert resume_argv(["neuronlab-train", f"resume={run}", "trainer.max_epochs=31"])[-2].startswith(
        "ckpt_path="
    )


@pytest.mark.parametrize(
    ("change", "args", "message"),
    [
        (None, ["-m"], "resume one run at a time, without -m"),
        (None, ["--multirun"], "resume one run at a time, without -m"),
        ("no overrides", [], "not a neuronlab run folder (expected {run}/.hydra/overrides.yaml)"),
        ("no checkpoint", [], "is a folder without checkpoints/last.ckpt"),
    ],
)
def test_resume_argv_refuses_what_cannot_resume(tmp_path, change, args, message):
    import shutil as sh

    from neuronlab.errors import NeuronlabError
    from neuronlab.run.resume import resume_argv

    run = hand_made_run(tmp_path, status=None)
    if change == "no overrides":
        (run / ".hydra" / "overrides.yaml").unlink()
    if change == "no checkpoint":
        sh.rmtree(run / "checkpoints")
    with pytest.raises(NeuronlabError) as refused:
        resume_argv(["neuronlab-train", f"resume={run}", *args])
    assert message.format(run=run) in str(refused.value)


def test_a_run_of_one_epoch_and_odd_records(tmp_path):
    from neuronlab.run.resume import AlreadyComplete, resume_argv

    run = hand_made_run(tmp_path, status="completed", max_epochs=1, done=1)
    with pytest.raises(
        AlreadyComplete, match=r"trained 1 epochs\. Nothing was changed\. .* trainer.max_epochs=2$"
    ):
        resume_argv(["neuronlab-train", f"resume={run}"])
    (run / ".hydra" / "config.yaml").write_text("trainer: {max_epochs: oops}\n")  # only used in the message
    with pytest.raises(AlreadyComplete, match=r"trained 1 epochs\. Nothing"):
        resume_argv(["neuronlab-train", f"resume={run}"])
    (run / "result.json").write_text("[1, 2]")  # not a record of a completed run: resumed
    assert resume_argv(["neuronlab-train", f"resume={run}"])[-2].startswith("ckpt_path=")


def test_a_run_folders_records_are_read_safely_one_line_each(tmp_path):
    """Each file resume reads goes through neuronlab.io.read: .hydra/overrides.yaml (an alias bomb),
    .hydra/config.yaml and result.json (FIFOs: an open would wait for ever) answer within a second."""
    import os
    import time

    from neuronlab.errors import NeuronlabError
    from neuronlab.io.read import UnreadableFile
    from neuronlab.run.folder import read_result
    from neuronlab.run.resume import AlreadyComplete, resume_argv
    from tests.test_read_show import BOMB

    run = hand_made_run(tmp_path, status="completed")  # (imports torch before the clock starts)
    start = time.monotonic()
    (run / ".hydra" / "config.yaml").unlink()
    os.mkfifo(run / ".hydra" / "config.yaml")  # only used in the message: left out of it
    with pytest.raises(AlreadyComplete, match=r"trained 20 epochs\. Nothing was changed"):
        resume_argv(["neuronlab-train", f"resume={run}"])
    (run / "result.json").unlink()
    os.mkfifo(run / "result.json")  # not a record of a completed run: resumed
    with pytest.raises(UnreadableFile, match="not a regular file"):
        read_result(run)
    assert resume_argv(["neuronlab-train", f"resume={run}"])[-2].startswith("ckpt_path=")
    (run / ".hydra" / "overrides.yaml").write_text(BOMB)
    with pytest.raises(NeuronlabError) as refused:
        resume_argv(["neuronlab-train", f"resume={run}"])
    assert "aliases" in str(refused.value) and "\n" not in str(refused.value)
    assert time.monotonic() - start < 1.0


def test_the_refusal_of_saved_paths_names_them_all_in_one_command(tmp_path):
    """Several saved paths: one message whose command gives them all (not one refusal per try)."""
    import shlex

    import yaml

    from neuronlab.errors import NeuronlabError
    from neuronlab.run.resume import resume_argv

    run = hand_made_run(tmp_path, status=None)
    saved = ["paths.data_dir=/data/x", "trainer.max_epochs=20", "callbacks.model_checkpoint.dirpath='/a b'"]
    (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(saved))
    with pytest.raises(NeuronlabError) as refused:
        resume_argv(["neuronlab-train", f"resume={run}"])
    message = str(refused.value)
    assert "'paths.data_dir=/data/x'" in message and "callbacks.model_checkpoint.dirpath" in message
    command = shlex.split(message.partition("say so yourself: ")[2])
    assert command[2:] == ["paths.data_dir=/data/x", "callbacks.model_checkpoint.dirpath='/a b'"]
    assert resume_argv(command)[-2].startswith("ckpt_path=")  # the command it gives is accepted
