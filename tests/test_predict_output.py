"""neuronlab-predict output=<file>.csv|.json: one row per input, the same as the printed table; pictures
classified in batches; the file never replaces the checkpoint or an input and is written atomically."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PIL import Image

from neuronlab.errors import run_command
from neuronlab.predict import predict
from tests.conftest import run_cli
from tests.test_predict import template, train_tiny_mnist, write_inputs


def test_predictions_file_rows_match_the_printed_table(compose_cfg, mnist_dir, tmp_path, capsys):
    ckpt = train_tiny_mnist(compose_cfg, mnist_dir, tmp_path)
    files = write_inputs(tmp_path / "pictures")
    for digit in range(10):  # 14 files in all: several batches of 4
        Image.fromarray(template(digit)).save(tmp_path / "pictures" / f"digit{digit}.png")

    done = run_cli(
        "neuronlab.predict", f"ckpt_path={ckpt}", "inputs=pictures", "output=predictions.csv", "batch_size=4",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr  # notes.png is not a picture
    with (tmp_path / "predictions.csv").open(newline="") as f:
        records = list(csv.DictReader(f))
    assert len(records) == 14 and "14 rows written to" in done.stdout
    assert list(records[0])[:6] == ["input", "status", "class", "class_name", "top1", "p1"]
    table = [line for line in done.stdout.splitlines() if "pictures/" in line]
    assert len(table) == 14
    for record, line in zip(records, table, strict=True):  # same inputs, same order, same facts
        assert record["input"] in line
        if record["status"] == "ok":
            shown = f"{record['top1']} {float(record['p1']):.3f}  {record['top2']} {float(record['p2']):.3f}"
            assert shown in line and f" {record['class_name']} " in line
        else:
            assert record["error"] in line and record["class"] == ""
    by_name = {Path(r["input"]).name: r for r in records}
    assert all(by_name[f"digit{d}.png"]["class"] == str(d) for d in range(10))
    assert by_name["seven.png"]["class_name"] == "7" and "inverted" in by_name["seven.png"]["preprocessing"]
    assert by_name["notes.png"]["status"] == "error"
    assert not list(tmp_path.glob(".predictions.csv.*"))  # the temporary file was renamed

    # in-process, JSON, one picture per batch: the same rows, the same probabilities
    out = tmp_path / "predictions.json"
    cfg = compose_cfg(
        [f"ckpt_path={ckpt}", f"inputs={tmp_path / 'pictures'}", f"output={out}", "batch_size=1"],
        config_name="predict",
    )
    rows = predict(cfg)
    capsys.readouterr()
    records_json = json.loads(out.read_text())
    assert [Path(r["input"]).name for r in records_json] == [Path(r["input"]).name for r in records]
    for row, record in zip(rows, records_json, strict=True):
        assert record["status"] == ("error" if row.error else "ok")
        if not row.error:
            assert record["class_name"] == row.prediction
            assert [t["class_name"] for t in record["top"]] == [name for _, name, _ in row.top]
            assert record["top"][0]["p"] == pytest.approx(row.top[0][2], abs=1e-6)
    assert [r["class"] for r in records_json] == [int(r["class"]) if r["class"] else None for r in records]
    assert files["seven"].is_file()


def test_predictions_file_never_replaces_the_checkpoint_or_an_input(compose_cfg, tmp_path, capsys):
    from neuronlab.train import train

    assert train(compose_cfg(["experiment=xor", "logger=none", "trainer.max_epochs=2"]))["val/acc"] >= 0
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    notes = tmp_path / "notes.csv"
    notes.write_text("mine\n")
    cases = {
        f"output={notes}": "is the checkpoint or one of the inputs",
        f"output={ckpt}": "expected a file name ending in .csv or .json",
        f"output={tmp_path / 'nowhere' / 'p.csv'}": "which does not exist",
        f"output={tmp_path}/run.csv": None,  # allowed: a new file
    }
    for override, message in cases.items():
        cfg = compose_cfg([f"ckpt_path={ckpt}", f"inputs=[{notes}]", override], config_name="predict")
        if message is None:
            run_command(lambda cfg=cfg: predict(cfg))
            continue
        with pytest.raises(SystemExit) as stopped:
            run_command(lambda cfg=cfg: predict(cfg))
        assert stopped.value.code == 2
        assert message in capsys.readouterr().err
    assert notes.read_text() == "mine\n"  # untouched
    assert (tmp_path / "run.csv").read_text().splitlines()[1].startswith(f"{notes},error,")
    cfg = compose_cfg([f"ckpt_path={ckpt}", "inputs=[[0,1]]", "batch_size=0"], config_name="predict")
    with pytest.raises(SystemExit):
        run_command(lambda: predict(cfg))
    assert "batch_size=0 is not allowed" in capsys.readouterr().err
