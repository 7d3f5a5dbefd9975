"""``neuronlab-summary`` on a sweep folder that someone else filled: every job file is read through the one
reader (a bad one makes its job a ``failed: unreadable`` row, at once), every stored string is printed
escaped and capped (never as a terminal escape or Rich markup), and no CSV cell is a formula."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
import yaml

from neuronlab.summary import main
from tests.test_read_show import BOMB


def job(sweep: Path, name: str, overrides: list[str], result: object | None = None) -> Path:
    folder = sweep / name
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (folder / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"optimized_metric": "val/acc_best"}))
    if result is not None:
        (folder / "result.json").write_text(result if isinstance(result, str) else json.dumps(result))
    return folder


def done(acc: float = 0.9, **extra: object) -> dict[str, object]:
    return {"status": "completed", "metrics": {"val/acc_best": acc, "epochs": 2}, "wall_time": 3.0, **extra}


def status_cells(sweep: Path) -> dict[str, str]:
    with open(sweep / "summary.csv", newline="") as handle:
        return {row["folder"]: f"{row['status']}: {row['error']}" for row in csv.DictReader(handle)}


@pytest.mark.timeout(60)  # a FIFO read by a plain open() waits for ever
def test_every_job_file_goes_through_the_one_reader(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    job(sweep, "0_good", ["seed=0"], done())
    bomb = job(sweep, "1_bomb", ["seed=1"], done())
    (bomb / ".hydra" / "overrides.yaml").write_text(BOMB)
    fifo = job(sweep, "2_fifo", ["seed=2"])
    os.mkfifo(fifo / "result.json")
    os.mkfifo(fifo / "sweep_resume.json")
    os.remove(fifo / ".hydra" / "config.yaml")
    os.mkfifo(fifo / ".hydra" / "config.yaml")
    job(
        sweep,
        "3_deep",
        ["seed=3"],
        '{"status": "completed", "metrics": ' + "[" * 100_000 + "]" * 100_000 + "}",
    )
    job(sweep, "4_nan_epochs", ["seed=4"], '{"status": "completed", "metrics": {"epochs": NaN}}')
    job(sweep, "5_endless", ["seed=5"], {**done(), "wall_time": "1e999"})
    job(sweep, "6_infinite", ["seed=6"], '{"status": "completed", "metrics": {}, "wall_time": 1e999}')
    overrides_fifo = job(sweep, "7_fifo_overrides", ["seed=7"], done())
    os.remove(overrides_fifo / ".hydra" / "overrides.yaml")
    os.mkfifo(overrides_fifo / ".hydra" / "overrides.yaml")

    main([str(sweep)])
    out = capsys.readouterr().out
    cells = status_cells(sweep)
    assert cells.pop("0_good") == "completed: "
    assert sorted(cells) == [
        "1_bomb",
        "2_fifo",
        "3_deep",
        "4_nan_epochs",
        "5_endless",
        "6_infinite",
        "7_fifo_overrides",
    ]
    for folder, cell in cells.items():
        assert cell.startswith("failed: unreadable"), (folder, cell)
    assert "aliases" in cells["1_bomb"] and "not a regular file" in cells["2_fifo"]
    assert "nested more than" in cells["3_deep"] and "not a regular file" in cells["7_fifo_overrides"]
    assert "Traceback" not in out and "failed: unreadable" in out


def test_stored_strings_print_escaped_capped_and_never_as_markup(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    job(sweep, "0_a", ["seed=0", "data.name=x\x1b[2J\nFAKE ROW", "model.note=$\\frac{1"], done())
    error = "NeuronlabError: boom [/bold] [red]not red[/red] \x1b]0;title\x07" + "y" * 10_000
    job(sweep, "1_b\x1b[31m", ["seed=1", "data.name=[bold]z"], {**done(), "status": "failed", "error": error})

    main([str(sweep)])
    out = capsys.readouterr().out
    markdown = (sweep / "summary.md").read_text()
    for text in (out, markdown):
        assert "\x1b" not in text and "\x07" not in text and "FAKE ROW\n" not in text
        assert "y" * 1000 not in text
    assert "\\x1b[2J\\nFAKE ROW" in markdown
    flat = out.replace("\n", "").replace("│", "").replace(" ", "")
    assert "boom[/bold][red]notred[/red]" in flat and "[bold]z" in flat  # literally, as stored
    assert "Best: `0_a`" in markdown


def test_summary_csvs_hold_no_formula(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    for seed in (0, 1):
        for n, lr in enumerate(('=HYPERLINK("http://x")', "@SUM(1)")):
            job(sweep, f"{2 * seed + n}_=cmd", [f"seed={seed}", f"optimizer.lr={lr}"], done(0.5 + n / 10))
    job(sweep, "4_x", ["seed=2", "optimizer.lr=+1"], {"status": "failed", "error": "-2+3"})

    main([str(sweep)])
    capsys.readouterr()
    cells = []
    for name in ("summary.csv", "summary_groups.csv"):
        with open(sweep / name, newline="") as handle:
            cells += [cell for row in csv.reader(handle) for cell in row]
    assert '\'=HYPERLINK("http://x")' in cells and "'-2+3" in cells
    assert "'2_=cmd" not in cells and "2_=cmd" in cells  # a folder name starting with a digit is no formula
    assert not [cell for cell in cells if cell.startswith(("=", "+", "-", "@"))]


def test_the_devices_column_takes_only_small_slot_lists(tmp_path, capsys):
    """environment.json's ``devices`` (a GPU sweep's slots) is a column; a tampered one reads as ``–``."""
    sweep = tmp_path / "sweep"
    recorded = {
        "0_gpu": [1],
        "1_pair": [2, 3],
        "2_text": "\x1b[2J0",
        "3_huge": list(range(100_000)),
        "4_negative": [-1],
        "5_bool": [True],
        "6_far": [10**30],
        "7_empty": [],
    }
    for n, (name, devices) in enumerate(recorded.items()):
        folder = job(sweep, name, [f"seed={n}"], done(0.9 - n / 100))
        (folder / "environment.json").write_text(json.dumps({"devices": devices}))
    job(sweep, "8_none", ["seed=8"], done(0.5))  # no environment.json: CPU job, or not written yet
    os.mkfifo(sweep / "8_none" / "environment.json")

    main([str(sweep)])
    out = capsys.readouterr().out
    with open(sweep / "summary.csv", newline="") as handle:
        rows = {row["folder"]: row for row in csv.DictReader(handle)}
    assert {folder: row["devices"] for folder, row in rows.items()} == {
        "0_gpu": "1",
        "1_pair": "2, 3",
        **{folder: "" for folder in recorded if folder not in ("0_gpu", "1_pair")},
        "8_none": "",
    }
    assert {row["status"] for row in rows.values()} == {"completed"}  # a bad record fails no job
    markdown = (sweep / "summary.md").read_text()
    assert "| devices | status |" in markdown and "| 2, 3 | completed |" in markdown
    assert "┃ devices ┃" in out and " 2, 3 │" in out and "\x1b" not in out + markdown

    # a sweep whose jobs took no slots (trainer=cpu: devices null) has the table it always had
    for folder in ("0_gpu", "1_pair"):
        (sweep / folder / "environment.json").write_text(json.dumps({"devices": None}))
    main([str(sweep)])
    out = capsys.readouterr().out
    assert "┃ devices ┃" not in out and "| devices |" not in (sweep / "summary.md").read_text()
    assert "devices" not in (sweep / "summary.csv").read_text().splitlines()[0]
