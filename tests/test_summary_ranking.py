"""The sweep summary's ranking and its being kept current, checked through its outputs only
(``summary.csv``, ``summary.md``), whatever the code behind them."""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from neuronlab.summary import main
from tests.conftest import only


def job(sweep: Path, num: int, metrics: dict[str, float], status: str = "completed") -> None:
    """A job folder as Hydra and neuronlab-train leave it."""
    folder = sweep / f"{num}_seed={num}"
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([f"seed={num}"]))
    (folder / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"optimized_metric": "val/acc_best"}))
    (folder / "result.json").write_text(json.dumps({"status": status, "metrics": metrics, "wall_time": 1.0}))


def ranking(sweep: Path, capsys) -> list[tuple[str, str]]:
    """(rank, job) of each row of summary.csv, as ``neuronlab-summary`` writes it."""
    main([str(sweep)])
    capsys.readouterr()
    with open(sweep / "summary.csv") as handle:
        return [(row["rank"], row["job"]) for row in csv.DictReader(handle)]


def test_equal_metrics_rank_the_lower_validation_loss_first(tmp_path, capsys):
    """Easy data (XOR) ends many jobs at 100 %: the lower val/loss decides the best row."""
    sweep = tmp_path / "sweep"
    job(sweep, 0, {"val/acc_best": 1.0, "val/loss": math.nan})  # a NaN loss: as if none was recorded
    job(sweep, 1, {"val/acc_best": 1.0, "val/loss": 0.30})
    job(sweep, 2, {"val/acc_best": 1.0, "val/loss": 0.10})
    job(sweep, 3, {"val/acc_best": 1.0})  # no loss recorded: after those with one
    job(sweep, 4, {"val/acc_best": 0.9, "val/loss": 0.01})  # the metric comes before the tie-break
    job(sweep, 5, {"val/acc_best": 1.0, "val/loss": 0.05}, status="failed")  # failed: last, no rank
    expected = [("1", "2"), ("2", "1"), ("3", "0"), ("4", "3"), ("5", "4"), ("", "5")]
    assert ranking(sweep, capsys) == expected
    markdown = (sweep / "summary.md").read_text()
    assert "Best: `2_seed=2`" in markdown and "ranked by val/acc_best (higher is better)" in markdown


def test_jobs_without_the_metric_or_with_an_unknown_status_rank_last(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    job(sweep, 0, {"val/loss": 0.01})  # completed, but the metric is missing
    job(sweep, 1, {"val/acc_best": 0.5, "val/loss": 0.9})
    job(sweep, 2, {"val/acc_best": 0.9}, status="failed")
    job(sweep, 3, {"val/acc_best": 1.0}, status="no such status")  # a result.json from elsewhere
    assert [j for _, j in ranking(sweep, capsys)] == ["1", "0", "2", "3"]


def test_a_sweep_of_one_job(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    job(sweep, 0, {"val/acc_best": 0.5})
    assert ranking(sweep, capsys) == [("1", "0")]
    assert "Same in every job: `seed=0`" in (sweep / "summary.md").read_text()


def test_a_killed_sweep_keeps_the_summary_of_every_finished_job(tmp_path, capsys):
    """The summary is rewritten after each job: a sweep killed (SIGKILL, no exit handler runs) during its
    third job leaves a summary of the first two, and neuronlab-summary adds the one cut short."""
    env = {**os.environ, "NEURONLAB_OUTPUT_ROOT": str(tmp_path / "outputs"), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "neuronlab.train", "-m", "model.activation=relu,tanh,sigmoid"),
            *("trainer.max_epochs=100", "callbacks.early_stopping=null", "logger=none"),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 240
        while not list((tmp_path / "outputs").glob("*/multiruns/*/2_*/.hydra/overrides.yaml")):
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.time() < deadline, "the third job never started"
            time.sleep(0.02)
        time.sleep(0.2)  # the job's files are written whole
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    sweep = only(list((tmp_path / "outputs").glob("*/multiruns/*")))
    with open(sweep / "summary.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted((r["job"], r["status"]) for r in rows) == [("0", "completed"), ("1", "completed")]
    assert not (sweep / "2_model.activation=sigmoid" / "result.json").exists()  # killed before its end

    rows = ranking(sweep, capsys)
    assert sorted(rows) == [("", "2"), ("1", rows[0][1]), ("2", rows[1][1])]
    with open(sweep / "summary.csv") as handle:
        assert {r["job"]: r["status"] for r in csv.DictReader(handle)}["2"] == "unfinished"
