"""Naming and guarding run folders: the run id, sweep job folders, the one-writer lock, quoting for Hydra."""

from __future__ import annotations

import errno
import os
import re
import shlex
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from omegaconf import OmegaConf

from neuronlab import config
from neuronlab.errors import NeuronlabError
from neuronlab.io.files import TEMPORARY_SUFFIX, open_lock_file, remove_stale_temporaries
from neuronlab.run.folder import CHECKPOINTS, RECORD, RESULT, WRITTEN, inside, read_result_or_none
from neuronlab.show import shown


def launcher_rank() -> int:
    """This process's global rank when an outside launcher (torchrun, srun) started several; else 0."""
    if "RANK" in os.environ:
        return int(os.environ["RANK"])
    if int(os.environ.get("SLURM_NTASKS", "1")) > 1:
        return int(os.environ.get("SLURM_PROCID", "0"))
    return 0


def is_main_process() -> bool:
    """Rank 0 of an outside launcher, and not a DDP worker Lightning started (those share its folder)."""
    return launcher_rank() == 0 and int(os.environ.get("LOCAL_RANK", "0")) == 0


def run_id() -> str:
    """The run folder's name, shared by every process of a launch: ``NEURONLAB_RUN_ID``, srun's job and
    step, torchrun's rendezvous id, else a stamp (Lightning's DDP workers are given their parent's)."""
    given = os.environ.get("NEURONLAB_RUN_ID")
    if given:  # a folder inside the outputs: a plain name, never a path
        if not re.fullmatch(r"[\w.+-]+", given) or set(given) == {"."}:
            raise NeuronlabError(
                f"NEURONLAB_RUN_ID={given!r} is not a plain folder name: use letters, digits and . _ + - "
                "only (no / and not . or ..), e.g. NEURONLAB_RUN_ID=exp-1"
            )
        return given
    if int(os.environ.get("SLURM_NTASKS", "1")) > 1 and "SLURM_JOB_ID" in os.environ:
        return f"slurm-{os.environ['SLURM_JOB_ID']}.{os.environ.get('SLURM_STEP_ID', '0')}"
    elastic = os.environ.get("TORCHELASTIC_RUN_ID", "none")
    if elastic != "none" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return f"torchrun-{elastic}"
    return config.unique_stamp()


def holds_run(folder: Path) -> bool:
    return any((folder / name).exists() for name in (RECORD, CHECKPOINTS, RESULT))


def new_run_dir(folder: str) -> str:
    """``hydra.run.dir``'s resolver: refused when the folder already holds a run (the same
    ``NEURONLAB_RUN_ID`` twice), whose files and records a second run would mix with its own."""
    if launcher_rank() == 0 and holds_run(Path(folder)):
        raise NeuronlabError(
            f"{folder} already holds a run (NEURONLAB_RUN_ID={os.environ.get('NEURONLAB_RUN_ID', '')}): "
            f"continue it with neuronlab-train resume={hydra_value(folder)}, or choose another run id"
        )
    return folder


def check_fresh_folder(args: Sequence[str]) -> None:
    """A new run in an explicit ``hydra.run.dir`` that already holds a run would mix its files with that
    run's: refused, unless it continues a checkpoint of that folder."""
    folder = next((Path(typed_value(a)) for a in args if a.startswith("hydra.run.dir=")), None)
    if folder is None or not is_main_process() or not holds_run(folder):
        return
    ckpt = next((typed_value(a) for a in args if a.startswith("ckpt_path=")), None)
    if ckpt and inside(folder, ckpt):
        return
    raise NeuronlabError(
        f"hydra.run.dir={folder} already holds a run: continue it with "
        f"neuronlab-train {shlex.quote(f'resume={folder}')}, or choose another folder for a new run"
    )


def safe_dirname(overrides: str, limit: int = 120) -> str:
    """A sweep job's folder name from its overrides: no path separators, bounded length."""
    name = re.sub(r"[/\\\s]+", "_", overrides) or "default"
    return name[:limit]


def check_no_links(run: Path, command: str | None = None) -> None:
    """Refuse a run folder that is, or in which a file or folder that a run writes is, a symbolic link."""
    written = [run / name for name in WRITTEN]
    places = [run, *written, *run.glob("*.log")]
    for folder in written:
        if folder.is_dir() and not folder.is_symlink():
            places += folder.iterdir()
    for place in places:
        # a temporary name is never written through (io/files) and is removed once the folder is locked
        if place.is_symlink() and not (place.name.startswith(".") and place.name.endswith(TEMPORARY_SUFFIX)):
            raise NeuronlabError(
                f"{command or f'resume={run}'}: {place} is a symbolic link: a run folder's files must be "
                "inside it (copy the folder without links, e.g. cp -rL, and use the copy)"
            )


def override_key(override: str) -> str:
    """The key a ``key=value`` override sets (``+key=``, ``~key`` included)."""
    return override.partition("=")[0].lstrip("+~")


def same_job(recorded: object, overrides: list[str]) -> bool:
    """Whether a job folder's recorded overrides (untrusted) are this job's: the same set, in any order;
    ``ckpt_path`` (where a grid job resumed alone started from) is not what the job is."""
    if not isinstance(recorded, list) or not all(isinstance(o, str) for o in recorded):
        return False
    return all(override_key(o) == "ckpt_path" for o in set(recorded) ^ set(overrides))


def sweep_job_folder(name: str) -> str:
    """``hydra.sweep.subdir``'s resolver: the job folder's name, once it is known to be no link and to hold
    none (Hydra resolves this before it writes there). A grid re-run with its arguments in another order
    numbers its jobs differently: a folder that records the same set of overrides is this job's."""
    from hydra.core.hydra_config import HydraConfig

    hydra_cfg = HydraConfig.get()
    sweep_dir = Path(hydra_cfg.sweep.dir)
    overrides = [str(o) for o in hydra_cfg.overrides.task]
    if sweep_dir.is_dir() and not any(o.startswith("optuna_trial=") for o in overrides):
        rest = name.partition("_")[2]
        others = (p for p in sweep_dir.iterdir() if p.name != name and p.name.partition("_")[2] == rest)
        # the first real folder whose result.json records this job's overrides is its folder
        for path in [sweep_dir / name, *sorted(others)]:
            real = path.is_dir() and not path.is_symlink()
            if real and same_job((read_result_or_none(path) or {}).get("overrides"), overrides):
                name = path.name
                break
    check_no_links(sweep_dir / name, f"sweep folder {sweep_dir}")
    return name


def register_resolvers() -> None:
    """Registered on import, before Hydra composes anything."""
    config.register_resolvers()
    OmegaConf.register_new_resolver("run_id", run_id, use_cache=True, replace=True)
    OmegaConf.register_new_resolver("safe_dirname", safe_dirname, replace=True)
    OmegaConf.register_new_resolver("new_run_dir", new_run_dir, replace=True)
    OmegaConf.register_new_resolver("sweep_job_folder", sweep_job_folder, replace=True)
    # only rank 0 of a multi-process launch writes .hydra/ and the plain log file name
    OmegaConf.register_new_resolver(
        "rank_zero_only", lambda value: value if launcher_rank() == 0 else None, replace=True
    )
    OmegaConf.register_new_resolver(
        "rank_suffix", lambda: "" if launcher_rank() == 0 else f"_rank{launcher_rank()}", replace=True
    )


class RunLocked(NeuronlabError, RuntimeError):
    """Another process is writing in this run folder, or its lock file cannot be made."""


@contextmanager
def run_lock(run_dir: Path | str) -> Iterator[None]:
    """One writer per run folder: an exclusive ``flock`` on ``<run_dir>/.lock``, which the OS releases
    however the process ends (SIGKILL included). Raises :class:`RunLocked` naming the holder."""
    import fcntl

    run_dir = Path(run_dir).resolve()
    created = not run_dir.exists()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        # never through a symbolic link: a run folder from elsewhere must not make us truncate a file
        handle = open_lock_file(run_dir / ".lock")
    except OSError as err:
        why = "it is a symbolic link" if err.errno == errno.ELOOP else err.strerror
        raise RunLocked(f"cannot lock the run folder {run_dir} ({run_dir / '.lock'}: {why})") from None
    with handle:  # closing the descriptor releases the flock
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = shown(handle.read(200).partition("\n")[0].strip(), 100) or "another process"
            raise RunLocked(
                f"{run_dir} is in use by {holder}: one run writes in a folder at a time; wait for it to "
                "end (or stop it), then resume again"
            ) from None
        handle.truncate()  # nothing was read: at its start
        handle.write(f"process {os.getpid()} on {os.uname().nodename}\n")
        handle.flush()
        for folder in (run_dir, run_dir / CHECKPOINTS):  # what a killed writer left: no writer now
            remove_stale_temporaries(folder)
        try:
            yield
        finally:
            if created and [p.name for p in run_dir.iterdir()] == [".lock"]:  # nothing ran: no empty folder
                (run_dir / ".lock").unlink(missing_ok=True)
                run_dir.rmdir()


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


def typed_value(arg: str) -> str:
    """The value of a ``key=value`` override as Hydra reads it (``paths.root_dir="'/tmp/x y'"`` ->
    ``/tmp/x y``); as typed when it does not parse (Hydra then names the error)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        value = OverridesParser.create().parse_override(arg).value()
    except HydraException:
        return arg.partition("=")[2]
    return str(value)
