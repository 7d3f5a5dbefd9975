"""A crafted ``optuna.db``: a real study written by a real search, then tampered with through sqlite3.

Each tampering is refused with one ``error:`` line and exit code 2 before any trial runs (and the sweep's
summary is left as it was): a stored value never chooses a job's overrides. The untampered copy continues
as usual."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import optuna

from tests.conftest import only, run_cli
from tests.test_optuna import FAST, search


def enqueue_out_of_space(db: Path) -> None:
    study = optuna.load_study(study_name="neuronlab", storage=f"sqlite:///{db}")
    study.enqueue_trial({"optimizer.lr": 5.0, "model.hidden_size": 2})  # lr is searched in [1e-3, 0.3]


UPDATE = "UPDATE trial_params SET {} WHERE param_name = '{}'"
EVIL = {"name": "CategoricalDistribution", "attributes": {"choices": ["$(touch pwned)", 2]}}
TAMPERINGS = {  # FAST fixes model.activation: optimizer.lr and model.hidden_size are searched
    "choice index out of range": UPDATE.format("param_value = 99", "model.hidden_size"),
    "unknown distribution class": UPDATE.format(
        """distribution_json = '{"name": "EvilDistribution", "attributes": {}}'""", "optimizer.lr"
    ),
    "enqueued value outside the search": enqueue_out_of_space,
    "stored value outside the search": UPDATE.format(
        f"distribution_json = '{json.dumps(EVIL)}', param_value = 0", "model.hidden_size"
    ),
}


def test_a_tampered_study_is_refused_in_one_line_and_never_used(tmp_path):
    first = tmp_path / "first"
    done = run_cli(*search(*FAST, f"hydra.sweep.dir={first}", "hydra.sweeper.n_trials=1"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]

    for case, tamper in TAMPERINGS.items():
        sweep = tmp_path / case.replace(" ", "_")
        shutil.copytree(first, sweep)
        if callable(tamper):
            tamper(sweep / "optuna.db")
        else:
            with sqlite3.connect(sweep / "optuna.db") as db:
                assert db.execute(tamper).rowcount == 1
        before = sorted(p.name for p in sweep.iterdir())
        summary = (sweep / "summary.md").stat().st_mtime_ns
        again = run_cli(*search(*FAST, f"hydra.sweep.dir={sweep}", "hydra.sweeper.n_trials=2"), cwd=tmp_path)
        assert again.returncode == 2, (case, again.stderr[-3000:])
        error = only([line for line in again.stderr.splitlines() if line.startswith("error:")])
        assert "study 'neuronlab'" in error and "Traceback" not in again.stderr, (case, error)
        assert sorted(p.name for p in sweep.iterdir()) == before, case  # no trial ran
        assert (sweep / "summary.md").stat().st_mtime_ns == summary, case  # nor was the summary rewritten
        assert not (tmp_path / "pwned").exists()

    resumed = run_cli(*search(*FAST, f"hydra.sweep.dir={first}", "hydra.sweeper.n_trials=2"), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert (
        len(optuna.load_study(study_name="neuronlab", storage=f"sqlite:///{first / 'optuna.db'}").trials) == 2
    )
