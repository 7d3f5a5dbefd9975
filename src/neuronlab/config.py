"""Ground floor: where neuronlab's Hydra configs are, how a run folder is stamped, the one integer check.
Imports nothing of the package and nothing heavy: the NumPy lesson and the entry points use it first."""

from __future__ import annotations

import os
import secrets
from datetime import datetime
from pathlib import Path
from typing import Any

_PACKAGE_DIR = Path(__file__).resolve().parent  # src/neuronlab (or site-packages/neuronlab in a wheel)


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


def unique_stamp() -> str:
    """The start time to the second, then a random suffix: folders sort by time, and two runs started
    in the same instant (two terminals, a job array, another machine) never get the same name."""
    return f"{datetime.now():%Y-%m-%d_%H-%M-%S}_{secrets.token_hex(3)}"


def register_resolvers() -> None:
    """``${unique_stamp:}``, which every command's run folder uses, the NumPy lesson's too."""
    from omegaconf import OmegaConf

    OmegaConf.register_new_resolver("unique_stamp", unique_stamp, use_cache=True, replace=True)


def is_int(value: Any) -> bool:
    """An integer, and not a bool (``True`` is an ``int`` to Python, never a count to us)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """An int or a float, and not a bool (``nan`` and ``inf`` included: callers decide on those)."""
    return isinstance(value, int | float) and not isinstance(value, bool)
