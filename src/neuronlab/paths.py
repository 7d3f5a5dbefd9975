"""Where neuronlab finds its Hydra configs, whatever the working directory is."""

from __future__ import annotations

import os
from pathlib import Path

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
