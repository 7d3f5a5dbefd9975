"""Hydra sweeps end to end (basic, Optuna, joblib, submitit_local; a failing job) and the sweep summary.

The sweeps run ``python -m neuronlab.train -m ...`` as a user would, on XOR with 20 epochs; the summary's
own tests build job folders by hand.
"""

from __future__ import annotations

import csv
import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import optuna
import pytest
import yaml

from neuronlab.summary import figure, main, summarize, write_summary
from tests.conftest import ctrl_c_as_in_a_terminal, only, read_scalars, run_cli

LR_MESSAGE = "optimizer.lr=-1 is not allowed: expected a number > 0"


# ------------------------------------------------------------------------------ hand-made job folders


def make_job(
    sweep: Path,
    num: int,
    overrides: list[str],
    status: str | None = "completed",
    metrics: dict[str, float] | None = None,
    error: str = "",
    wall_time: float = 1.0,
    metric: str = "val/acc_best",
) -> Path:
    """A job folder as Hydra and train.py leave it; ``status=None``: no result.json (still running)."""
    folder = sweep / f"{num}_{','.join(overrides)}".replace("/", "_")
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (folder / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"optimized_metric": metric}))
    if status is not None:
        result = {"status": status, "metrics": metrics or {}, "wall_time": wall_time, "error": error}
        (folder / "result.json").write_text(json.dumps(result))
    return folder


def acc(val: float, test: float, epochs: int = 5) -> dict[str, float]:
    return {"val/acc_best": val, "test/acc": test, "epochs": float(epochs), "val/loss": 1 - val}


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """Four jobs: two completed (the second better), one failed, one without a result yet."""
    root = tmp_path / "outputs" / "mnist" / "multiruns" / "2024-01-01_00-00-00"
    fixed = "trainer.max_epochs=5"
    make_job(
        root, 0, ["optimizer.lr=0.001", "model.activation=relu", fixed], metrics=acc(0.9, 0.88), wall_time=65
    )
    make_job(root, 1, ["optimizer.lr=0.01", "model.activation=relu", fixed], metrics=acc(0.97, 0.965))
    make_job(
        root,
        2,
        ["optimizer.lr=-1", "model.activation=tanh", fixed],
        status="failed",
        error=f"NeuronlabError: {LR_MESSAGE}",
        wall_time=0.01,
    )
    make_job(root, 3, ["optimizer.lr=0.001", "model.activation=tanh", fixed], status=None)
    (root / ".submitit").mkdir()  # not a job: no .hydra/overrides.yaml
    return root


def table_rows(markdown: str) -> list[list[str]]:
    lines = [line for line in markdown.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines if "---" not in line]


# --------------------------------------------------------------------------------------- unit tests


def test_summary_ranks_best_first_with_swept_columns_and_failed_last(sweep):
    summary = write_summary(sweep)
    assert [job.num for job in summary.jobs] == [1, 0, 3, 2]
    assert summary.swept == ["optimizer.lr", "model.activation"]
    assert summary.fixed == {"trainer.max_epochs": "5"}

    markdown = (sweep / "summary.md").read_text()
    header, *rows = table_rows(markdown)
    assert header == [
        "rank",
        "job",
        "optimizer.lr",
        "model.activation",
        "val/acc_best",
        "test/acc",
        "epochs",
        "wall time",
        "status",
    ]
    assert rows[0] == ["1", "1", "0.01", "relu", "97.00 %", "96.50 %", "5", "1.0 s", "completed"]
    assert rows[1] == ["2", "0", "0.001", "relu", "90.00 %", "88.00 %", "5", "1 min 05 s", "completed"]
    assert rows[2][:2] == ["–", "3"] and rows[2][-1] == "unfinished"
    assert rows[3][:4] == ["–", "2", "-1", "tanh"] and rows[3][-1] == f"failed: {LR_MESSAGE}"
    assert "`trainer.max_epochs=5`" in markdown and "2 completed, 1 unfinished, 1 failed" in markdown

    with open(sweep / "summary.csv") as handle:
        table = list(csv.DictReader(handle))
    assert [r["job"] for r in table] == ["1", "0", "3", "2"]
    assert table[0]["optimizer.lr"] == "0.01" and float(table[0]["val/acc_best"]) == 0.97
    assert table[3]["status"] == "failed" and table[3]["error"] == LR_MESSAGE and table[3]["rank"] == ""

    png = sweep / "summary.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    leftovers = [p.name for p in sweep.iterdir() if p.name.startswith(".") and p.name != ".submitit"]
    assert leftovers == [".summary.lock"]  # no temporary files

    # once the sweep is over, a job without a result was interrupted
    assert write_summary(sweep, final=True).jobs[2].status == "interrupted"


def test_plot_has_a_log_axis_for_learning_rates_and_categories_for_lists(tmp_path):
    sweep = tmp_path / "sweep"
    for i, (lr, sizes) in enumerate([("1e-4", "[256,128]"), ("1e-3", "[512,256]"), ("1e-2", "[256,128]")]):
        make_job(
            sweep, i, [f"optimizer.lr={lr}", f"model.hidden_sizes={sizes}"], metrics=acc(0.5 + i / 10, 0.5)
        )
    make_job(sweep, 3, ["optimizer.lr=-1", "model.hidden_sizes=[128,64]"], status="failed", error="bad")
    axes = {ax.get_xlabel(): ax for ax in figure(summarize(sweep)).axes}
    assert axes["optimizer.lr"].get_xscale() == "linear"  # -1 (failed) is on it: no log axis
    assert [t.get_text() for t in axes["model.hidden_sizes"].get_xticklabels()] == [
        "[128,64]",
        "[256,128]",
        "[512,256]",
    ]
    (sweep / "3_optimizer.lr=-1,model.hidden_sizes=[128,64]" / "result.json").unlink()  # now unfinished
    axes = {ax.get_xlabel(): ax for ax in figure(summarize(sweep)).axes}
    assert axes["optimizer.lr"].get_xscale() == "log"


def test_a_loss_metric_ranks_lowest_first(tmp_path):
    sweep = tmp_path / "sweep"
    make_job(sweep, 0, ["seed=0"], metrics={"val/loss": 0.5}, metric="val/loss")
    make_job(sweep, 1, ["seed=1"], metrics={"val/loss": 0.2}, metric="val/loss")
    summary = summarize(sweep)
    assert [j.num for j in summary.jobs] == [1, 0] and summary.metric == "val/loss"
    assert summary.metrics == ["val/loss", "val/acc_best", "test/acc"]


def _write_summary_twice(sweep: str) -> int:
    for _ in range(2):
        write_summary(sweep)
    return os.getpid()


def test_writers_at_the_same_time_leave_whole_files(sweep):
    with ProcessPoolExecutor(4) as pool:
        assert len(set(pool.map(_write_summary_twice, [str(sweep)] * 4))) >= 2
    assert len(table_rows((sweep / "summary.md").read_text())) == 5
    assert [p.name for p in sweep.glob(".*.tmp")] == []


def test_summary_command(sweep, tmp_path, capsys):
    (sweep / "summary.md").unlink(missing_ok=True)
    main([str(sweep)])
    out = capsys.readouterr().out
    assert "Sweep summary: 4 jobs" in out and "97.00 %" in out and LR_MESSAGE in out
    assert (sweep / "summary.md").is_file() and (sweep / "summary.csv").is_file()

    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "nowhere")])
    assert exit_info.value.code == 2
    assert "error: sweep folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(tmp_path / "outputs")])  # a folder of sweeps: the message names the latest
    assert str(sweep) in capsys.readouterr().err


def test_launcher_and_search_configs_compose(compose_cfg):
    cfg = compose_cfg(
        ["hydra/launcher=slurm", "hydra.launcher.partition=gpu", "hydra.launcher.gpus_per_node=4"]
    )
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")  # the plugin's schema, with our values on top
    assert (launcher.partition, launcher.gpus_per_node, launcher.timeout_min) == ("gpu", 4, 60)
    with pytest.raises(Exception, match="partiton"):
        compose_cfg(["hydra/launcher=slurm", "hydra.launcher.partiton=gpu"])  # typos are caught

    cfg = compose_cfg(["hparams_search=mnist_optuna"])
    assert cfg.data._target_.endswith("MNISTDataModule") and cfg.optimized_metric == "val/acc_best"
    sweeper = cfg.hydra.sweeper
    assert sweeper.max_failure_rate == 1.0 and sweeper.direction == "maximize"
    assert sweeper._target_.endswith("neuronlab_optuna_sweeper.optuna_sweeper.OptunaSweeper")
    assert (sweeper.sampler, sweeper.pruner, sweeper.storage) == ("tpe", "median", None)
    assert set(sweeper.params) == {
        "optimizer.lr",
        "model.hidden_sizes",
        "model.dropout",
        "model.activation",
        "data.batch_size",
    }
    assert compose_cfg(["hparams_search=gates_optuna"]).hydra.sweeper.max_failure_rate == 1.0


# ------------------------------------------------------------------------------------------- sweeps


def sweep_of(root: Path) -> Path:
    """The one sweep folder a run left under ``root/outputs`` (no job strayed into another one)."""
    return only(list((root / "outputs").glob("*/multiruns/*")))


def job_dirs(sweep: Path) -> list[Path]:
    return sorted(p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))


def test_basic_sweep_one_folder_per_job_side_by_side_in_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer
    from tensorboard.plugins.hparams import plugin_data_pb2

    result = run_cli(
        "neuronlab.train",
        "-m",
        "data=xor,and",
        "model.activation=relu,tanh",
        "trainer.max_epochs=20",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = sweep_of(tmp_path)  # data=and jobs are in the same sweep folder as data=xor ones
    assert sweep.parent.parent.name == "xor"
    names = [p.name for p in job_dirs(sweep)]
    assert names == [
        f"{i}_data={d},model.activation={a},trainer.max_epochs=20"
        for i, (d, a) in enumerate([("xor", "relu"), ("xor", "tanh"), ("and", "relu"), ("and", "tanh")])
    ]

    runs = EventMultiplexer().AddRunsFromDirectory(str(sweep))
    runs.Reload()
    assert set(runs.Runs()) == {f"{name}/tensorboard" for name in names}
    summary = summarize(sweep)
    assert [j.status for j in summary.jobs] == ["completed"] * 4
    assert summary.swept == ["data", "model.activation"]
    best = [j.metrics["val/acc_best"] for j in summary.jobs]
    assert best == sorted(best, reverse=True)
    for job in summary.jobs:
        folder = sweep / job.folder
        assert len(list((folder / "tensorboard").glob("events.out.tfevents.*"))) == 1
        scalars = read_scalars(folder / "tensorboard")
        assert scalars["val/acc_best"][-1][1] == pytest.approx(job.metrics["val/acc_best"])
        content = runs.PluginRunToTagToContent("hparams")[f"{job.folder}/tensorboard"]
        session = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
        hparams = session.session_start_info.hparams
        assert hparams["model.activation"].string_value == job.params["model.activation"]
        assert hparams["choice/data"].string_value == job.params["data"]
    assert (sweep / "summary.png").is_file() and (sweep / "summary.csv").is_file()
    assert "Sweep summary: 4 jobs (4 completed)" in result.stdout


def test_failed_job_leaves_the_others_and_is_marked_in_the_summary(tmp_path):
    note = "a/very/long/note/" * 12  # slashes and length: the folder name must stay one safe name
    root = tmp_path / "my runs"  # a space in the sweep folder's path
    result = run_cli(
        "neuronlab.train",
        "-m",
        "optimizer.lr=-1,1e-2",
        f"+note={note}",
        "trainer.max_epochs=20",
        cwd=tmp_path,
        env={"NEURONLAB_OUTPUT_ROOT": str(root / "outputs")},
    )
    assert result.returncode != 0
    assert LR_MESSAGE in result.stderr
    sweep = sweep_of(root)
    folders = job_dirs(sweep)
    assert [p.name.split("_", 1)[0] for p in folders] == ["0", "1"]
    assert all(len(p.name) <= 125 and (p / ".hydra" / "overrides.yaml").is_file() for p in folders)

    failed, done = (json.loads((p / "result.json").read_text()) for p in folders)
    assert failed["status"] == "failed" and LR_MESSAGE in failed["error"]
    assert done["status"] == "completed" and done["metrics"]["val/acc_best"] > 0
    # the final summary has every job, though Hydra ended the sweep by raising the failure
    rows = table_rows((sweep / "summary.md").read_text())[1:]
    assert [(r[1], r[2], r[-1]) for r in rows] == [
        ("1", "0.01", "completed"),
        ("0", "-1", f"failed: {LR_MESSAGE}"),
    ]
    assert "Sweep summary: 2 jobs (1 completed, 1 failed)" in result.stdout


def test_optuna_search_goes_on_after_a_failed_trial(tmp_path):
    result = run_cli(
        "neuronlab.train",
        "-m",
        "hparams_search=gates_optuna",
        "optimizer.lr=choice(-1,0.1)",  # the seeded sampler draws 0.1, -1, then 0.1
        "hydra.sweeper.n_trials=3",
        "trainer.max_epochs=20",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = sweep_of(tmp_path)
    assert len(job_dirs(sweep)) == 3
    summary = summarize(sweep)
    failed = [j for j in summary.jobs if j.status == "failed"]
    assert failed and all(j.params["optimizer.lr"] == "-1" and j.error == LR_MESSAGE for j in failed)
    # Optuna told of each failure (the study records FAIL), and trials went on after it
    output = result.stdout + result.stderr
    assert all(f"trial {j.num} failed: {LR_MESSAGE}" in output for j in failed)
    study = optuna.load_study(study_name="neuronlab", storage=f"sqlite:///{sweep / 'optuna.db'}")
    assert {t.number for t in study.trials if t.state.name == "FAIL"} == {j.num for j in failed}
    assert max(j.num for j in summary.jobs if j.status == "completed") > min(j.num for j in failed)
    best = summary.jobs[0]

    optimum = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert best.metrics["val/acc_best"] == pytest.approx(optimum["best_value"])
    assert {k: best.params[k] for k in optimum["best_params"]} == {
        k: str(v) for k, v in optimum["best_params"].items()
    }
    assert summary.swept[:3] == ["optimizer.lr", "model.hidden_size", "model.activation"]
    assert summary.fixed == {"hparams_search": "gates_optuna", "trainer.max_epochs": "20"}


def test_joblib_runs_jobs_in_worker_processes(tmp_path):
    result = run_cli(
        "neuronlab.train",
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "model.activation=relu,tanh",
        "trainer.max_epochs=20",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = sweep_of(tmp_path)
    folders = job_dirs(sweep)
    assert [p.name for p in folders] == [
        "0_model.activation=relu,trainer.max_epochs=20",
        "1_model.activation=tanh,trainer.max_epochs=20",
    ]
    for i, folder in enumerate(folders):  # the joblib launcher names its jobs <name>_<index>
        assert (
            yaml.safe_load((folder / ".hydra" / "hydra.yaml").read_text())["hydra"]["job"]["id"]
            == f"train_{i}"
        )
        assert len(list((folder / "tensorboard").glob("events.out.tfevents.*"))) == 1
    assert [j.status for j in summarize(sweep).jobs] == ["completed", "completed"]


def test_submitit_local_runs_a_sweep_job(tmp_path):
    result = run_cli(
        "neuronlab.train",
        "-m",
        "hydra/launcher=submitit_local",
        "model.activation=tanh",
        "trainer.max_epochs=20",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = sweep_of(tmp_path)
    folder = only(job_dirs(sweep))
    assert folder.name == "0_model.activation=tanh,trainer.max_epochs=20"
    assert list((sweep / ".submitit").glob("*/*_result.pkl"))  # submitit ran it as its own job
    assert len(list((folder / "tensorboard").glob("events.out.tfevents.*"))) == 1
    job = only(summarize(sweep).jobs)
    assert job.status == "completed" and job.metrics["epochs"] == 20
    assert (sweep / "summary.md").is_file()


# ------------------------------------------------------------------------------ resume, seed groups


def test_a_killed_grid_resumes_in_its_folder_and_its_seed_groups_are_summarised(tmp_path):
    """Kill a 4-job grid in its third job, run the same command again on the same folder."""
    import signal
    import subprocess
    import sys
    import time

    import numpy as np

    sweep = tmp_path / "sweep"
    args = [
        "neuronlab.train",
        "-m",
        "trainer.max_epochs=20,100",  # jobs 2 and 3 train long enough to be killed in the middle
        "seed=0,1",
        "callbacks.early_stopping=null",
        "trainer.check_val_every_n_epoch=50",
        f"hydra.sweep.dir={sweep}",
    ]
    env = {**os.environ, "NEURONLAB_OUTPUT_ROOT": str(tmp_path / "outputs")}
    process = subprocess.Popen(
        [sys.executable, "-m", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def third_job_trains() -> bool:
        folders = job_dirs(sweep) if sweep.is_dir() else []
        if len(folders) < 3 or not (folders[2] / "checkpoints" / "last.ckpt").is_file():
            return False
        try:
            return json.loads((folders[2] / "result.json").read_text())["status"] == "running"
        except (OSError, ValueError):
            return False

    deadline = time.time() + 240
    while not third_job_trains():
        assert time.time() < deadline and process.poll() is None, "the third job never started"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    folders = job_dirs(sweep)
    before = {p.name: (p / "result.json").read_bytes() for p in folders[:2]}
    assert [json.loads(b)["status"] for b in before.values()] == ["completed", "completed"]

    again = run_cli(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    folders = job_dirs(sweep)
    assert len(folders) == 4
    assert {p.name: (p / "result.json").read_bytes() for p in folders[:2]} == before  # skipped, untouched
    resumed = json.loads((folders[2] / "result.json").read_text())
    assert resumed["status"] == "completed" and resumed["resumed_after_epochs"] >= 1
    assert resumed["metrics"]["epochs"] == 100
    assert json.loads((folders[3] / "result.json").read_text())["status"] == "completed"
    assert "resumed_after_epochs" not in json.loads((folders[3] / "result.json").read_text())

    summary = summarize(sweep)
    assert sorted(j.num for j in summary.jobs) == [0, 1, 2, 3]
    assert {j.num: j.resume for j in summary.jobs} == {
        0: "skipped",
        1: "skipped",
        2: f"resumed after {resumed['resumed_after_epochs']} epochs",
        3: "",
    }
    markdown = (sweep / "summary.md").read_text()
    assert (
        "This sweep was run again in its folder: it skipped the completed jobs 0, 1 and resumed 2" in markdown
    )

    # seed groups: trainer.max_epochs=20 and =100, two seeds each, as computed from the jobs' result.json
    with open(sweep / "summary_groups.csv") as handle:
        groups = {row["trainer.max_epochs"]: row for row in csv.DictReader(handle)}
    assert set(groups) == {"20", "100"}
    for epochs, row in groups.items():
        results = [
            json.loads((p / "result.json").read_text())["metrics"]
            for p in folders
            if f"trainer.max_epochs={epochs}" in yaml.safe_load((p / ".hydra" / "overrides.yaml").read_text())
        ]
        assert int(row["n"]) == len(results) == 2
        for metric in ("val/acc_best", "test/acc", "test/loss"):
            values = [r[metric] for r in results]
            assert float(row[f"{metric}_mean"]) == pytest.approx(np.mean(values))
            assert float(row[f"{metric}_std"]) == pytest.approx(np.std(values, ddof=1))
    assert "## Seed groups" in markdown and " ± " in markdown and "(2) |" in markdown


def test_seed_groups_rank_by_mean_and_the_plot_has_error_bars(tmp_path):
    sweep = tmp_path / "sweep"
    values = {"relu": [0.9, 0.8, 0.85], "tanh": [0.95, 0.97, 0.96]}
    num = 0
    for activation, accs in values.items():
        for seed, value in enumerate(accs):
            metrics = {**acc(value, value - 0.01), "test/loss": 1 - value}
            make_job(sweep, num, [f"model.activation={activation}", f"seed={seed}"], metrics=metrics)
            num += 1
    make_job(sweep, num, ["model.activation=tanh", "seed=3"], status="failed", error="bad")
    summary = write_summary(sweep)
    assert [g.params for g in summary.groups] == [{"model.activation": "tanh"}, {"model.activation": "relu"}]
    mean, std, n = summary.groups[0].stats["val/acc_best"]
    assert (mean, n) == (pytest.approx(0.96), 3) and std == pytest.approx(0.01)
    header, *rows = table_rows((sweep / "summary.md").read_text().split("## Seed groups")[1])
    assert header == ["rank", "model.activation", "val/acc_best", "test/acc", "test/loss"]
    assert rows[0] == ["1", "tanh", "96.00 ± 1.00 % (3)", "95.00 ± 1.00 % (3)", "0.0400 ± 0.0100 (3)"]
    fig = figure(summary)
    panel = next(ax for ax in fig.axes if ax.get_xlabel() == "model.activation")
    assert "mean ± std over seeds" in [t.get_text() for t in panel.get_legend().get_texts()]


# ------------------------------------------------------------------------------ a job's identity


def test_a_grid_rerun_with_its_arguments_reordered_skips_every_finished_job(tmp_path):
    """A job is its set of overrides: reordered, the grid numbers its jobs differently, yet each finds its
    folder, is skipped, and nothing trains twice (a duplicate would skew the seed groups' mean ± std)."""
    sweep = tmp_path / "sweep"
    first = run_cli(
        "neuronlab.train",
        "-m",
        "seed=0,1",
        "model.activation=relu,tanh",
        "trainer.max_epochs=2",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
    )
    assert first.returncode == 0, first.stderr[-3000:]
    before = {p.name: (p / "result.json").read_bytes() for p in job_dirs(sweep)}
    assert len(before) == 4
    again = run_cli(
        "neuronlab.train",
        "-m",
        "trainer.max_epochs=2",
        "model.activation=tanh,relu",
        "seed=1,0",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert {p.name: (p / "result.json").read_bytes() for p in job_dirs(sweep)} == before  # none retrained
    assert [json.loads((p / "sweep_resume.json").read_text())["action"] for p in job_dirs(sweep)] == [
        "skipped"
    ] * 4
    with open(sweep / "summary_groups.csv") as handle:
        assert sorted(int(row["n"]) for row in csv.DictReader(handle)) == [2, 2]


def test_a_job_resumed_alone_as_printed_is_skipped_when_the_grid_runs_again(tmp_path):
    """Ctrl-C in a grid job prints "Resume with: ..."; run as printed, then the grid again: the job is
    the same job (its record now holds a ckpt_path), skipped, not refused."""
    import shlex
    import signal
    import subprocess
    import sys
    import time

    sweep = tmp_path / "sweep"
    args = ["-m", "seed=0", "trainer.max_epochs=400", "callbacks.early_stopping=null"]
    args += ["trainer.check_val_every_n_epoch=10", f"hydra.sweep.dir={sweep}"]
    env = {**os.environ, "NEURONLAB_OUTPUT_ROOT": str(tmp_path / "outputs"), "PYTHONUNBUFFERED": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    with open(tmp_path / "stderr", "w") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "neuronlab.train", *args],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
            preexec_fn=ctrl_c_as_in_a_terminal,
        )
        deadline = time.time() + 120
        while not (sweep.is_dir() and list(sweep.glob("0_*/checkpoints/last.ckpt"))):
            assert time.time() < deadline and process.poll() is None, "the first job never saved"
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 130
    line = next(x for x in (tmp_path / "stderr").read_text().splitlines() if x.startswith("Resume with: "))
    command = shlex.split(line.removeprefix("Resume with: "))
    assert command[0] == "neuronlab-train"
    resumed = run_cli("neuronlab.train", *command[1:], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    job = job_dirs(sweep)[0]
    record = json.loads((job / "result.json").read_text())
    assert record["status"] == "completed" and any(o.startswith("ckpt_path=") for o in record["overrides"])

    again = run_cli("neuronlab.train", *args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads((job / "sweep_resume.json").read_text())["action"] == "skipped"
    assert json.loads((job / "result.json").read_bytes()) == record  # not trained again
