"""The checks before Hydra starts, shared by ``neuronlab-train`` and ``neuronlab.train([...])``: the
outputs folder can be written, a search has ``-m``, and ``resume=<run folder>`` becomes that run's checked
overrides. Imports nothing heavy: a bad command line is answered before torch is imported."""

from __future__ import annotations

import os
import shlex
import tempfile
from pathlib import Path

from neuronlab.errors import ConfigError, NeuronlabError
from neuronlab.run.paths import typed_value
from neuronlab.run.resume import resume_argv

# Hydra's flags that only show something (help, tab completion, the config) and run nothing
SHOW_ONLY = {"-h", "--help", "--hydra-help", "-sc", "--shell-completion", "-c", "--cfg", "-i", "--info"}


def prepare(argv: list[str]) -> list[str]:
    """The command line to compose: checked, and with ``resume=<run>`` turned into that run's overrides,
    folder and ``last.ckpt``. Raises :class:`~neuronlab.run.resume.AlreadyComplete` when there is
    nothing to train."""
    if not SHOW_ONLY & set(argv[1:]):  # --help, completion, --cfg: nothing is written
        check_outputs_writable(argv)
        check_search_mode(argv)
    return resume_argv(argv)


def check_outputs_writable(argv: list[str]) -> None:
    """Fail before anything starts if the outputs root cannot be written (read-only, full, not a folder)."""
    root = os.environ.get("NEURONLAB_OUTPUT_ROOT", "outputs")
    for arg in argv[1:]:
        if arg.startswith("paths.root_dir="):
            root = typed_value(arg)  # as Hydra reads it: a quoted path without its quotes
    try:
        Path(root).mkdir(parents=True, exist_ok=True)
        # a file of no name (or an unpredictable one, created exclusively), gone when closed: never
        # written through a link planted in a shared outputs folder
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
        if key.lstrip("+~") == "hparams_search" and value not in ("", "null"):
            raise ConfigError(
                f"{arg} is a search over many runs and needs -m: neuronlab-train -m {shlex.quote(arg)} ..."
            )
