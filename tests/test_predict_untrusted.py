"""``neuronlab-predict`` on a folder someone else filled: one bad picture is one error row (the others are
classified and the CSV written), every name is printed escaped and capped, and no CSV cell is a formula."""

from __future__ import annotations

import csv
import io
import os

import numpy as np
from PIL import Image

from neuronlab.predict import predict
from tests.test_predict import template, train_tiny_mnist


def test_one_bad_picture_or_name_is_one_row_and_the_csv_is_written(
    compose_cfg, mnist_dir, tmp_path, monkeypatch, capsys
):
    ckpt = train_tiny_mnist(compose_cfg, mnist_dir, tmp_path)
    capsys.readouterr()  # training's progress bars
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    Image.fromarray(template(7)).save(pictures / "seven.png")
    nan_tiff = template(3).astype(np.float32)
    nan_tiff[5, 5] = np.nan  # one pixel that is not a number
    Image.fromarray(nan_tiff, mode="F").save(pictures / "nan.tif")
    png = io.BytesIO()
    Image.fromarray(template(1)).save(png, format="PNG")
    latin1 = os.path.join(os.fsencode(pictures), b"caf\xe9\x1b[2J[red].png")  # not UTF-8, an escape
    with open(latin1, "wb") as handle:
        handle.write(png.getvalue())

    monkeypatch.chdir(tmp_path)
    cfg = compose_cfg(
        [f"ckpt_path={ckpt}", "inputs=[]", "output=predictions.csv", "batch_size=2"], config_name="predict"
    )
    cfg.inputs = ["pictures", "=1+2.png"]  # a folder, and a missing file named like a formula
    rows = predict(cfg)
    out = capsys.readouterr().out

    assert len(rows) == 4
    with open(tmp_path / "predictions.csv", newline="", encoding="utf-8") as handle:
        records = {r["input"]: r for r in csv.DictReader(handle)}
    assert records["pictures/seven.png"]["class_name"] == "7"
    assert "not numbers" in records["pictures/nan.tif"]["error"]
    named = records["pictures/caf\\udce9\\x1b[2J[red].png"]  # classified, its name escaped
    assert named["status"] == "ok" and named["class_name"] == "1"
    assert records["'=1+2.png"]["error"] == "no such file"  # neutralised, not a formula
    assert "\x1b" not in out and "caf\\udce9\\x1b[2J[red].png" in "".join(out.split()).replace("│", "")
    assert "2 of 4 inputs failed" in out and "Traceback" not in out
