"""The Optuna sweeper end to end: real Optuna, real SQLite (and PostgreSQL) studies, real processes.

Every search runs ``python -m neuronlab.train -m hparams_search=gates_optuna ...`` on XOR (seconds per
trial) as a user would; the study is then read back with ``optuna.load_study``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from neuronlab.summary import summarize
from tests.conftest import only, run_cli

FAST = ["trainer.max_epochs=20", "model.activation=tanh"]  # 2 validations per trial (every 10 epochs)
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)  # the median pruner may stop a poor trial


def search(*args: str) -> list[str]:
    return ["neuronlab.train", "-m", "hparams_search=gates_optuna", *args]


def load(url: str, name: str = "neuronlab") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=url)


def sqlite(sweep: Path) -> str:
    return f"sqlite:///{sweep / 'optuna.db'}"


def jobs_by_trial(sweep: Path) -> dict[int, Path]:
    """The job folders of a sweep by their number (an Optuna trial's folder starts with its number)."""
    return {int(p.name.split("_")[0]): p for p in sweep.iterdir() if (p / ".hydra").is_dir()}


def result(folder: Path) -> dict:
    return json.loads((folder / "result.json").read_text())


def popen(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "NEURONLAB_OUTPUT_ROOT": str(cwd / "outputs")}
    full_env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.Popen(
        [sys.executable, "-m", *args],
        cwd=cwd,
        env={**full_env, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def wait_for(condition, timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)


def statuses(sweep: Path) -> list[str]:
    out = []
    for p in sweep.glob("*/result.json"):
        with contextlib.suppress(OSError, ValueError):  # being replaced right now
            out.append(json.loads(p.read_text())["status"])
    return out


def test_search_keeps_its_study_in_sqlite_survives_sigkill_and_grows_its_budget(tmp_path):
    sweep = tmp_path / "sweep"
    args = search(*FAST, f"hydra.sweep.dir={sweep}", "hydra.sweeper.n_trials=4")
    process = popen(args, tmp_path)
    # kill it while its third trial trains (its folder says "running"), after two finished
    wait_for(lambda: statuses(sweep).count("completed") == 2 and "running" in statuses(sweep))
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    study = load(sqlite(sweep))
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2 + [TrialState.RUNNING]
    before = {n: (p / "result.json").read_bytes() for n, p in jobs_by_trial(sweep).items()}

    again = run_cli(*args, cwd=tmp_path)  # the same command: it continues
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-3000:]
    assert "trials [2] were left running by a stopped sweep" in again.stdout + again.stderr
    study = load(sqlite(sweep))
    states = [t.state for t in study.trials]
    assert sum(s in FINISHED for s in states) == 4 and TrialState.RUNNING not in states
    assert states[2] == TrialState.FAIL  # the killed trial, its parameters re-queued as trial 3
    assert study.trials[3].params == study.trials[2].params
    jobs = jobs_by_trial(sweep)
    assert sorted(jobs) == [0, 1, 2, 3, 4]
    assert all((jobs[n] / "result.json").read_bytes() == before[n] for n in before)  # nothing overwritten
    # the study's values and parameters are those of each trial's own folder
    for trial in study.trials:
        if trial.state in FINISHED:
            done = result(jobs[trial.number])
            assert done["status"] == trial.state.name.lower().replace("complete", "completed")
            assert done["metrics"]["val/acc_best"] == pytest.approx(trial.value)
            overrides = yaml.safe_load((jobs[trial.number] / ".hydra" / "overrides.yaml").read_text())
            for key, value in trial.params.items():
                assert f"{key}={value}" in overrides
            assert f"+optuna_trial={trial.number}" in overrides
    summary = summarize(sweep, final=True)
    assert sorted(j.num for j in summary.jobs) == [0, 1, 2, 3, 4]  # every trial, the killed one too
    assert [j.num for j in summary.jobs if j.status == "interrupted"] == [2]
    assert "optuna_trial" not in summary.swept
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert best["best_value"] == pytest.approx(study.best_value) and best["trials"]["fail"] == 1

    more = run_cli(*args[:-1], "hydra.sweeper.n_trials=5", cwd=tmp_path)  # a larger budget: one more
    assert more.returncode == 0, more.stderr[-3000:]
    study = load(sqlite(sweep))
    assert sum(t.state in FINISHED for t in study.trials) == 5
    assert sorted(jobs_by_trial(sweep)) == [0, 1, 2, 3, 4, 5]


def test_hopeless_trials_are_pruned_before_max_epochs_in_parallel_trials(tmp_path):
    sweep = tmp_path / "sweep"
    result_ = run_cli(
        *search(
            "hydra/launcher=joblib",  # two trials at a time, each in its own worker process
            "hydra.launcher.n_jobs=2",
            "hydra.sweeper.n_jobs=2",
            "trainer.max_epochs=60",
            "trainer.check_val_every_n_epoch=5",
            "optimizer.lr=choice(0.000001,0.3)",  # 1e-6 learns nothing in 60 epochs
            "model.activation=tanh",
            "model.hidden_size=8",
            "hydra.sweeper.sampler=random",
            "hydra.sweeper.seed=0",  # draws 0.3, 1e-6 (at once: both may finish), then 1e-6, 0.3
            "hydra.sweeper.n_trials=4",
            "hydra.sweeper.pruner_startup_trials=1",
            "hydra.sweeper.pruner_warmup_epochs=0",
            f"hydra.sweep.dir={sweep}",
        ),
        cwd=tmp_path,
    )
    assert result_.returncode == 0, result_.stderr[-3000:]
    study = load(sqlite(sweep))
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    assert pruned and all(t.params["optimizer.lr"] == 1e-6 for t in pruned)
    jobs = jobs_by_trial(sweep)
    for trial in pruned:
        assert max(trial.intermediate_values) < 59  # reported steps are epochs: stopped early
        done = result(jobs[trial.number])
        assert done["status"] == "pruned" and done["pruned_epoch"] < 60
        assert done["metrics"]["epochs"] == done["pruned_epoch"] and "test/acc" not in done["metrics"]
    rows = {j.num: j for j in summarize(sweep).jobs}
    assert {n for n, j in rows.items() if j.status == "pruned"} == {t.number for t in pruned}
    assert (
        f"pruned at epoch {result(jobs[pruned[0].number])['pruned_epoch']}"
        in (sweep / "summary.md").read_text()
    )


@pytest.mark.slow  # the same sweeper code as with joblib; submitit's own start-up costs half a minute
def test_trials_run_through_the_submitit_launcher(tmp_path):
    sweep = tmp_path / "sweep"
    done = run_cli(
        *search(*FAST, "hydra/launcher=submitit_local", "hydra.sweeper.n_jobs=2", "hydra.sweeper.n_trials=2"),
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert list((sweep / ".submitit").glob("*/*_result.pkl"))  # submitit ran them as its own jobs
    study = load(sqlite(sweep))
    jobs = jobs_by_trial(sweep)
    assert sorted(jobs) == [0, 1] and all(t.state in FINISHED for t in study.trials)
    for trial in study.trials:
        assert result(jobs[trial.number])["metrics"]["val/acc_best"] == pytest.approx(trial.value)


def run_together(args: list[list[str]], cwd: Path) -> list[str]:
    processes = [popen(a, cwd) for a in args]
    outputs = [p.communicate(timeout=400)[0] for p in processes]
    for p, out in zip(processes, outputs, strict=True):
        assert p.returncode == 0, out[-3000:]
    return outputs


def check_shared(study: optuna.Study, sweeps: list[Path], budget: int) -> None:
    """Each trial ran once, in one of the processes' folders; together exactly the budget."""
    numbers = [set(jobs_by_trial(s)) for s in sweeps]
    assert all(numbers) and not set.intersection(*numbers) if len(numbers) > 1 else all(numbers)
    assert sorted(set.union(*numbers)) == list(range(budget))
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * budget


@pytest.mark.slow  # the PostgreSQL test below shares one study between two sweeps by default
def test_two_sweep_processes_share_one_study(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    sweeps = [tmp_path / "machine_a", tmp_path / "machine_b"]
    common = [
        *FAST,
        f"hydra.sweeper.storage={url}",
        "hydra.sweeper.study_name=shared",
        "hydra.sweeper.n_trials=5",
        "hydra.sweeper.pruner=none",  # 5 complete trials: enough for parameter importances
    ]
    run_together(
        [search(*common, f"hydra.sweep.dir={s}", f"hydra.sweeper.seed={i}") for i, s in enumerate(sweeps)],
        tmp_path,
    )
    study = load(url, "shared")
    check_shared(study, sweeps, 5)
    # the last process to finish saw every trial: Optuna's importances, in its results and its summary
    last = max(sweeps, key=lambda s: (s / "optimization_results.yaml").stat().st_mtime)
    importance = yaml.safe_load((last / "optimization_results.yaml").read_text())["importance"]
    assert importance == pytest.approx(optuna.importance.get_param_importances(study), abs=0.05)
    assert set(importance) == {"optimizer.lr", "model.hidden_size"}
    markdown = (last / "summary.md").read_text()
    assert "Parameter importances (Optuna's `optuna.importance.get_param_importances`" in markdown


# -------------------------------------------------------------------------------------------- PostgreSQL


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres() -> Iterator[str]:
    """A throw-away PostgreSQL server (Debian's ``postgresql`` package) in a temporary folder, as an
    unprivileged user; yields its SQLAlchemy URL and removes the cluster after."""
    bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    initdb = bins[-1] if bins else shutil.which("initdb")
    if not initdb:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql; .ci/run does it)")
    pytest.importorskip("psycopg", reason="the PostgreSQL driver: pip install -e '.[dev]'")
    bindir = Path(initdb).parent
    root = Path(tempfile.mkdtemp(prefix="neuronlab-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(root, "nobody")
        as_user = ["runuser", "-u", "nobody", "--"]
    data, port = root / "data", _free_port()

    def pg(*cmd: str) -> None:
        subprocess.run([*as_user, *cmd], check=True, capture_output=True, timeout=120, cwd=root)

    try:
        pg(str(bindir / "initdb"), "-D", str(data), "-U", "neuronlab", "--auth=trust", "-E", "UTF8")
        options = f"-h 127.0.0.1 -p {port} -k {root} -F"
        pg(str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start")
        yield f"postgresql+psycopg://neuronlab@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(root, ignore_errors=True)


def test_a_postgresql_study_shared_by_two_sweep_processes(tmp_path, postgres):
    sweep = tmp_path / "sweep"  # one folder for both: job folders carry unique trial numbers
    common = [
        *FAST,
        f"hydra.sweeper.storage={postgres}",
        "hydra.sweeper.study_name=pg",
        "hydra.sweeper.n_trials=4",
    ]
    run_together(
        [search(*common, f"hydra.sweep.dir={sweep}", f"hydra.sweeper.seed={i}") for i in range(2)], tmp_path
    )
    study = load(postgres, "pg")
    check_shared(study, [sweep], 4)
    for trial in study.trials:
        assert result(jobs_by_trial(sweep)[trial.number])["metrics"]["val/acc_best"] == pytest.approx(
            trial.value
        )
    assert not (sweep / "optuna.db").exists()


# ------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "hydra.sweeper.pruner=sometimes",
            "hydra.sweeper.pruner='sometimes' is not allowed: expected median",
        ),
        ("optimizer.lr=0.1 model.hidden_size=4 model.activation=tanh", "the search space is empty"),
    ],
)
def test_bad_sweeper_input_is_one_line_exit_2_and_creates_nothing(tmp_path, override, message):
    sweep = tmp_path / "sweep"
    args = search("trainer.max_epochs=20", f"hydra.sweep.dir={sweep}", *override.split())
    done = run_cli(*args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert not sweep.exists()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["hydra.sweeper.sampler=cmaes"],
            "hydra.sweeper.sampler='cmaes' is not allowed: expected tpe, random, grid",
        ),
        (["hydra.sweeper.n_trials=0"], "hydra.sweeper.n_trials=0 is not allowed: expected an integer > 0"),
        (["hydra.sweeper.n_jobs=-1"], "hydra.sweeper.n_jobs=-1 is not allowed: expected an integer > 0"),
        (["hydra.sweeper.storage=sqlite:///x.db"], "is set but not hydra.sweeper.study_name"),
        (
            ["hydra.sweeper.storage=sqlite:////no/such/folder/x.db", "hydra.sweeper.study_name=s"],
            "cannot be opened (unable to open database file)",
        ),
        (
            ["hydra.sweeper.storage=nosuchdb://u:secret@h/x", "hydra.sweeper.study_name=s"],
            "hydra.sweeper.storage=nosuchdb://u:***@h/x cannot be opened (Can't load plugin",
        ),
        (
            ["hydra.sweeper.sampler=grid"],
            "sampler=grid needs choice() or range() values; optimizer.lr is an interval",
        ),
    ],
)
def test_every_sweeper_setting_is_checked_before_anything_is_created(
    compose_cfg, tmp_path, overrides, message
):
    from neuronlab.errors import NeuronlabError
    from neuronlab.sweeps.study import run_search

    sweep = tmp_path / "sweep"
    cfg = compose_cfg(["hparams_search=gates_optuna", f"hydra.sweep.dir={sweep}", *overrides])
    settings = {k: v for k, v in cfg.hydra.sweeper.items() if k != "_target_"}
    with pytest.raises(NeuronlabError) as error:
        run_search(settings, cfg, launcher=None, arguments=[])
    assert message in str(error.value) and "secret" not in str(error.value)
    assert not sweep.exists()


def test_resuming_a_study_with_other_parameters_is_refused(tmp_path):
    sweep = tmp_path / "sweep"
    first = run_cli(*search(*FAST, f"hydra.sweep.dir={sweep}", "hydra.sweeper.n_trials=1"), cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    files = sorted(str(p.relative_to(sweep)) for p in sweep.rglob("*"))
    db = (sweep / "optuna.db").read_bytes()
    other = run_cli(
        *search(
            *FAST, f"hydra.sweep.dir={sweep}", "hydra.sweeper.n_trials=2", "optimizer.lr=interval(0.01,0.5)"
        ),
        cwd=tmp_path,
    )
    assert other.returncode == 2
    error = only([line for line in other.stderr.splitlines() if line.startswith("error:")])
    assert (
        "was made with other parameters (optimizer.lr: log interval(0.001, 0.3) vs interval(0.01, 0.5))"
        in error
    )
    assert sorted(str(p.relative_to(sweep)) for p in sweep.rglob("*")) == files
    assert (sweep / "optuna.db").read_bytes() == db
