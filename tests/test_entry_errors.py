"""Every command ends a user error the same way (errors.run_command): one ``error:`` line, exit code 2,
``result.json`` where the command has a run folder; interrupts exit 130/143; bugs keep their traceback.
Each case here used to end in a traceback."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from neuronlab.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    ImageError,
    NeuronlabError,
    run_command,
    user_message,
)
from tests.conftest import one_error_line, run_cli, run_entry


@pytest.fixture(autouse=True)
def no_full_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)


@pytest.mark.parametrize("command", ["eval", "predict", "export"])
def test_a_checkpoint_command_without_a_checkpoint_is_one_line(tmp_path, command):
    extra = ["inputs=[[0,1]]"] if command == "predict" else []
    # a subprocess: eval configures Hydra's logging, which would outlive this test in this process
    done = run_cli(f"neuronlab.{command}", "ckpt_path=null", *extra, cwd=tmp_path)
    line = one_error_line(done.stderr)
    assert done.returncode == 2 and "ckpt_path=None" in line
    assert "pass ckpt_path=<a .ckpt file or a run folder>" in line
    if command == "eval":  # the one of the three with a run folder: it says why, with the same words
        result = json.loads(next((tmp_path / "outputs").rglob("result.json")).read_text())
        assert result["status"] == "failed" and f"error: {result['error']}" == line


def test_train_with_a_checkpoint_folder_it_cannot_make_is_one_line_and_recorded(tmp_path):
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    target = blocker / "checkpoints"
    args = [f"callbacks.model_checkpoint.dirpath={target}", "trainer.max_epochs=1"]
    done = run_cli("neuronlab.train", *args, cwd=tmp_path)
    line = one_error_line(done.stderr)
    assert done.returncode == 2 and str(target) in line and "Not a directory" in line
    result = json.loads(next((tmp_path / "outputs").rglob("result.json")).read_text())
    assert result["status"] == "failed" and f"error: {result['error']}" == line


def test_summary_that_cannot_write_its_table_is_one_line(tmp_path, monkeypatch, capsys):
    job = tmp_path / "sweep" / "0"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text("- seed=1\n")
    (job / "result.json").write_text(json.dumps({"status": "completed", "metrics": {"val/acc": 1.0}}))
    (tmp_path / "sweep" / "summary.md").mkdir()  # where the table goes: a folder
    code, _, err = run_entry(monkeypatch, capsys, "summary", str(tmp_path / "sweep"))
    line = one_error_line(err)
    assert code == 2 and str(tmp_path / "sweep" / "summary.md") in line


def test_scratch_with_an_out_dir_it_cannot_write_is_one_line(tmp_path):
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    done = run_cli("neuronlab.scratch.cli", f"out_dir={blocker / 'x'}", "epochs=2", cwd=tmp_path)
    line = one_error_line(done.stderr)
    assert done.returncode == 2 and line.startswith(
        f"error: out_dir={blocker / 'x'}: cannot write loss_curve.png"
    )


# --- the wrapper itself ----------------------------------------------------------------------------


def test_user_errors_are_known_by_type_not_by_their_words():
    for err in (ConfigError("x"), DataError("x"), CheckpointError("x"), ImageError("x"), NeuronlabError("x")):
        assert user_message(err) == "x"
    assert issubclass(ConfigError, ValueError) and issubclass(ImageError, ValueError)
    assert user_message(ValueError("model.hidden_size=0 must be ...")) is None  # a bug's words do not count
    assert user_message(KeyError("data.")) is None
    assert user_message(NotADirectoryError(20, "Not a directory", "/x/y")) == "/x/y: Not a directory"
    assert user_message(OSError(28, "No space left on device", "/r/a")).startswith("cannot write /r/a")
    assert user_message(OSError("no file named")) is None  # no path: not the user's


def test_the_data_and_io_errors_of_the_data_package_are_in_the_family():
    from neuronlab.data.idx import IDXError
    from neuronlab.data.mnist import DataNotFoundError
    from neuronlab.run.paths import RunLocked

    assert issubclass(IDXError, DataError) and issubclass(IDXError, ValueError)
    assert issubclass(DataNotFoundError, DataError) and issubclass(DataNotFoundError, FileNotFoundError)
    assert issubclass(RunLocked, NeuronlabError)


def test_a_user_error_is_one_line_exit_2_and_recorded(capsys):
    records: list[tuple[str, str]] = []

    def bad() -> None:
        raise ConfigError("data.gate='x' is not known")

    with pytest.raises(SystemExit) as done:
        run_command(bad, lambda *r: records.append(r))
    assert done.value.code == 2 and capsys.readouterr().err == "error: data.gate='x' is not known\n"
    assert records == [("failed", "data.gate='x' is not known")]
    with pytest.raises(NeuronlabError, match="^data.gate='x' is not known$"):  # a sweep job, the notebook
        run_command(bad, raise_errors=True)


def test_the_error_line_escapes_a_stored_string_and_keeps_a_long_path_whole(tmp_path, capsys):
    """A message quoting a file's name or a saved value is printed escaped, in one place (run_command): no
    screen cleared, no forged second line; a long path stays whole (it is copied from the line)."""
    path = tmp_path.joinpath(*["folder-of-a-long-name"] * 25, "x\x1b[2J\nerror: forged")

    def bad() -> None:
        raise CheckpointError(f"ckpt_path={path}: no such checkpoint")

    with pytest.raises(SystemExit):
        run_command(bad)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "\x1b" not in err
    assert err == f"error: ckpt_path={path.parent}/x\\x1b[2J\\nerror: forged: no such checkpoint\n"
    assert len(err) > 600


def test_hydra_full_error_keeps_the_traceback_and_a_bug_keeps_it_always(monkeypatch):
    records: list[tuple[str, str]] = []
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(ConfigError):
        run_command(lambda: (_ for _ in ()).throw(ConfigError("bad")), lambda *r: records.append(r))
    monkeypatch.delenv("HYDRA_FULL_ERROR")
    with pytest.raises(TypeError):
        run_command(lambda: (_ for _ in ()).throw(TypeError("oops")), lambda *r: records.append(r))
    assert records == [("failed", "bad"), ("failed", "TypeError: oops")]


@pytest.mark.parametrize(
    ("stop", "code"), [(KeyboardInterrupt(), 130), (type("SIGTERMException", (Exception,), {})(), 143)]
)
def test_interrupts_exit_with_their_signal_codes(capsys, stop, code):
    records: list[tuple[str, str]] = []
    with pytest.raises(SystemExit) as done:
        run_command(lambda: (_ for _ in ()).throw(stop), lambda *r: records.append(r))
    assert done.value.code == code and records == [("interrupted", "SIGINT" if code == 130 else "SIGTERM")]
    assert "stopped by" in capsys.readouterr().err


def test_the_early_checks_know_the_datasets_the_data_package_serves():
    from neuronlab.data import DATASETS
    from neuronlab.data.checks import DATASET_NAMES

    assert tuple(DATASETS) == DATASET_NAMES


def test_the_owner_checks_import_no_torch():
    import subprocess
    import sys

    code = (
        "import sys, neuronlab.run.validate, neuronlab.models.checks, neuronlab.data.checks;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'lightning')))"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.strip() == "[]"


HYDRA_ERRORS = {
    "model=foo": "error: In 'train': Could not find 'model/foo'; choose one of: mnist_classifier, "
    "modern_network, simple_nn",
    "foo.bar=1": "error: Could not override 'foo.bar'. Key 'foo' is not in struct. To append to your config "
    "use +foo.bar=1",
    "trainer.max_epochs=[1": "error: cannot read the override 'trainer.max_epochs=[1': no viable alternative "
    "at input '[1' (see https://hydra.cc/docs/advanced/override_grammar/basic/)",
}


@pytest.mark.parametrize("override", list(HYDRA_ERRORS))
def test_hydras_own_errors_are_one_line_and_exit_2(monkeypatch, capsys, tmp_path, override):
    """An unknown option or key, or an override that does not parse: Hydra's several lines and exit 1
    become one line and exit 2, before anything is written."""
    monkeypatch.setenv("NEURONLAB_OUTPUT_ROOT", str(tmp_path / "outputs"))
    code, _, err = run_entry(monkeypatch, capsys, "train", override)
    assert (code, one_error_line(err)) == (2, HYDRA_ERRORS[override])
    assert err.strip() == HYDRA_ERRORS[override]
    assert not list((tmp_path / "outputs").rglob("*"))  # no run folder, nothing written
    assert "HYDRA_FULL_ERROR" not in os.environ  # set only while Hydra runs


@pytest.mark.parametrize("command", ["eval", "predict", "export", "scratch.cli"])
def test_every_hydra_command_reports_an_unknown_key_in_one_line(monkeypatch, capsys, tmp_path, command):
    monkeypatch.setenv("NEURONLAB_OUTPUT_ROOT", str(tmp_path / "outputs"))
    code, _, err = run_entry(monkeypatch, capsys, command, "nosuchkey=1")
    assert code == 2
    assert one_error_line(err).startswith("error: Could not override 'nosuchkey'. Key 'nosuchkey' is not in")


def test_hydra_full_error_still_shows_hydras_traceback(tmp_path):
    done = run_cli("neuronlab.train", "model=foo", cwd=tmp_path, env={"HYDRA_FULL_ERROR": "1"})
    assert done.returncode == 1 and "Traceback" in done.stderr and "MissingConfigException" in done.stderr


def test_first_line_is_the_one_way_an_error_becomes_one_line():
    from neuronlab.errors import first_line

    assert first_line(ValueError("bad value\n  where it came from")) == "bad value"
    assert first_line(KeyError()) == "KeyError"  # says nothing: its type
    assert first_line("x" * 300) == "x" * 300  # never cut: shown() caps what is printed


def test_the_write_probe_of_the_outputs_folder_follows_no_planted_link_and_leaves_nothing(
    tmp_path, monkeypatch
):
    """The pre-flight's probe is created exclusively under no predictable name: a link planted in a shared
    outputs folder (under the name the probe used to have, for this process) is never written through."""
    from neuronlab.run.preflight import check_outputs_writable

    root = tmp_path / "outputs"
    root.mkdir()
    target = tmp_path / "victim"
    target.write_text("kept")
    (root / f".neuronlab-write-test-{os.getpid()}").symlink_to(target)
    before = sorted(root.iterdir())
    monkeypatch.setenv("NEURONLAB_OUTPUT_ROOT", str(root))
    check_outputs_writable(["neuronlab-train"])
    assert target.read_text() == "kept" and sorted(root.iterdir()) == before


def test_an_offline_mnist_download_is_one_line_saying_what_where_and_how(tmp_path, monkeypatch):
    """torchvision's download error spans several lines (each mirror tried): the message is one line."""
    from neuronlab.data.mnist import DataNotFoundError, MNISTDataModule

    for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):  # refused at once: offline
        monkeypatch.setenv(proxy, "http://127.0.0.1:9")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    dm = MNISTDataModule(name="mnist", data_dir=str(tmp_path), download=True)
    with pytest.raises(DataNotFoundError) as err:
        dm.prepare_data()
    message = str(err.value)
    assert "\n" not in message and "\\n" not in message
    assert f"in {tmp_path / 'MNIST' / 'raw'} " in message and "the download failed (" in message
    assert message.endswith("copy the files there, or set data.data_dir=<a folder that holds them>")
