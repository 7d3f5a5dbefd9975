"""logger=mlflow: the store read back with MLflow's own client (runs, params, metric histories, tags),
resume continuity after a real SIGKILL, a sweep's runs, and the untrusted run-id file."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from neuronlab.errors import NeuronlabError
from neuronlab.run.loggers import RUN_ID_FILE, MLFlowLogger
from tests.conftest import only, run_cli, write_mnist
from tests.test_robustness import run_main, runs, start, wait_for_last_checkpoint

mlflow = pytest.importorskip("mlflow")


def client_for(outputs: Path):
    return mlflow.MlflowClient(f"sqlite:///{outputs.resolve() / 'mlflow.db'}")


def runs_of(client, experiment: str) -> list:
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no MLflow experiment {experiment!r}"
    return client.search_runs([found.experiment_id])


def steps(client, run_id: str, key: str) -> list[int]:
    return [m.step for m in client.get_metric_history(run_id, key)]


def test_cli_run_logs_params_every_epoch_test_metrics_and_the_best_checkpoint(tmp_path):
    done = run_cli("neuronlab.train", "logger=tensorboard_mlflow", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    run_dir = only(runs(tmp_path / "outputs"))
    result = json.loads((run_dir / "result.json").read_text())
    client = client_for(tmp_path / "outputs")
    run = only(runs_of(client, "xor"))  # experiment = task_name
    assert run.info.status == "FINISHED"
    assert (run_dir / RUN_ID_FILE).read_text().strip() == run.info.run_id
    # the same plain parameters as TensorBoard's HPARAMS entry (report.hparams_of)
    params = run.data.params
    assert params["optimizer.lr"] == "0.1" and params["model.hidden_size"] == "4"
    assert params["choice/model"] == "simple_nn" and params["seed"] == "0"
    assert not any(k.startswith("data.data_dir") for k in params)
    # every validation (every 10th epoch for the gates) and every training epoch, each step once
    epochs = int(result["metrics"]["epochs"])  # epochs run (early stopping ends the XOR run)
    val = steps(client, run.info.run_id, "val/acc")
    assert val == sorted(set(val)) and len(val) == epochs // 10
    train = steps(client, run.info.run_id, "train/loss")
    assert train == list(range(epochs))
    for key in ("test/acc", "test/loss", "val/acc_best"):
        assert run.data.metrics[key] == pytest.approx(result["metrics"][key]), key
    assert run.data.tags["best_checkpoint"] == str(run_dir / "checkpoints" / "best.ckpt")
    # TensorBoard still gets its event file beside MLflow
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    # the summary says how to look at it, in one copyable line
    store = (tmp_path / "outputs" / "mlflow.db").resolve()
    assert f"mlflow ui --backend-store-uri sqlite:///{store}\n" in done.stdout
    noise = ("Creating initial MLflow database", "alembic", "Context impl", "not found. Creating it")
    assert not [line for line in (done.stdout + done.stderr).splitlines() if any(n in line for n in noise)]


@pytest.mark.slow  # 25 s; the SIGKILL resume itself is tested by default in test_robustness.py
def test_resume_after_sigkill_continues_the_same_mlflow_run_without_duplicated_steps(tmp_path):
    data = write_mnist(tmp_path / "data", "MNIST", n_train=600, n_test=200)
    args = [
        "experiment=mnist",
        "logger=mlflow",
        "logger.mlflow.flush_secs=0",  # every point written at once: the kill below loses none
        f"paths.data_dir={data}",
        "data.val_size=100",
        "data.batch_size=8",
        "trainer.max_epochs=3",
    ]
    proc = start(tmp_path, *args)
    run_dir = wait_for_last_checkpoint(tmp_path, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    client = client_for(tmp_path / "outputs")
    (killed,) = runs_of(client, "mnist")
    assert killed.info.status == "RUNNING"  # killed: nobody could close it
    assert killed.data.params["optimizer.lr"] == "0.001"  # logged before training: a killed run has them
    before = steps(client, killed.info.run_id, "val/acc")
    assert 1 <= len(before) < 3

    # a run folder sets no path and no logger.* key: given again
    again = [f"paths.data_dir={data}", "logger.mlflow.flush_secs=0"]
    resumed = run_cli("neuronlab.train", f"resume={run_dir}", *again, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    (run,) = runs_of(client, "mnist")  # no second run
    assert run.info.run_id == killed.info.run_id and run.info.status == "FINISHED"
    val = steps(client, run.info.run_id, "val/acc")
    assert val[: len(before)] == before and val == sorted(set(val)) and len(val) == 3
    train = steps(client, run.info.run_id, "train/loss")
    assert train == sorted(set(train)) and len(train) in (2, 3)  # a kill right after a checkpoint may
    assert train[-1] == val[-1]  # take that epoch's train point with it (as in TensorBoard)
    result = json.loads((run_dir / "result.json").read_text())
    assert run.data.metrics["test/acc"] == pytest.approx(result["metrics"]["test/acc"])


def test_resume_with_a_changed_override_keeps_the_run_and_records_the_change(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NEURONLAB_OUTPUT_ROOT", str(tmp_path / "outputs"))
    assert run_main(monkeypatch, capsys, "logger=mlflow", "trainer.max_epochs=20")[0] == 0
    run_dir = only(runs(tmp_path / "outputs"))
    assert run_main(monkeypatch, capsys, f"resume={run_dir}", "trainer.max_epochs=30")[0] == 0
    client = client_for(tmp_path / "outputs")
    (run,) = runs_of(client, "xor")
    assert steps(client, run.info.run_id, "train/loss") == list(range(30))
    assert run.data.params["trainer.max_epochs"] == "20"  # MLflow parameters cannot change...
    assert run.data.tags["neuronlab.changed_on_resume"] == "trainer.max_epochs=30"  # ...so a tag says it


def test_a_bad_run_id_file_is_one_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NEURONLAB_OUTPUT_ROOT", str(tmp_path / "outputs"))
    assert run_main(monkeypatch, capsys, "logger=mlflow", "trainer.max_epochs=2")[0] == 0
    run_dir = only(runs(tmp_path / "outputs"))
    (run_dir / RUN_ID_FILE).write_text("../../../etc/passwd\n")
    code, err = run_main(monkeypatch, capsys, f"resume={run_dir}", "trainer.max_epochs=3")
    assert code == 2
    assert err.count("error:") == 1 and "Traceback" not in err
    assert f"{run_dir / RUN_ID_FILE} does not hold an MLflow run id (expected 32 hex digits" in err


def test_run_id_file_checks(tmp_path):
    kwargs = {"run_dir": str(tmp_path), "experiment_name": "e", "root_dir": str(tmp_path)}
    for bad in ("", "A" * 32, "0" * 31, "0" * 33, "g" * 32):
        (tmp_path / RUN_ID_FILE).write_text(bad)
        with pytest.raises(NeuronlabError, match="32 hex digits"):
            MLFlowLogger(**kwargs)
    (tmp_path / RUN_ID_FILE).write_bytes(b"\xff\xfe" * 16)
    with pytest.raises(NeuronlabError, match="32 hex digits"):
        MLFlowLogger(**kwargs)
    (tmp_path / RUN_ID_FILE).write_text("0123456789abcdef" * 2 + "\n")  # well-formed, but not in the store
    with pytest.raises(NeuronlabError, match="is not in sqlite:///"):  # before the run writes anything
        MLFlowLogger(**kwargs)


def test_a_sweep_logs_one_mlflow_run_per_job(tmp_path):
    done = run_cli(
        "neuronlab.train", "-m", "logger=mlflow", "trainer.max_epochs=3", "model.activation=relu,tanh",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    jobs = runs(tmp_path / "outputs")
    assert len(jobs) == 2
    client = client_for(tmp_path / "outputs")
    found = {r.info.run_id: r for r in runs_of(client, "xor")}
    assert {(job / RUN_ID_FILE).read_text().strip() for job in jobs} == set(found)
    assert sorted(r.data.params["model.activation"] for r in found.values()) == ["relu", "tanh"]
    for run in found.values():
        assert run.info.status == "FINISHED" and "test/acc" in run.data.metrics
        assert run.info.run_name.endswith(Path(run.data.tags["neuronlab.run_dir"]).name)


def test_a_copied_run_folder_logs_to_its_own_mlflow_run_and_a_refused_resume_changes_nothing(
    tmp_path, monkeypatch, capsys
):
    """The run id file is copied with the folder (``cp -r``): the copy must not write into the original's
    MLflow run. And a resume that the logger refuses (its run is not in this store) leaves the finished
    run's result.json and .hydra/ as they were."""
    import shutil

    monkeypatch.setenv("NEURONLAB_OUTPUT_ROOT", str(tmp_path / "outputs"))
    assert run_main(monkeypatch, capsys, "logger=mlflow", "trainer.max_epochs=2")[0] == 0
    original = only(runs(tmp_path / "outputs"))
    copy = original.parent / f"{original.name}-copy"
    shutil.copytree(original, copy)
    client = client_for(tmp_path / "outputs")
    (first,) = runs_of(client, "xor")
    assert run_main(monkeypatch, capsys, f"resume={copy}", "trainer.max_epochs=3")[0] == 0
    found = {r.info.run_id: r for r in runs_of(client, "xor")}
    assert len(found) == 2
    copied = (copy / RUN_ID_FILE).read_text().strip()
    assert copied != first.info.run_id and copied in found
    assert steps(client, first.info.run_id, "train/loss") == [0, 1]  # the original's run is as it was
    assert found[copied].data.tags["neuronlab.run_dir"] == str(copy)
    # a resume the logger refuses: the finished copy keeps its record
    record = {p: p.read_bytes() for p in [copy / "result.json", *sorted((copy / ".hydra").iterdir())]}
    code, err = run_main(
        monkeypatch, capsys, f"resume={copy}", "trainer.max_epochs=4",
        f"logger.mlflow.tracking_uri=sqlite:///{tmp_path / 'other.db'}",
    )  # fmt: skip
    assert code == 2 and "is not in sqlite:///" in err, err
    assert {p: p.read_bytes() for p in record} == record
