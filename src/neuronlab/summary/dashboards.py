"""The commands that open a sweep in a browser, printed under its summary: TensorBoard for every job's
curves, Optuna's web dashboard for a study kept in the sweep's ``optuna.db``. Quoted for the shell."""

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
