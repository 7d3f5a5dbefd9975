"""``neuronlab-predict ckpt_path=... inputs=...``: classify image files (MNIST family) or points (gates).

Each image is brought to MNIST's format first (:mod:`neuronlab.io.images`) and the table says what was
done. An input that cannot be read gets its own error row: exit code 1 if any input failed, 2 for a bad
checkpoint or option. ``output=<file>.csv|.json`` also writes the rows (never over the checkpoint or an
input); pictures go ``batch_size`` at a time, so a large folder streams through bounded memory.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from neuronlab.config import is_int
from neuronlab.errors import NeuronlabError, run_command
from neuronlab.run.preflight import checkpoint_command
from neuronlab.show import csv_cell, shown

if TYPE_CHECKING:
    from neuronlab.data import DataFacts

NAME_LIMIT = 4096  # a path as long as Linux allows, written whole to the output file (escaped)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".pgm", ".ppm"}


@dataclass
class Row:
    """One input and what became of it: a prediction, or the reason it failed. ``name`` is the path as
    the system gave it (a name that is not UTF-8 holds surrogates); it is printed and written escaped."""

    name: str
    prediction: str = ""
    details: str = ""
    notes: str = ""
    error: str | None = None
    top: list[tuple[int, str, float]] = field(default_factory=list)  # (class, name, probability), best first


def as_list(inputs: Any) -> list[Any]:
    """``inputs`` from the command line as a plain list (one path or one point becomes a list of one)."""
    if isinstance(inputs, ListConfig | DictConfig):
        inputs = OmegaConf.to_container(inputs)
    if inputs is None or inputs == "":
        return []
    if not isinstance(inputs, list):
        return [inputs]
    if inputs and all(isinstance(v, int | float) and not isinstance(v, bool) for v in inputs):
        return [inputs]  # inputs=[0,1]: one point
    return inputs


def expand_files(inputs: list[Any]) -> list[Path]:
    """Files as given; a folder stands for the image files directly inside it (sorted by name)."""
    files: list[Path] = []
    for item in inputs:
        path = Path(str(item)).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            files.extend(found or [path])  # an empty folder is reported as a failed input
        else:
            files.append(path)
    return files


def predict_images(task: Any, facts: DataFacts, files: list[Path], fit: str) -> list[Row]:
    """Rows for image files, classified with the dataset's class names and normalisation."""
    import torch

    from neuronlab.io.images import ImageError, load_image, prepare

    fills = facts.fills_frame  # Fashion-MNIST items fill the frame; digits sit in a 20x20 box
    rows, samples = [], []
    for path in files:
        row = Row(str(path))
        rows.append(row)
        try:
            if path.is_dir():
                raise ImageError("a folder without image files")
            prepared = prepare(load_image(path), box=28 if fills else 20, by_mass=not fills, fit=fit)
        except ImageError as err:
            row.error = str(err)
            continue
        row.notes = ", ".join(prepared.notes)
        samples.append((row, torch.from_numpy(prepared.pixels)))
    if samples:
        x = torch.stack([pixels for _, pixels in samples]).unsqueeze(1)
        with torch.no_grad():
            probs = task.predict_step((x - facts.mean) / facts.std)
        values, indices = probs.topk(min(3, len(facts.classes)))
        for (row, _), top_p, top_i in zip(samples, values.tolist(), indices.tolist(), strict=True):
            row.top = [(i, facts.classes[i], p) for p, i in zip(top_p, top_i, strict=True)]
            row.prediction = row.top[0][1]
            row.details = "  ".join(f"{name} {p:.3f}" for _, name, p in row.top)
    return rows


def predict_points(task: Any, facts: DataFacts, inputs: list[Any]) -> list[Row]:
    """Rows for points of ``facts.input_size`` numbers (``[x, y]`` for the gates): P(class 1) and the
    class (the second when P > 0.5)."""
    import torch

    size = facts.input_size
    example = ",".join(["0"] * (size - 1) + ["1"])
    rows, points = [], []
    for item in inputs:
        row = Row(str(item))
        rows.append(row)
        if (
            isinstance(item, list | tuple)
            and len(item) == size
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in item)
        ):
            if all(math.isfinite(v) for v in item):
                points.append((row, [float(v) for v in item]))
            else:
                row.error = "not a finite point: its coordinates must be numbers (no nan or inf)"
        else:
            what = "[x, y]" if size == 2 else f"of {size} numbers"
            row.error = f"expected a point {what}, e.g. inputs=[[{example}]]"
    if points:
        with torch.no_grad():
            probs = task.predict_step(torch.tensor([p for _, p in points]))
        if probs.ndim == 2:  # a two-output (softmax) net
            probs = probs[:, 1]
        no, yes = facts.classes[:2]
        for (row, point), p in zip(points, probs.tolist(), strict=True):
            row.name = "[" + ", ".join(f"{v:g}" for v in point) + "]"
            if not math.isfinite(p):  # e.g. [1e308, 1e308]: the net overflows
                row.error = "the net's output is not finite for this point (values far outside [0, 1]?)"
                continue
            row.prediction, row.details = (yes if p > 0.5 else no), f"P({yes}) = {p:.4f}"
            row.top = sorted([(1, yes, p), (0, no, 1 - p)], key=lambda t: -t[2])
    return rows


def predict_in_batches(
    task: Any, facts: DataFacts, inputs: list[Any], fit: str, batch_size: int
) -> Iterator[Row]:
    """:func:`predict_images` over ``batch_size`` files at a time (bounded memory), with a progress bar
    when there is more than one batch."""
    from rich.console import Console
    from rich.progress import Progress

    files = expand_files(inputs)
    with Progress(console=Console(stderr=True), transient=True, disable=len(files) <= batch_size) as bar:
        progress = bar.add_task("classifying", total=len(files))
        for start in range(0, len(files), batch_size):
            chunk = files[start : start + batch_size]
            yield from predict_images(task, facts, chunk, fit)
            bar.advance(progress, len(chunk))


OUTPUT_SUFFIXES = (".csv", ".json")
CSV_COLUMNS = ("input", "status", "class", "class_name", "top1", "p1", "top2", "p2", "top3", "p3")


def check_output(output: str, protected: list[Path]) -> Path:
    """The ``output=`` file, refused before any work if it would replace the checkpoint or an input,
    is a folder, has another suffix, or its folder does not exist."""
    path = Path(output).expanduser().resolve()
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise NeuronlabError(f"output={output}: expected a file name ending in .csv or .json")
    if path.is_dir() or not path.parent.is_dir():
        problem = "is a folder" if path.is_dir() else f"goes into {path.parent}, which does not exist"
        raise NeuronlabError(f"output={output} {problem}: give a file name in an existing folder")
    if any(path == p.expanduser().resolve() for p in protected):
        raise NeuronlabError(f"output={output} is the checkpoint or one of the inputs: choose another name")
    return path


def output_record(row: Row) -> dict[str, Any]:
    """One input's line in the predictions file; the name escaped, so that any name can be written."""
    best = row.top[0] if row.top and not row.error else None
    return {
        "input": shown(row.name, NAME_LIMIT),
        "status": "error" if row.error else "ok",
        "class": best[0] if best else None,
        "class_name": best[1] if best else None,
        "top": [{"class": i, "class_name": name, "p": round(p, 6)} for i, name, p in row.top],
        "preprocessing": row.notes,
        "error": row.error or "",
    }


def write_predictions(path: Path, rows: list[Row]) -> None:
    """Write the rows as CSV (top-3 spread over columns) or JSON (a list of objects), atomically."""
    from neuronlab.io.files import atomic_file

    try:
        with atomic_file(path, "w", newline="", encoding="utf-8") as out:
            if path.suffix.lower() == ".json":  # one input a line
                out.write("[\n" + ",\n".join(json.dumps(output_record(row)) for row in rows) + "\n]\n")
            else:
                writer = csv.writer(out)
                writer.writerow([*CSV_COLUMNS, "preprocessing", "error"])
                for row in rows:
                    record = output_record(row)
                    top = [v for t in record["top"] for v in (t["class_name"], t["p"])]
                    top += [""] * (6 - len(top))
                    fixed = (record["input"], record["status"], record["class"], record["class_name"])
                    cells = [*fixed, *top, record["preprocessing"], record["error"]]
                    writer.writerow([csv_cell(cell) for cell in cells])  # no cell runs as a formula
    except OSError as err:
        raise NeuronlabError(f"cannot write output={path}: {err.strerror}") from None


def print_rows(rows: list[Row], title: str, points: bool, limit: int | None = None) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    if not console.is_terminal:  # piped or captured: no terminal width to fit, keep each row on one line
        console = Console(width=max(console.width, 200))
    # every cell holds values read from a file or a name from the disk: escaped, capped, never markup
    table = Table(title=escape(shown(title)), title_justify="left")
    table.add_column("point" if points else "file", overflow="fold")
    table.add_column("class", overflow="fold")
    table.add_column("P(1)" if points else "top-3 probabilities", overflow="fold")
    if not points:
        table.add_column("preprocessing", overflow="fold")
    for row in rows[:limit]:
        name = escape(shown(row.name))  # a file called "digit[1].png" is not rich markup
        if row.error:
            cells = [name, "[red]error[/red]", f"[red]{escape(shown(row.error))}[/red]"]
        else:
            cells = [name, f"[bold]{escape(shown(row.prediction))}[/bold]", escape(shown(row.details))]
        table.add_row(*cells, *([] if points else [escape(shown(row.notes))]))
    console.print(table)
    if limit is not None and len(rows) > limit:
        console.print(f"... and {len(rows) - limit} more rows in the output file")
    failed = sum(row.error is not None for row in rows)
    if failed:
        console.print(f"[red]{failed} of {len(rows)} inputs failed[/red] (see the error rows above)")


def predict(cfg: DictConfig) -> list[Row]:
    """Load ``cfg.ckpt_path``, classify ``cfg.inputs``, print the table; returns the rows."""
    from neuronlab.io.checkpoint import data_facts, load_classifier, resolve_checkpoint
    from neuronlab.io.images import FITS

    if cfg.fit not in FITS:
        raise NeuronlabError(f"fit={cfg.fit} is not known; allowed: {', '.join(FITS)}")
    inputs = as_list(cfg.inputs)
    if not inputs:
        raise NeuronlabError(
            "inputs= is empty: pass image files or a folder (or points [[0,1],[1,1]] for gates)"
        )
    ckpt_path = resolve_checkpoint(cfg.ckpt_path)
    for key in ("batch_size", "show"):
        value = cfg.get(key)
        if not is_int(value) or value < 1:
            raise NeuronlabError(f"{key}={value} is not allowed: expected an integer > 0")
    output = cfg.get("output")
    if output:  # checked before any work: never the checkpoint or an input
        output = check_output(str(output), [ckpt_path, *(Path(str(i)) for i in inputs)])
    task, checkpoint = load_classifier(ckpt_path)
    facts = data_facts(checkpoint, ckpt_path)  # the data's own word: points or images, classes, mean/std
    points = facts.kind == "points"
    if points:
        rows = predict_points(task, facts, inputs)
    else:
        rows = list(predict_in_batches(task, facts, inputs, str(cfg.fit), cfg.batch_size))
    if output:
        write_predictions(output, rows)
    print_rows(rows, f"{facts.name} ({ckpt_path})", points, limit=cfg.show if output else None)
    if output:
        print(f"{len(rows)} rows written to {output}")
    return rows


def _command(cfg: DictConfig) -> None:
    """The command, once Hydra has composed its config: exit code 1 if any input failed."""
    if any(row.error for row in run_command(lambda: predict(cfg))):
        raise SystemExit(1)


def main() -> None:
    """Entry point of ``neuronlab-predict`` and ``python -m neuronlab.predict``."""
    checkpoint_command("predict", _command)


if __name__ == "__main__":
    main()
