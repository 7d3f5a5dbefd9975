"""neuronlab-export: ONNX and TorchScript files that give the checkpoint's probabilities back."""

from __future__ import annotations

import shutil

import pytest
import torch

from neuronlab.errors import run_command
from neuronlab.export import export
from neuronlab.io.checkpoint import load_classifier
from neuronlab.train import train


def test_export_mnist_to_onnx_and_torchscript_round_trips(compose_cfg, mnist_dir, tmp_path, capsys):
    train_cfg = compose_cfg(
        [
            "experiment=mnist",
            f"paths.data_dir={mnist_dir}",
            "data.val_size=100",
            "trainer.max_epochs=1",
            "logger=none",
        ]
    )
    train(train_cfg)
    ckpt = tmp_path / "run" / "checkpoints" / "best.ckpt"
    task, _ = load_classifier(ckpt)
    x = torch.randn(
        5, 1, 28, 28, generator=torch.Generator().manual_seed(1)
    )  # another batch size than the check
    expected = task.predict_step(x).detach()

    cfg = compose_cfg([f"ckpt_path={ckpt}", "format=onnx"], config_name="export")
    assert export(cfg) <= 1e-5
    out = capsys.readouterr().out
    assert "8 test samples of mnist" in out and "max abs difference" in out
    import onnxruntime

    session = onnxruntime.InferenceSession(str(ckpt.with_suffix(".onnx")), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[0] == "batch"  # dynamic batch dimension
    onnx_probs = torch.from_numpy(session.run(None, {"input": x.numpy()})[0])
    assert onnx_probs.shape == (5, 10)
    torch.testing.assert_close(onnx_probs, expected, atol=1e-5, rtol=0)

    cfg = compose_cfg([f"ckpt_path={ckpt}", "format=torchscript"], config_name="export")
    export(cfg)
    scripted = torch.jit.load(str(ckpt.with_suffix(".pt")))
    torch.testing.assert_close(scripted(x), expected, atol=1e-5, rtol=0)

    # the data moved away: the check runs on random inputs of the right shape, and says so
    shutil.rmtree(mnist_dir)
    cfg = compose_cfg(
        [f"ckpt_path={ckpt}", "format=onnx", f"output={tmp_path / 'model.onnx'}"], config_name="export"
    )
    export(cfg)
    assert (tmp_path / "model.onnx").is_file()
    assert "8 random inputs (its data is not readable" in capsys.readouterr().out


def test_export_gate_and_refuse_a_difference_above_tolerance(compose_cfg, tmp_path, capsys):
    train(compose_cfg(["experiment=xor", "trainer.max_epochs=20", "logger=none"]))
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    cfg = compose_cfg([f"ckpt_path={ckpt}", "format=torchscript"], config_name="export")
    export(cfg)
    points = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    task, _ = load_classifier(ckpt)
    probs = torch.jit.load(str(ckpt.with_suffix(".pt")))(points)
    assert probs.shape == (4,)  # P(class 1) per point, as predict_step gives
    torch.testing.assert_close(probs, task.predict_step(points).detach(), atol=1e-6, rtol=0)
    assert "4 test samples of xor" in capsys.readouterr().out

    # the file goes through the one writer: a link planted at its name is replaced, never written through;
    # the checkpoint's class names print literally (no terminal escape, no Rich markup), capped
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    (ckpt.with_suffix(".onnx")).symlink_to(victim)
    tampered = torch.load(ckpt, weights_only=True)
    tampered["GatesDataModule"]["facts"]["classes"] = ["\x1b[2J[/bold]", "y" * 10_000]
    torch.save(tampered, ckpt)
    cfg = compose_cfg([f"ckpt_path={ckpt}", "format=onnx", "tolerance=-1"], config_name="export")
    with pytest.raises(SystemExit) as exit_info:
        run_command(lambda: export(cfg))
    assert exit_info.value.code == 2
    out, err = capsys.readouterr()
    assert "differ from the checkpoint by" in err
    assert victim.read_text() == "keep" and not ckpt.with_suffix(".onnx").is_symlink()
    assert "\x1b" not in out and "\\x1b[2J[/bold]" in out and "y" * 1000 not in out


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("ckpt_path={tmp}/nowhere.ckpt", "no such checkpoint file"),
        ("ckpt_path={tmp}/empty.ckpt", "is not a readable checkpoint"),
        ("format=tflite", "format=tflite is not known; allowed: onnx, torchscript"),
    ],
)
def test_export_bad_input_is_one_clear_error(compose_cfg, tmp_path, capsys, override, message):
    (tmp_path / "empty.ckpt").write_bytes(b"")
    overrides = [f"ckpt_path={tmp_path}/empty.ckpt", override.format(tmp=tmp_path)]
    cfg = compose_cfg(overrides, config_name="export")
    with pytest.raises(SystemExit) as exit_info:
        run_command(lambda: export(cfg))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1
