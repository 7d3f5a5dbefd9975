"""The one family of user errors, and the one way every command ends on them: a user error is one
``error: ...`` line and exit code 2 (also in ``result.json``), an interrupt exits 130 or 143, a bug keeps
its traceback. Imports nothing heavy, so that every module may raise these before torch is imported."""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable
from typing import NoReturn, TypeVar

from neuronlab.show import shown

T = TypeVar("T")

EXIT_USER_ERROR = 2
EXIT_SIGNAL = {"SIGINT": 130, "SIGTERM": 143}
# the ``error:`` line's cap (its message is escaped by shown): long enough for the longest path it names
MESSAGE_LIMIT = 1000
EXIT_STDOUT_GONE = 141  # 128 + SIGPIPE, as the shell reports a tool whose reader went away (``| head -1``)


class NeuronlabError(Exception):
    """A problem with the user's input (config, data, checkpoint): the message says what and how to fix."""


class ConfigError(NeuronlabError, ValueError):
    """A config value or option that is not allowed (a ``ValueError`` too, as Python expects of a bad
    argument); the message names the key, the value and the rule."""


class DataError(NeuronlabError):
    """A data file that is missing, damaged, or not what the dataset stores."""


class CheckpointError(NeuronlabError):
    """A checkpoint or run folder that is missing, damaged, not ours, or does not fit the run."""


class ImageError(NeuronlabError, ValueError):
    """A picture that cannot be read or classified (one error row in ``neuronlab-predict``)."""


class Interrupted(KeyboardInterrupt):
    """A run stopped by ``signal`` (``"SIGINT"``/``"SIGTERM"``) after it kept what it could (Lightning
    ends a fit stopped by Ctrl-C with ``sys.exit(1)``; the run raises this instead, naming the signal)."""

    def __init__(self, signal: str) -> None:
        super().__init__(signal)
        self.signal = signal


def first_line(err: BaseException | str) -> str:
    """The first line of an error's message (or of a text); the error's type name when it says nothing."""
    text = str(err).strip()
    first = text.splitlines()[0].strip() if text else ""
    return type(err).__name__ if not first and isinstance(err, BaseException) else first


# what a file write fails with when the user's disk or permissions are the cause
_WRITE_ERRORS = (errno.EACCES, errno.ENOSPC, errno.EROFS)
# what the file system answers for a path that cannot be what it is used as
_PATH_ERRORS = (errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENAMETOOLONG)
_PATH_ERRORS += (errno.ELOOP, errno.EPERM)


def user_message(err: BaseException) -> str | None:
    """The one-line message for an error caused by input (decided by its type), or ``None`` for a bug,
    which keeps its traceback."""
    from hydra.errors import CompactHydraException, InstantiationException
    from omegaconf.errors import InterpolationResolutionError, MissingMandatoryValue

    if isinstance(err, InstantiationException) and err.__cause__ is not None:
        err = err.__cause__
    elif isinstance(err, CompactHydraException) and not isinstance(err, InstantiationException):
        return _hydra_message(err)  # an unknown option or key, an override that does not parse
    if isinstance(err, MissingMandatoryValue):
        key = getattr(err, "full_key", None) or "a required value"
        return f"{key} is required: pass {key}=... on the command line"
    if isinstance(err, InterpolationResolutionError):
        inner: BaseException | None = err
        while inner is not None and not isinstance(inner, NeuronlabError):
            inner = inner.__cause__ or inner.__context__
        if inner is not None:  # a resolver's own check (neuronlab.run.paths): its message as it is
            return str(inner)
        return f"{getattr(err, 'full_key', None) or 'a value'} cannot be resolved: {first_line(err)}"
    if isinstance(err, NeuronlabError | FloatingPointError):  # FloatingPointError: the loss diverged
        return str(err)
    if isinstance(err, OSError) and err.errno in _WRITE_ERRORS:
        target = err.filename2 or err.filename or "a file of the run folder"
        return f"cannot write {target}: {err.strerror}; free some space or choose another paths.root_dir"
    if isinstance(err, OSError) and err.errno in _PATH_ERRORS and err.filename is not None:
        return f"{err.filename2 or err.filename}: {err.strerror}"  # a path given: missing, a file, a folder
    return None


def _hydra_message(err: Exception) -> str:
    """Hydra's composition errors, which it prints over several lines, as one line."""
    from hydra.errors import MissingConfigException, OverrideParseException

    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if isinstance(err, OverrideParseException):
        return (
            f"cannot read the override {err.override!r}: {lines[0] if lines else 'not valid'} "
            "(see https://hydra.cc/docs/advanced/override_grammar/basic/)"
        )
    if isinstance(err, MissingConfigException):
        message = lines[0] if lines else "a config was not found"
        return f"{message}; choose one of: {', '.join(err.options)}" if err.options else message
    cause = err.__cause__
    if cause is not None and str(cause).strip():  # OmegaConf's reason, e.g. "Key 'foo' is not in struct"
        lines.insert(1, first_line(cause) + ".")
    return " ".join(lines)


_HYDRA_RAISES = "NEURONLAB_HYDRA_RAISES"  # marks a HYDRA_FULL_ERROR=1 that neuronlab set, not the user


def tracebacks_wanted() -> bool:
    """``HYDRA_FULL_ERROR=1``, set by the user (not by :func:`run_hydra_command` for Hydra's sake)."""
    return os.environ.get("HYDRA_FULL_ERROR") == "1" and os.environ.get(_HYDRA_RAISES) != "1"


def run_hydra_command(hydra_main: Callable[[], T]) -> T:
    """:func:`run_command` around a ``@hydra.main`` function, so that Hydra's own errors end as ours do.
    Hydra raises them only under ``HYDRA_FULL_ERROR=1``: set for the call (and the processes it starts),
    marked as neuronlab's, so that tracebacks stay only for those who asked for them."""
    saved = {name: os.environ.get(name) for name in ("HYDRA_FULL_ERROR", _HYDRA_RAISES)}
    if saved["HYDRA_FULL_ERROR"] != "1":
        os.environ.update({"HYDRA_FULL_ERROR": "1", _HYDRA_RAISES: "1"})
    try:
        return run_command(hydra_main)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def stdout_gone() -> None:
    """The reader of stdout went away (``... | head -1``): what is still printed goes nowhere, quietly
    (Python's own recipe: the standard streams are flushed again at exit)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def signal_of(err: BaseException) -> str | None:
    """``"SIGINT"``/``"SIGTERM"`` for an interrupt (Ctrl-C, Lightning's SIGTERM), else ``None``."""
    if isinstance(err, Interrupted):
        return err.signal
    if isinstance(err, KeyboardInterrupt):
        return "SIGINT"
    if type(err).__name__ == "SIGTERMException":  # Lightning's, named so that Lightning is not imported
        return "SIGTERM"
    return None


def run_command(
    func: Callable[[], T],
    record: Callable[[str, str], None] | None = None,
    on_interrupt: Callable[[str], None] | None = None,
    raise_errors: bool = False,
) -> T:
    """Run a command's body ``func`` and end it the same way for every command. ``record(status, message)``
    writes the outcome into the run's ``result.json``; ``on_interrupt(signal)`` says what was kept; with
    ``raise_errors`` (a sweep job, the notebook) a user error is raised instead of ending the process."""
    try:
        return func()
    except BrokenPipeError:  # stdout's reader went away (``--help | head -1``): end quietly, as tools do
        stdout_gone()
        raise SystemExit(EXIT_STDOUT_GONE) from None
    except BaseException as err:
        signal_name = signal_of(err)
        if signal_name:
            if record is not None:
                record("interrupted", signal_name)
            if on_interrupt is not None:
                on_interrupt(signal_name)
            else:
                print(f"\nneuronlab: stopped by {signal_name}", file=sys.stderr)
            raise SystemExit(EXIT_SIGNAL[signal_name]) from None
        message = user_message(err) if isinstance(err, Exception) else None
        if record is not None:
            bug = "" if isinstance(err, SystemExit) else f"{type(err).__name__}: "
            record("failed", message or bug + first_line(err))
        if message is None or tracebacks_wanted():
            raise  # a bug (its traceback follows), an exit, or a traceback asked for
        if raise_errors:  # a sweeper records the failed job and goes on; the message, not the stack
            raise NeuronlabError(message) from None
        _end(message)


def end_on_user_error(err: NeuronlabError) -> NoReturn:
    """End the process on a user error as :func:`run_command` does, from a Hydra callback (Hydra turns
    what they raise into warnings)."""
    if tracebacks_wanted():
        raise err
    _end(str(err))


def _end(message: str) -> NoReturn:
    """The one ``error:`` line (escaped: it may quote a stored string), exit code 2."""
    print(f"error: {shown(message, MESSAGE_LIMIT)}", file=sys.stderr)
    raise SystemExit(EXIT_USER_ERROR) from None
