"""User-facing errors: one clear message, a non-zero exit, no traceback wall.

``HYDRA_FULL_ERROR=1`` keeps the full traceback for those who want it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

EXIT_USER_ERROR = 2


class NeuronlabError(Exception):
    """A problem with the user's input (config, data, checkpoint): the message says what and how to fix."""


def user_message(err: BaseException) -> str | None:
    """The one-line message for errors caused by input, or ``None`` for a bug (keep its traceback)."""
    from hydra.errors import InstantiationException
    from omegaconf.errors import MissingMandatoryValue

    # data errors only exist once their modules were imported: never import torch/Lightning just to ask
    known = (("neuronlab.data.idx", "IDXError"), ("neuronlab.data.mnist", "DataNotFoundError"))
    data_errors = tuple(getattr(sys.modules[m], name) for m, name in known if m in sys.modules)
    if isinstance(err, InstantiationException) and err.__cause__ is not None:
        err = err.__cause__
    if isinstance(err, MissingMandatoryValue):
        key = getattr(err, "full_key", None) or "a required value"
        return f"{key} is required: pass {key}=... on the command line"
    if isinstance(err, (NeuronlabError, FloatingPointError, *data_errors)):
        return str(err)
    if isinstance(err, ValueError) and str(err).startswith(("model.", "data.", "optimizer.", "scheduler.")):
        return str(err)
    if isinstance(err, PermissionError | OSError) and getattr(err, "errno", None) in (13, 28, 30):
        target = getattr(err, "filename", None) or ""
        return f"cannot write {target}: {err.strerror}; free some space or choose another paths.root_dir"
    return None


def exit_on_user_error(func: Callable[[], T]) -> T:
    """Run ``func``; an input error ends the process with its message on stderr and exit code 2."""
    try:
        return func()
    except Exception as err:
        message = user_message(err)
        if message is None or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USER_ERROR) from None
