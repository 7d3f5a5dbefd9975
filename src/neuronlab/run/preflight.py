"""The checks before Hydra starts, shared by ``neuronlab-train`` and ``neuronlab.train([...])``; imports
nothing heavy, so that a bad command line is answered before torch is imported."""

from __future__ import annotations

import os
import shlex
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import hydra

from neuronlab.config import CONF_DIR
from neuronlab.errors import ConfigError, NeuronlabError, run_hydra_command
from neuronlab.run import quiet
from neuronlab.run.paths import hydra_value, override_key, typed_value
from neuronlab.run.resume import resume_argv

# Hydra's flags that only show something (help, tab completion, the config) and run nothing
SHOW_ONLY = {"-h", "--help", "--hydra-help", "-sc", "--shell-completion", "-c", "--cfg", "-i", "--info"}
# Hydra's flags followed by a value (--info's is optional: one of its topics)
_VALUED = {"-c", "--cfg", "-p", "--package", "-cp", "--config-path", "-cn", "--config-name", "-cd"}
_VALUED |= {"--config-dir", "--experimental-rerun"}
_INFO_TOPICS = {"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"}
_SHOWS_ONE_RUN = SHOW_ONLY - {"-h", "--help", "--hydra-help"}


def prepare(argv: list[str]) -> list[str]:
    """The command line to compose, checked, with ``resume=<run>`` turned into that run's overrides, folder
    and ``last.ckpt``; raises :class:`~neuronlab.run.resume.AlreadyComplete` when nothing is left."""
    args = set(argv[1:])
    if not SHOW_ONLY & args:  # --help, completion, --cfg: nothing is written
        check_outputs_writable(argv)
        check_search_mode(argv)
    elif {"-m", "--multirun"} & args and _SHOWS_ONE_RUN & args:  # Hydra: "Only one of --run, --multirun..."
        shown = sorted(_SHOWS_ONE_RUN & args)[0]
        raise ConfigError(
            f"{shown} shows one run's config and -m runs a sweep, and Hydra does one at a time: drop -m "
            "and give one value per swept key to see that job's config"
        )
    resumed = resume_argv(argv)
    return quote_paths(resumed if resumed is argv else flags_first(resumed))


def quote_paths(argv: list[str]) -> list[str]:
    """``ckpt_path=<an existing file or folder>`` as Hydra reads it unchanged (every command calls this):
    a sweep job's folder name holds ``=`` and ``,``, which Hydra would take for a sweep."""
    quoted = [argv[0]]
    for arg in argv[1:]:
        key, sep, value = arg.partition("=")
        if sep and key == "ckpt_path" and value[:1] not in ("'", '"') and Path(value).expanduser().exists():
            arg = f"{key}={hydra_value(value)}"
        quoted.append(arg)
    return quoted


def checkpoint_command(config_name: str, command: Callable) -> None:
    """The entry point of ``neuronlab-eval``, ``-predict`` and ``-export``: ``ckpt_path`` taken as typed,
    library noise quiet, Hydra's own errors (an unknown option) one ``error:`` line and exit 2 as ours."""
    sys.argv = quote_paths(sys.argv)
    quiet.install()
    run_hydra_command(hydra.main(version_base="1.3", config_path=CONF_DIR, config_name=config_name)(command))


def flags_first(argv: list[str]) -> list[str]:
    """Hydra's flags (with their values) before every override: Hydra reads the overrides as one list,
    which a resume's added overrides after ``--cfg job`` must not split."""
    flags, overrides = [], []
    args = iter(argv[1:])
    for arg in args:
        if not arg.startswith("-"):
            overrides.append(arg)
            continue
        flags.append(arg)
        if arg in _VALUED or arg in ("-i", "--info"):
            value = next(args, None)
            if value is not None and (arg in _VALUED or value in _INFO_TOPICS):
                flags.append(value)
            elif value is not None:
                overrides.append(value)
    return [argv[0], *flags, *overrides]


def check_outputs_writable(argv: list[str]) -> None:
    """Fail before anything starts if the outputs root cannot be written (read-only, full, not a folder)."""
    root = os.environ.get("NEURONLAB_OUTPUT_ROOT", "outputs")
    for arg in argv[1:]:
        if arg.startswith("paths.root_dir="):
            root = typed_value(arg)  # as Hydra reads it: a quoted path without its quotes
    try:
        Path(root).mkdir(parents=True, exist_ok=True)
        # no name (or an unpredictable one, created exclusively): never through a planted link
        with tempfile.TemporaryFile(dir=root) as probe:
            probe.write(b"x" * 4096)
            probe.flush()
    except OSError as err:
        reason = "a file, not a folder" if Path(root).is_file() else err.strerror
        raise NeuronlabError(
            f"cannot write to the outputs folder {Path(root).resolve()} ({reason}): free some space, "
            "fix its permissions, or choose another one with paths.root_dir=... or NEURONLAB_OUTPUT_ROOT"
        ) from None


def check_search_mode(argv: list[str]) -> None:
    """``hparams_search=...`` is a search over many runs: without ``-m`` Hydra would run one plain job."""
    args = argv[1:]
    if {"-m", "--multirun"} & set(args) or "hydra.mode=MULTIRUN" in args:
        return
    for arg in args:
        key, _, value = arg.partition("=")
        if override_key(key) == "hparams_search" and value not in ("", "null"):
            raise ConfigError(
                f"{arg} is a search over many runs and needs -m: neuronlab-train -m {shlex.quote(arg)} ..."
            )
