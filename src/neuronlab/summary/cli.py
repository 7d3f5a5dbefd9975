"""Writing the summary: after each job and at the end of a sweep (the Hydra callback
:class:`SweepSummary`) and on demand (``neuronlab-summary <sweep folder>``), one writer at a time."""

from __future__ import annotations

import argparse
import atexit
import fcntl
import logging
import shlex
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from neuronlab.errors import NeuronlabError, run_command
from neuronlab.io.files import atomic_file, atomic_write, open_lock_file, remove_stale_temporaries
from neuronlab.run.paths import launcher_rank
from neuronlab.show import shown
from neuronlab.summary.jobs import find_jobs
from neuronlab.summary.plot import figure
from neuronlab.summary.table import Summary, groups_csv, rows, summarize, to_csv, to_markdown
from neuronlab.sweeps.study import DB_FILE, storage_url

log = logging.getLogger(__name__)


def write_summary(sweep_dir: Path | str, final: bool = False) -> Summary:
    """Read the sweep's jobs and write ``summary.md``, ``summary.csv`` and ``summary.png`` at its root."""
    sweep_dir = Path(sweep_dir)
    find_jobs(sweep_dir)  # a clear message, before anything is written
    # one writer at a time, so the last job to finish writes a summary that includes every job
    with open_lock_file(sweep_dir / ".summary.lock") as lock:
        with suppress(OSError):  # a file system without locks
            fcntl.flock(lock, fcntl.LOCK_EX)
        remove_stale_temporaries(sweep_dir)  # every summary writer holds this lock
        summary = summarize(sweep_dir, final)
        atomic_write(sweep_dir / "summary.md", to_markdown(summary))
        atomic_write(sweep_dir / "summary.csv", to_csv(summary))
        if summary.groups:
            atomic_write(sweep_dir / "summary_groups.csv", groups_csv(summary))
        with atomic_file(sweep_dir / "summary.png") as png:
            figure(summary).savefig(png, format="png", dpi=100)
    return summary


def dashboard_commands(sweep_dir: Path | str) -> list[str]:
    """What opens a sweep in a browser, quoted for the shell: ``tensorboard --logdir <sweep>`` (every job's
    curves) and, for an Optuna search, ``optuna-dashboard sqlite:///<sweep>/optuna.db`` (the study)."""
    sweep = Path(sweep_dir).resolve()
    commands = [f"tensorboard --logdir {shlex.quote(str(sweep))}"]
    if (sweep / DB_FILE).is_file():
        commands.append(f"optuna-dashboard {shlex.quote(storage_url({}, sweep))}")
    return commands


def print_summary(summary: Summary) -> None:
    """The table in the terminal, with where the files are."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    # every cell as Text: stored strings ("[/bold]" in an error) print literally, never as Rich markup
    header, body, align = rows(summary)
    table = Table(
        title=Text(f"Sweep summary: {summary.title()}"),
        title_justify="left",
        caption=Text(f"{shown(summary.sweep_dir)}/summary.md, summary.csv, summary.png"),
        caption_justify="left",
    )
    for name, markdown in zip(header, align, strict=True):
        table.add_column(Text(name), justify="right" if markdown.endswith(":") else "left", overflow="fold")
    styles = {"completed": None, "failed": "red"}  # unfinished, interrupted: yellow
    for i, (job, row) in enumerate(zip(summary.jobs, body, strict=True)):
        best = i == 0 and job.status == "completed"
        table.add_row(*map(Text, row), style="bold green" if best else styles.get(job.status, "yellow"))
    console = Console()
    if not console.is_terminal:  # a log file: the whole table on one line per job, not folded to 80 columns
        console.width = max(
            console.width, console.measure(table, options=console.options.update_width(500)).maximum
        )
    console.print(table)
    commands = dashboard_commands(summary.sweep_dir)
    print("open in a browser:", *(f"  {command}" for command in commands), sep="\n")


class SweepSummary(Callback):
    """Hydra callback (``conf/hydra/default.yaml``) that keeps the sweep summary current.

    At the start it pins the sweep folder in the jobs' hydra overrides: each job composes its own config,
    and jobs that change ``task_name`` (``data=xor,and``) would otherwise scatter the sweep. After each job
    (wherever it ran) it rewrites the summary; at the end it writes and prints the final one. The basic
    sweeper raises on a failed job before ``on_multirun_end``, so the end also runs at interpreter exit,
    but only if a job folder changed: a sweep refused before its first job leaves the summary as it was.
    """

    _sweep_dir: Path | None = None  # set when a sweep starts

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from hydra.core.hydra_config import HydraConfig
        from omegaconf import open_dict, read_write

        HydraConfig.instance().set_config(config)  # ${hydra:...} in the sweep path: set only in jobs
        sweep_dir = str(config.hydra.sweep.dir)
        with read_write(config.hydra), open_dict(config.hydra):
            config.hydra.sweep.dir = sweep_dir
            # launchers compose each job from the master's hydra overrides: the same folder for all
            # (quoted: spaces, commas and "=" in the path are safe inside quotes)
            quoted = sweep_dir.replace("'", "\\'")
            config.hydra.overrides.hydra.append(f"hydra.sweep.dir='{quoted}'")
        self._sweep_dir = Path(sweep_dir)
        self._done, self._started = False, time.time()
        atexit.register(self._finish, at_exit=True)

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        from hydra.types import RunMode

        if config.hydra.mode != RunMode.MULTIRUN or launcher_rank() != 0:  # one writer per DDP job on SLURM
            return
        try:
            write_summary(Path(config.hydra.sweep.dir))
        except Exception as err:  # a summary must never fail the job it describes
            log.warning(f"could not write the sweep summary: {err}")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._finish()

    def _finish(self, at_exit: bool = False) -> None:
        if self._sweep_dir is None or self._done or not self._sweep_dir.is_dir():
            return
        try:  # whether a job folder changed since the start (a job ran, or a re-run skipped it)
            folders = [p for p in self._sweep_dir.iterdir() if p.is_dir()]
            a_job_ran = any(p.stat().st_mtime >= self._started - 1 for p in folders)  # 1 s: coarse clocks
        except OSError:
            a_job_ran = True
        if at_exit and not a_job_ran:  # refused before any job: nothing to summarise anew
            return
        self._done = True
        try:
            summary = write_summary(self._sweep_dir, final=True)
        except NeuronlabError:  # no job got as far as its folder
            return
        except Exception as err:
            log.warning(f"could not write the sweep summary: {err}")
            return
        print_summary(summary)


def main(argv: list[str] | None = None) -> None:
    """``neuronlab-summary <sweep folder>``: (re)write and print the summary of a sweep, finished or not."""
    parser = argparse.ArgumentParser(
        prog="neuronlab-summary",
        description="Write summary.md, summary.csv and summary.png at a sweep's root; print the table.",
    )
    parser.add_argument("sweep_dir", type=Path, help="a sweep folder: outputs/<task>/multiruns/<time>")
    args = parser.parse_args(argv)
    print_summary(run_command(lambda: write_summary(args.sweep_dir)))
