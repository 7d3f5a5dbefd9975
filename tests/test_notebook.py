"""docs/lesson.ipynb, executed top to bottom in a real Jupyter kernel (nbclient) on the small data it
writes itself: every cell runs, the figures are inline, the outputs hold the metrics."""

from __future__ import annotations

import re

import pytest

from tests.conftest import REPO


def cell_text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o["output_type"] == "stream")


@pytest.mark.slow  # 50-80 s on 2 shared cores
def test_lesson_notebook_runs_in_a_real_kernel(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the notebook's work folder lands here
    notebook = nbformat.read(REPO / "docs" / "lesson.ipynb", as_version=4)
    assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code")  # shipped clean
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError on the first failing cell

    code = [c for c in notebook.cells if c.cell_type == "code"]
    figures = [o for c in code for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(figures) >= 4  # loss curve, decision boundary, digits, predictions: inline
    text = {c.source.splitlines()[0]: cell_text(c) for c in code}
    assert "XOR  accuracy 25% after 100 epochs: never learns it" in cell_text(code[1])
    assert "predictions: [0 1 1 0]" in cell_text(code[2])
    xor = next(t for s, t in text.items() if "experiment=xor" in s)
    assert "'test/acc': 1.0" in xor and "test/acc         1.0000" in xor
    mnist = next(t for s, t in text.items() if s.startswith("overrides = "))
    accuracy = float(re.search(r"'test/acc': ([0-9.]+)", mnist).group(1))
    assert accuracy > 0.6  # chance is 0.1
    again = next(t for s, t in text.items() if s.startswith("again = "))
    assert f"test/acc: {accuracy}  (training said {accuracy} )" in again
    assert list(tmp_path.glob("neuronlab-lesson-*/outputs/mnist/runs/*/checkpoints/best.ckpt"))
