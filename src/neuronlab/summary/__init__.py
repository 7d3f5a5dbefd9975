"""The summary of a sweep: one row per job, best first, written at the sweep's root.

TensorBoard shows each job's curves; a sweep also needs its outcome at a glance, failed and unfinished
jobs included. ``summary.md`` (a Markdown table), ``summary.csv`` (raw values) and ``summary.png`` (the
metric against each swept value) are rebuilt from the job folders alone (``.hydra/overrides.yaml`` and
``result.json``), so the same code serves the Hydra callback (after every job and at the end of the
sweep) and ``neuronlab-summary <sweep folder>`` (for a sweep in progress or interrupted).

It also shows what a sweep learnt and survived: Optuna's pruned trials, the jobs a re-run skipped or
resumed (:mod:`neuronlab.sweeps.resume`), the seed groups (``mean ± std (n)``, ``summary_groups.csv``,
error bars) when ``seed`` varies, and the parameter importances the Optuna sweeper wrote.

One module per step, data flowing one way::

    jobs.py   job folders -> Job (every file untrusted, checked)
    table.py  Jobs -> Summary (ranked, seed groups) -> Markdown, CSV, terminal rows
    plot.py   Summary -> summary.png
    cli.py    write_summary (locked, atomic writes), the Hydra callback SweepSummary, neuronlab-summary
"""

from neuronlab.summary.cli import SweepSummary, main, print_summary, write_summary
from neuronlab.summary.jobs import Job, find_jobs, read_job
from neuronlab.summary.plot import figure
from neuronlab.summary.table import Group, Summary, summarize

__all__ = [
    "Group",
    "Job",
    "Summary",
    "SweepSummary",
    "figure",
    "find_jobs",
    "main",
    "print_summary",
    "read_job",
    "summarize",
    "write_summary",
]
