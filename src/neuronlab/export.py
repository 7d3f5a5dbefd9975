"""``neuronlab-export ckpt_path=... format=onnx|torchscript``: the net as a file other programs can run.

The exported model returns probabilities, as ``Classifier.predict_step`` does: ``(N, C)`` softmax for the
MNIST family, ``(N,)`` P(class 1) for a single-output gate net. Its input is what the DataModule serves, as
its facts stored in the checkpoint say (:func:`neuronlab.io.checkpoint.data_facts`): ``(N, 1, 28, 28)`` images
normalised as ``(pixel / 255 - mean) / std``, or ``(N, 2)`` points; the batch dimension is dynamic. The
file is checked against the checkpoint on a batch (the first test samples of the checkpoint's data when
readable, else random inputs) and refused if they differ by more than ``tolerance``.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hydra
import torch
from omegaconf import DictConfig
from torch import nn

from neuronlab.config import CONF_DIR
from neuronlab.io.files import atomic_file, atomic_write
from neuronlab.models import probabilities
from neuronlab.show import shown

if TYPE_CHECKING:
    from neuronlab.data import DataFacts

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}


class Probabilities(nn.Module):
    """The net followed by :func:`neuronlab.models.probabilities` (sigmoid for one output, else softmax):
    what a user of the exported file wants."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return probabilities(self.net(x))


def check_batch(
    checkpoint: dict[str, Any], facts: DataFacts, size: int, data_dir: str | None, ckpt_path: Path | str = ""
) -> tuple[torch.Tensor, str]:
    """The first ``size`` test samples of the checkpoint's data, or random inputs of the shape its data
    serves (``facts.input_shape``)."""
    from neuronlab.io.checkpoint import datamodule_from_checkpoint

    # exporting never downloads a dataset (the description was checked by data_facts already)
    datamodule, name = datamodule_from_checkpoint(checkpoint, ckpt_path, data_dir, download=False)
    try:
        datamodule.setup("test")
        x = datamodule.splits["test"][0][:size]
        return x, f"{len(x)} test samples of {name}"
    except Exception as err:  # missing or moved data: random inputs still check the file
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        reason = f"its data is not readable: {first}"
    generator = torch.Generator().manual_seed(0)
    x = torch.randn((size, *facts.input_shape), generator=generator)
    return x, f"{size} random inputs ({reason})"


def export_onnx(model: nn.Module, x: torch.Tensor, path: Path) -> Any:
    """ONNX (torch.export-based exporter, one file, dynamic batch), written whole or not at all through
    :func:`neuronlab.io.files.atomic_write`; returns a function running the file read back."""
    try:
        import onnxruntime
    except ImportError:
        from neuronlab.errors import NeuronlabError

        raise NeuronlabError(
            "format=onnx needs onnx, onnxscript and onnxruntime: pip install 'neuronlab[export]'"
        ) from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model,
            (x,),
            None,  # kept in memory: the model's bytes are written by the one writer below
            input_names=["input"],
            output_names=["probabilities"],
            dynamic_shapes={"x": {0: torch.export.Dim("batch")}},
            external_data=False,  # the weights inside the .onnx file: one file to hand over
            verbose=False,
        )
    atomic_write(path, program.model_proto.SerializeToString())
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda batch: torch.from_numpy(session.run(None, {"input": batch.numpy()})[0])


def export_torchscript(model: nn.Module, x: torch.Tensor, path: Path) -> Any:
    """TorchScript by tracing, written through :func:`neuronlab.io.files.atomic_file`; returns the file
    loaded back with ``torch.jit.load``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit's deprecation notes and the tracer's shape-check note
        traced = torch.jit.trace(model, x)
        with atomic_file(path) as handle:
            torch.jit.save(traced, handle)
        loaded = torch.jit.load(str(path))
    return lambda batch: loaded(batch)


def _same_file(output: Path, source: Path) -> bool:
    """Whether writing ``output`` would replace ``source``: the same path, a link to it, or a hard link."""
    if output.resolve() == source.resolve():
        return True
    try:
        return output.exists() and output.samefile(source)
    except OSError:
        return False


def export(cfg: DictConfig) -> float:
    """Write the file, check it against the checkpoint, print a summary; returns the max abs difference."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from neuronlab.errors import NeuronlabError
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
    if _same_file(path, ckpt_path):
        raise NeuronlabError(
            f"output={path} is the checkpoint being exported ({ckpt_path}): writing it would destroy the "
            f"checkpoint; choose another output=... (e.g. output={ckpt_path.with_suffix('')}-export"
            f"{FORMATS[fmt]})"
        )
    check_writable(path, FORMATS[fmt])
    x, described = check_batch(checkpoint, facts, int(cfg.batch_size), cfg.get("data_dir"), ckpt_path)
    run = export_onnx(model, x, path) if fmt == "onnx" else export_torchscript(model, x, path)
    with torch.no_grad():
        # the whole batch, and one sample alone: the batch dimension really is dynamic
        diff = max(float((run(b) - model(b)).abs().max()) for b in (x, x[:1]))

    inputs = f"float32 ({', '.join(['batch', *map(str, facts.input_shape)])}) {facts.kind}"
    if facts.kind == "images":
        inputs += f", normalised: (pixel / 255 - {facts.mean}) / {facts.std}"
    binary = int(task.net.output_size) == 1
    outputs = "probabilities " + ("[batch] P(class 1)" if binary else "[batch, classes] softmax")
    table = Table(title=f"neuronlab export ({fmt})", show_header=False, title_justify="left")
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    for label, value in (
        ("checkpoint", ckpt_path),
        ("file", f"{path} ({path.stat().st_size / 1e6:.2f} MB)"),
        ("input", inputs),
        ("output", outputs),
        ("classes", ", ".join(facts.classes)),  # names read from the checkpoint
        ("checked on", described),
        ("max abs difference", f"{diff:.3g} (tolerance {tolerance:g})"),
    ):
        table.add_row(label, Text(shown(value)))  # escaped, capped, never Rich markup
    Console(soft_wrap=True).print(table)
    if not diff <= tolerance:
        raise NeuronlabError(
            f"{path} gives outputs that differ from the checkpoint by {diff:.3g} > tolerance={tolerance:g}: "
            "the file is kept for inspection; do not use it (or raise tolerance=... if that is expected)"
        )
    return diff


def check_writable(path: Path, suffix: str) -> None:
    """Refuse, before exporting, an output that is not a plain file in a folder this process can write."""
    import tempfile

    from neuronlab.errors import NeuronlabError

    if path.exists() and not path.is_file():
        kind = "a folder" if path.is_dir() else "not a plain file"
        raise NeuronlabError(f"output={path} is {kind}: name a file, e.g. output=model{suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".probe"):
            pass
    except OSError as err:
        raise NeuronlabError(
            f"cannot write output={path} ({err.strerror}): choose another output=..."
        ) from None


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="export")
def _main(cfg: DictConfig) -> None:
    """The command, once Hydra has composed its config."""
    from neuronlab.errors import run_command
    from neuronlab.run import quiet

    quiet.install()
    run_command(lambda: export(cfg))


def main() -> None:
    """Entry point of ``neuronlab-export`` and ``python -m neuronlab.export``;
    Hydra's own errors (e.g. an unknown option) end as one ``error:`` line and exit 2, as ours do."""
    from neuronlab.errors import run_hydra_command
    from neuronlab.run.preflight import quote_paths

    sys.argv = quote_paths(sys.argv)  # ckpt_path=<a sweep job's folder>, whose name holds = and ,
    run_hydra_command(_main)


if __name__ == "__main__":
    main()
