"""``neuronlab-export ckpt_path=... format=onnx|torchscript``: the net as a file other programs can run.

The file returns probabilities as ``Classifier.predict_step`` does (``(N, C)`` softmax, or ``(N,)``
P(class 1) for a one-output gate net) and takes what the checkpoint's DataModule serves, as its stored facts
say (:func:`neuronlab.io.checkpoint.data_facts`), with a dynamic batch dimension. It is checked against the
checkpoint on a batch (the first test samples when the data is readable, else random inputs) and refused if
they differ by more than ``tolerance``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from torch import nn

from neuronlab.errors import NeuronlabError, first_line, run_command
from neuronlab.io.files import atomic_file, atomic_write
from neuronlab.models import probabilities
from neuronlab.show import aligned, shown

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}


class Probabilities(nn.Module):
    """The net followed by :func:`neuronlab.models.probabilities`: what a user of the file wants."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return probabilities(self.net(x))


def check_batch(
    checkpoint: dict[str, Any], shape: tuple[int, ...], size: int, data_dir: str | None, ckpt_path: Path
) -> tuple[torch.Tensor, str]:
    """The first ``size`` test samples of the checkpoint's data, or random inputs of ``shape``."""
    from neuronlab.io.checkpoint import datamodule_from_checkpoint

    # exporting never downloads a dataset (the description was checked by data_facts already)
    datamodule, name = datamodule_from_checkpoint(checkpoint, ckpt_path, data_dir, download=False)
    try:
        datamodule.setup("test")
        x = datamodule.splits["test"][0][:size]
        return x, f"{len(x)} test samples of {name}"
    except Exception as err:  # missing or moved data: random inputs still check the file
        reason = first_line(err)
    x = torch.randn((size, *shape), generator=torch.Generator().manual_seed(0))
    return x, f"{size} random inputs (its data is not readable: {reason})"


def write_model(
    model: nn.Module, x: torch.Tensor, path: Path, fmt: str
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Write ``model`` as TorchScript (traced) or ONNX (one file, dynamic batch), whole or not at all
    through :mod:`neuronlab.io.files`; returns the file read back, as a function of a batch."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit's deprecation notes, the tracer's and exporter's notes
        if fmt == "torchscript":
            with atomic_file(path) as handle:
                torch.jit.save(torch.jit.trace(model, x), handle)
            return torch.jit.load(str(path))
        try:
            import onnxruntime
        except ImportError:
            raise NeuronlabError(
                "format=onnx needs onnx, onnxscript and onnxruntime: pip install 'neuronlab[export]'"
            ) from None
        program = torch.onnx.export(
            model,
            (x,),
            None,  # kept in memory: the one writer below writes its bytes
            input_names=["input"],
            output_names=["probabilities"],
            dynamic_shapes={"x": {0: torch.export.Dim("batch")}},
            external_data=False,  # the weights inside the .onnx file: one file to hand over
            verbose=False,
        )
    atomic_write(path, program.model_proto.SerializeToString())
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda batch: torch.from_numpy(session.run(None, {"input": batch.numpy()})[0])


def export(cfg: DictConfig) -> float:
    """Write the file, check it against the checkpoint, print a summary; returns the max abs difference."""
    from neuronlab.io.checkpoint import data_facts, load_classifier, resolve_checkpoint
    from neuronlab.run.validate import EXPORT_RULES, validate

    fmt = str(cfg.format)
    if fmt not in FORMATS:
        raise NeuronlabError(f"format={fmt} is not known; allowed: {', '.join(FORMATS)}")
    validate(cfg, EXPORT_RULES)
    tolerance = float(cfg.tolerance)
    ckpt_path = resolve_checkpoint(cfg.ckpt_path)
    task, checkpoint = load_classifier(ckpt_path)
    facts = data_facts(checkpoint, ckpt_path)  # what the net takes: points or images, their shape
    model = Probabilities(task.net).eval()
    path = Path(cfg.output) if cfg.get("output") else ckpt_path.with_suffix(FORMATS[fmt])
    if path.exists() and path.samefile(ckpt_path):  # the same file by any name: a link, a hard link, ..
        raise NeuronlabError(
            f"output={path} is the checkpoint being exported ({ckpt_path}): writing it would destroy the "
            f"checkpoint; choose another output=... (e.g. output={ckpt_path.with_suffix('')}-export"
            f"{FORMATS[fmt]})"
        )
    if path.exists() and not path.is_file():
        kind = "a folder" if path.is_dir() else "not a plain file"
        raise NeuronlabError(f"output={path} is {kind}: name a file, e.g. output=model{FORMATS[fmt]}")
    x, described = check_batch(
        checkpoint, facts.input_shape, int(cfg.batch_size), cfg.get("data_dir"), ckpt_path
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        run = write_model(model, x, path, fmt)
    except OSError as err:
        raise NeuronlabError(
            f"cannot write output={path} ({err.strerror or err}): choose another output=..."
        ) from None
    with torch.no_grad():
        # the whole batch, and one sample alone: the batch dimension really is dynamic
        diff = max(float((run(b) - model(b)).abs().max()) for b in (x, x[:1]))

    inputs = f"float32 ({', '.join(['batch', *map(str, facts.input_shape)])}) {facts.kind}"
    if facts.kind == "images":
        inputs += f", normalised: (pixel / 255 - {facts.mean}) / {facts.std}"
    binary = int(task.net.output_size) == 1
    rows = [
        ("checkpoint", ckpt_path),
        ("file", f"{path} ({path.stat().st_size / 1e6:.2f} MB)"),
        ("input", inputs),
        ("output", "probabilities " + ("[batch] P(class 1)" if binary else "[batch, classes] softmax")),
        ("classes", ", ".join(facts.classes)),  # names read from the checkpoint
        ("checked on", described),
        ("max abs difference", f"{diff:.3g} (tolerance {tolerance:g})"),
    ]
    print(aligned(f"neuronlab export ({fmt})", [(label, shown(value)) for label, value in rows]), flush=True)
    if not diff <= tolerance:
        raise NeuronlabError(
            f"{path} gives outputs that differ from the checkpoint by {diff:.3g} > tolerance={tolerance:g}: "
            "the file is kept for inspection; do not use it (or raise tolerance=... if that is expected)"
        )
    return diff


def main() -> None:
    """Entry point of ``neuronlab-export`` and ``python -m neuronlab.export``."""
    from neuronlab.run.preflight import checkpoint_command

    checkpoint_command("export", lambda cfg: run_command(lambda: export(cfg)))


if __name__ == "__main__":
    main()
