"""The commands that open a sweep in a browser, printed under its summary table: TensorBoard for every
job's curves side by side, and Optuna's own web dashboard (``pip install "neuronlab[dashboard]"``) for a
study kept in the sweep's ``optuna.db``. Paths are quoted for the shell: the lines can be pasted as
they are."""

from __future__ import annotations

import shlex
from pathlib import Path

from neuronlab.sweeps.study import DB_FILE, storage_url


def dashboard_commands(sweep_dir: Path | str) -> list[str]:
    """``tensorboard --logdir <sweep>`` and, for an Optuna search, ``optuna-dashboard sqlite:///...``."""
    sweep = Path(sweep_dir).resolve()
    commands = [f"tensorboard --logdir {shlex.quote(str(sweep))}"]
    if (sweep / DB_FILE).is_file():
        commands.append(f"optuna-dashboard {shlex.quote(storage_url({}, sweep))}")
    return commands


def print_dashboards(sweep_dir: Path | str) -> None:
    print("\n".join(["open in a browser:", *(f"  {command}" for command in dashboard_commands(sweep_dir))]))
