"""neuronlab-predict on image files the test writes, and on gate points, with a model trained in the test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from neuronlab.errors import run_command
from neuronlab.io.images import prepare
from neuronlab.predict import predict
from neuronlab.train import train
from tests.conftest import make_images, run_cli


def train_tiny_mnist(compose_cfg, mnist_dir: Path, tmp_path: Path) -> Path:
    cfg = compose_cfg(
        [
            "experiment=mnist",
            f"paths.data_dir={mnist_dir}",
            "data.val_size=100",
            "trainer.max_epochs=2",
            "logger=none",
        ]
    )
    assert train(cfg)["test/acc"] > 0.9
    return tmp_path / "run" / "checkpoints" / "best.ckpt"


def template(digit: int) -> np.ndarray:
    """A clearly drawn sample of the tiny dataset's class ``digit``: white square on dark noise, 28x28."""
    images, labels = make_images(50, seed=7)
    return images[int(np.flatnonzero(labels == digit)[0])]


def write_inputs(folder: Path) -> dict[str, Path]:
    folder.mkdir()
    files = {
        # 28x28, dark ink on light paper, saved as RGB: greyscale + invert give the training format back
        "seven": folder / "seven.png",
        # 84x84, orange ink on black, JPEG: resized as a whole with fit=stretch
        "three": folder / "three.jpg",
        # a hand-drawn stroke on white paper, 300x200: MNIST's box-and-centre recipe
        "drawn": folder / "drawn.png",
        "text": folder / "notes.png",  # an image suffix, text inside
    }
    Image.fromarray(255 - template(7)).convert("RGB").save(files["seven"])
    ink = template(3)
    orange = np.stack([ink, ink // 2, np.zeros_like(ink)], axis=-1)
    Image.fromarray(orange).resize((84, 84), Image.Resampling.NEAREST).save(files["three"], quality=95)
    drawing = Image.new("RGB", (300, 200), "white")
    ImageDraw.Draw(drawing).line([(120, 40), (180, 40), (140, 170)], fill=(20, 20, 160), width=14)
    drawing.save(files["drawn"])
    files["text"].write_text("not an image")
    return files


def test_predict_classifies_image_files_and_reports_bad_ones(compose_cfg, mnist_dir, tmp_path, capsys):
    ckpt = train_tiny_mnist(compose_cfg, mnist_dir, tmp_path)
    files = write_inputs(tmp_path / "pictures")
    missing = tmp_path / "pictures" / "missing.png"
    inputs = [str(files["seven"]), str(files["drawn"]), str(files["text"]), str(missing)]
    cfg = compose_cfg([f"ckpt_path={ckpt}", "inputs=[]"], config_name="predict")
    cfg.inputs = inputs
    rows = {Path(r.name).name: r for r in predict(cfg)}
    assert rows["seven.png"].error is None
    assert rows["seven.png"].prediction == "7"
    assert rows["seven.png"].details.startswith("7 ")  # top-3, the winner first
    assert "inverted" in rows["seven.png"].notes and "RGB -> grey" in rows["seven.png"].notes
    assert rows["drawn.png"].error is None and rows["drawn.png"].prediction in list("0123456789")
    assert rows["drawn.png"].details.startswith(f"{rows['drawn.png'].prediction} ")
    assert "inverted" in rows["drawn.png"].notes and "resized 300x200 -> 28x28" in rows["drawn.png"].notes
    assert "not an image" in rows["notes.png"].error
    assert rows["missing.png"].error == "no such file"
    out = capsys.readouterr().out
    assert "2 of 4 inputs failed" in out and "seven.png" in out and "top-3" in out

    cfg.inputs, cfg.fit = [str(files["three"])], "stretch"
    (three,) = predict(cfg)
    assert three.prediction == "3", three
    assert "resized 84x84 -> 28x28" in three.notes and "inverted" not in three.notes

    # the command line: a folder stands for its image files; a failed file makes the exit code 1
    result = run_cli(
        "neuronlab.predict",
        f"ckpt_path={ckpt.parent.parent}",
        f"inputs={files['seven'].parent}",
        cwd=tmp_path,
    )
    assert result.returncode == 1, result.stderr
    assert "seven.png" in result.stdout and "1 of 4 inputs failed" in result.stdout, result.stdout
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "outputs").exists()  # predict writes nothing


def test_prepare_follows_mnist_recipe_for_a_large_dark_on_light_picture():
    picture = np.full((120, 240), 250, np.uint8)  # light paper, a dark 20x60 bar left of centre
    picture[30:90, 40:60] = 10
    prepared = prepare(Image.fromarray(picture))
    pixels = prepared.pixels
    assert pixels.shape == (28, 28) and pixels.max() == 1.0 and pixels[0].max() == 0  # white ink on black
    rows, cols = np.nonzero(pixels > 0.5)
    assert rows.max() - rows.min() + 1 in (19, 20, 21)  # the long side fits the 20-pixel box
    assert cols.max() - cols.min() + 1 in (6, 7, 8)  # aspect ratio kept: 60x20 -> 20x7
    ys, xs = np.indices(pixels.shape)
    assert (
        abs((ys * pixels).sum() / pixels.sum() - 13.5) < 1
        and abs((xs * pixels).sum() / pixels.sum() - 13.5) < 1
    )
    assert prepared.notes[0] == "inverted (light background)"


def test_predict_gate_points(compose_cfg, tmp_path, capsys):
    cfg = compose_cfg(["experiment=xor", "logger=none"])
    assert train(cfg)["test/acc"] == 1.0
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    points = "inputs=[[0,0],[0,1],[1,0],[1,1],oops,[inf,0],[0,-inf],[nan,1]]"
    cfg = compose_cfg([f"ckpt_path={ckpt}", points], config_name="predict")
    rows = predict(cfg)
    assert [r.prediction for r in rows[:4]] == ["0", "1", "1", "0"]
    assert [r.name for r in rows[:4]] == ["[0, 0]", "[0, 1]", "[1, 0]", "[1, 1]"]
    assert all(r.details.startswith("P(1) = ") for r in rows[:4])
    assert rows[4].error and "expected a point" in rows[4].error
    assert all("not a finite point" in (r.error or "") and not r.prediction for r in rows[5:]), rows[5:]
    out = capsys.readouterr().out
    assert "P(1) = " in out and "4 of 8 inputs failed" in out

    cfg = compose_cfg([f"ckpt_path={ckpt}", "inputs=[1,0]"], config_name="predict")
    (row,) = predict(cfg)  # one point on its own
    assert row.prediction == "1" and row.error is None


def test_predict_with_a_bad_checkpoint_is_one_clear_error(compose_cfg, tmp_path, capsys):
    picture = tmp_path / "seven.png"
    Image.fromarray(template(7)).save(picture)
    result = run_cli(
        "neuronlab.predict", f"ckpt_path={tmp_path / 'nowhere.ckpt'}", f"inputs={picture}", cwd=tmp_path
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: ckpt_path=") and "no such checkpoint" in result.stderr, (
        result.stderr
    )
    assert "Traceback" not in result.stderr

    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    cfg = compose_cfg([f"ckpt_path={empty}", f"inputs={picture}"], config_name="predict")
    with pytest.raises(SystemExit) as exit_info:
        run_command(lambda: predict(cfg))
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith(f"error: ckpt_path={empty} is not a readable checkpoint")
