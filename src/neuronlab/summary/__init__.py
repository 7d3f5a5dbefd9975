"""A sweep's outcome at a glance, written at its root: ``summary.md``, ``summary.csv``, ``summary.png``.

One row per job (failed, pruned, skipped or resumed and unfinished ones included), best first; seed groups
(``mean ± std (n)``) when ``seed`` varies; Optuna's parameter importances. Rebuilt from the job folders
alone, so the same code serves the Hydra callback :class:`SweepSummary` and ``neuronlab-summary``.
Data flows one way: ``jobs.py`` (job folders -> checked ``Job``) -> ``table.py`` (ranked ``Summary``,
Markdown, CSV, rows) -> ``plot.py`` (the figure) -> ``cli.py`` (locked writes, callback, command).
"""

from neuronlab.summary.cli import SweepSummary, main, write_summary
from neuronlab.summary.plot import figure
from neuronlab.summary.table import Summary, summarize

__all__ = ["Summary", "SweepSummary", "figure", "main", "summarize", "write_summary"]
