"""Where neuronlab finds its Hydra configs, whatever the working directory is."""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path

from omegaconf import OmegaConf

_PACKAGE_DIR = Path(__file__).resolve().parent


def conf_dir() -> str:
    """The ``conf/`` folder: ``$NEURONLAB_CONF_DIR``, the copy shipped in a wheel, or the repository's."""
    env = os.environ.get("NEURONLAB_CONF_DIR")
    if env:
        return str(Path(env).resolve())
    for candidate in (_PACKAGE_DIR / "conf", _PACKAGE_DIR.parents[1] / "conf"):
        if candidate.is_dir():
            return str(candidate)
    raise FileNotFoundError(
        f"neuronlab's conf/ folder was not found next to {_PACKAGE_DIR}; set NEURONLAB_CONF_DIR to it"
    )


CONF_DIR = conf_dir()


def launcher_rank() -> int:
    """This process's global rank when an outside launcher (torchrun, srun) started several; else 0."""
    if "RANK" in os.environ:
        return int(os.environ["RANK"])
    if int(os.environ.get("SLURM_NTASKS", "1")) > 1:
        return int(os.environ.get("SLURM_PROCID", "0"))
    return 0


def run_id() -> str:
    """The run folder's name: one name shared by every process of a multi-process launch.

    ``NEURONLAB_RUN_ID`` if set; under ``srun`` with several tasks the SLURM job and step; under
    ``torchrun`` its rendezvous id; otherwise the start time.
    """
    if os.environ.get("NEURONLAB_RUN_ID"):
        return os.environ["NEURONLAB_RUN_ID"]
    if int(os.environ.get("SLURM_NTASKS", "1")) > 1 and "SLURM_JOB_ID" in os.environ:
        return f"slurm-{os.environ['SLURM_JOB_ID']}.{os.environ.get('SLURM_STEP_ID', '0')}"
    elastic = os.environ.get("TORCHELASTIC_RUN_ID", "none")
    if elastic != "none" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return f"torchrun-{elastic}"
    return datetime.now().strftime("%Y-%m-%d_%H-%M-%S")


def safe_dirname(overrides: str, limit: int = 120) -> str:
    """A sweep job's folder name from its overrides: no path separators, bounded length."""
    name = re.sub(r"[/\\\s]+", "_", overrides) or "default"
    return name if len(name) <= limit else name[:limit]


def register_resolvers() -> None:
    """Resolvers the configs use; registered on import, before Hydra composes anything."""
    OmegaConf.register_new_resolver("run_id", run_id, use_cache=True, replace=True)
    OmegaConf.register_new_resolver("safe_dirname", safe_dirname, replace=True)
    # only rank 0 of a multi-process launch writes .hydra/ and the plain log file name
    OmegaConf.register_new_resolver(
        "rank_zero_only", lambda value: value if launcher_rank() == 0 else None, replace=True
    )
    OmegaConf.register_new_resolver(
        "rank_suffix", lambda: "" if launcher_rank() == 0 else f"_rank{launcher_rank()}", replace=True
    )


register_resolvers()


def hydra_quote(value: str) -> str:
    """``value`` as a single-quoted Hydra override value that Hydra and OmegaConf give back unchanged:
    paths with ``,``, ``=``, spaces, quotes, backslashes, ``${`` or non-ASCII characters included."""
    value = re.sub(r"(\\*)\$\{", lambda m: m.group(1) * 2 + "\\${", value)  # no interpolation
    value = re.sub(r"(\\*)'", lambda m: m.group(1) * 2 + "\\'", value)  # quotes, and backslashes before them
    value = re.sub(r"(\\+)$", lambda m: m.group(1) * 2, value)  # backslashes before the closing quote
    return f"'{value}'"


def hydra_value(value: str) -> str:
    """``value`` as typed on a command line: as it is where Hydra reads it unchanged, else quoted."""
    return value if re.fullmatch(r"[\w./:+-]+", value) else hydra_quote(value)
