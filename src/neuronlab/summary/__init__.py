"""A sweep's outcome at a glance (``summary.md``, ``summary.csv``, ``summary.png`` at its root), rebuilt
from the job folders alone by the Hydra callback :class:`SweepSummary` and by ``neuronlab-summary``.
One way through: ``jobs.py`` (folders -> checked jobs) -> ``table.py`` (ranking, seed groups, Markdown,
CSV) -> ``plot.py`` (the figure) -> ``cli.py`` (locked writes, the callback, the command).
"""

from neuronlab.summary.cli import SweepSummary, main, write_summary
from neuronlab.summary.plot import figure
from neuronlab.summary.table import Summary, summarize

__all__ = ["Summary", "SweepSummary", "figure", "main", "summarize", "write_summary"]
