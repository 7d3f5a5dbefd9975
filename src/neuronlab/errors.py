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
# a ValueError whose message starts with a config key is a bad value the user set (raised by constructors)
CONFIG_PREFIXES = ("model.", "data.", "optimizer.", "scheduler.", "trainer.", "callbacks.", "logger.")


class NeuronlabError(Exception):
    """A problem with the user's input (config, data, checkpoint): the message says what and how to fix."""


def user_message(err: BaseException) -> str | None:
    """The one-line message for errors caused by input, or ``None`` for a bug (keep its traceback)."""
    from hydra.errors import InstantiationException
    from omegaconf.errors import InterpolationResolutionError, MissingMandatoryValue

    from neuronlab.data.idx import IDXError
    from neuronlab.data.mnist import DataNotFoundError

    if isinstance(err, InstantiationException) and err.__cause__ is not None:
        err = err.__cause__
    if isinstance(err, MissingMandatoryValue):
        key = getattr(err, "full_key", None) or "a required value"
        return f"{key} is required: pass {key}=... on the command line"
    if isinstance(err, InterpolationResolutionError):
        first = (str(err).strip().splitlines() or [""])[0]
        return f"{getattr(err, 'full_key', None) or 'a value'} cannot be resolved: {first}"
    if isinstance(err, NeuronlabError | IDXError | DataNotFoundError | FloatingPointError):
        return str(err)
    if isinstance(err, ValueError) and str(err).startswith(CONFIG_PREFIXES):
        return str(err)
    if isinstance(err, OSError) and getattr(err, "errno", None) in (13, 28, 30):  # EACCES, ENOSPC, EROFS
        target = getattr(err, "filename", None) or "a file of the run folder"
        return f"cannot write {target}: {err.strerror}; free some space or choose another paths.root_dir"
    return None


def exit_on_user_error(func: Callable[[], T], on_error: Callable[[str], None] | None = None) -> T:
    """Run ``func``; an input error ends the process with its message on stderr and exit code 2.

    ``on_error(message)`` runs first, e.g. to record the message in the run's ``result.json``."""
    try:
        return func()
    except Exception as err:
        message = user_message(err)
        if message is None or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        if on_error is not None:
            on_error(message)
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USER_ERROR) from None
