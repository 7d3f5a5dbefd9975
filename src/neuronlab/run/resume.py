"""``resume=<run folder>``: continue a run in its own folder, with its own config.

A run folder may come from someone else, so it is checked before use: its saved overrides may only set
plain values of known keys or pick neuronlab's own config options (no ``_target_``, ``hydra.*``, added
or removed keys, interpolations or paths; the user's own command-line arguments are never filtered);
nothing the run writes may be a symbolic link; a completed run is reported and left unchanged.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from neuronlab.config import CONF_DIR, is_int
from neuronlab.data.checks import MAX_COUNTS
from neuronlab.errors import CheckpointError, NeuronlabError, first_line
from neuronlab.io.read import UnreadableFile, read_yaml
from neuronlab.run.folder import RECORD, config_file, inside, overrides_file, read_result_or_none
from neuronlab.run.paths import check_fresh_folder, check_no_links, hydra_quote, hydra_value, override_key
from neuronlab.show import shown

# top-level keys a saved override may set; paths, loggers and Hydra's own keys are not among them
SETTABLE = ("data", "model", "optimizer", "scheduler", "trainer", "callbacks", "seed", "task_name", "test")
SETTABLE += ("optimized_metric", "task")
# keys that name a place on disk: a run folder never chooses them
PATH_KEYS = {"data_dir", "root_dir", "run_dir", "dirpath", "save_dir", "default_root_dir", "filename"}
# a resume starts Hydra with this: Hydra writes no .hydra/ record; :func:`write_record` does, once accepted
NO_RECORD = "hydra.output_subdir=null"


class AlreadyComplete(Exception):
    """The run folder ``run_dir`` holds a completed run and nothing asks for more: nothing to do."""

    def __init__(self, message: str, run_dir: Path) -> None:
        super().__init__(message)
        self.run_dir = run_dir


def _plain(value: Any) -> bool:
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    if isinstance(value, str):
        return "${" not in value
    return value is None or isinstance(value, bool | int | float)


def _check_saved(text: Any, source: Path) -> str | None:
    """Raise naming why a run folder may not hold the override ``text``; for one that names a place on
    disk, return it as the user would type it (refused with the others, in one message); else ``None``."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import OverrideType
    from hydra.errors import HydraException

    def refuse(why: str) -> NeuronlabError:
        return NeuronlabError(
            f"{source}: the saved override {text!r} is refused: {why}. A run folder may only set plain "
            "values of known keys; if you trust this value, pass it yourself on the command line "
            "after resume=..."
        )

    if not isinstance(text, str):
        raise NeuronlabError(f"{source}: expected a list of overrides (strings), found {text!r}")
    try:
        override = OverridesParser.create().parse_override(text)
    except HydraException as err:
        raise NeuronlabError(f"{source}: {text!r} is not a valid override ({first_line(err)})") from None
    key = override.key_or_group
    parts = key.replace("/", ".").split(".")
    if not all(re.fullmatch(r"\w+", p) for p in parts):
        raise refuse("it is not a plain key")
    if override.type != OverrideType.CHANGE:
        raise refuse("it adds or removes a key (+, ++, ~)")
    if override.package is not None:
        raise refuse("it moves a config package (@)")
    if override.is_sweep_override():
        raise refuse("it is a sweep")
    if parts[0] == "hydra":
        raise refuse("hydra.* keys decide what Hydra runs (callbacks, launchers, sweepers, folders)")
    if any(p.startswith("_") for p in parts):
        raise refuse("keys such as _target_ choose code")
    value = override.value()
    if (Path(CONF_DIR) / key).is_dir():  # a config group: one of neuronlab's own options
        options = sorted(p.stem for p in (Path(CONF_DIR) / key).glob("*.yaml"))
        if value is not None and value not in options:
            raise refuse(f"{key} must be one of {', '.join(options)}")
        return None
    if PATH_KEYS & set(parts) or parts[0] == "paths":
        return shlex.quote(f"{key}={hydra_value(str(value))}")
    if parts[0] not in SETTABLE:
        raise refuse(f"a run folder may set only {', '.join(SETTABLE)} (and choose config options)")
    if not _plain(value):
        raise refuse("only numbers, strings, true/false, null and lists of them are allowed (no ${...})")
    if parts[0] == "data" and parts[-1] in MAX_COUNTS and is_int(value) and value > MAX_COUNTS[parts[-1]]:
        raise refuse(f"a stored run may ask for at most {MAX_COUNTS[parts[-1]]:,} ({key})")
    return None


def saved_overrides(run: Path, skip: set[str]) -> list[str]:
    """The run folder's saved overrides, each checked, but for those of the keys in ``skip`` (given again
    by the user, whose value wins)."""
    source = overrides_file(run)
    try:
        saved = read_yaml(source)
    except UnreadableFile as err:
        raise NeuronlabError(f"{err}: is this a neuronlab run folder?") from None
    if saved is None:
        return []
    if not isinstance(saved, list):
        raise NeuronlabError(f"{source}: expected a list of overrides, found {type(saved).__name__}")
    skip = {*skip, "optuna_trial"}  # the Optuna sweeper's note of the trial: a run resumed alone has none
    kept, paths = [], {}  # paths: each refused override, as the user would type it
    for override in saved:
        if isinstance(override, str) and override_key(override) in skip:
            continue
        path = _check_saved(override, source)
        if path is None:
            kept.append(override)
        else:
            paths[repr(override)] = path
    if paths:  # every one in one message: the command it gives then works at once
        many = len(paths) > 1
        raise NeuronlabError(
            f"{source}: the saved override{'s' if many else ''} {', '.join(paths)} {'are' if many else 'is'} "
            "refused: a run folder never chooses where files are read or written. If you trust that folder, "
            f"say so yourself: neuronlab-train {shlex.quote(f'resume={run}')} {' '.join(paths.values())}"
        )
    return kept


def check_not_complete(run: Path, last: Path, given: Sequence[str]) -> None:
    """Raise :class:`AlreadyComplete` (with what to do) if the run completed and no larger
    ``trainer.max_epochs`` is given: resuming it would only rewrite its record."""
    from neuronlab.io.checkpoint import epochs_done, load_checkpoint

    if (read_result_or_none(run) or {}).get("status") != "completed":
        return
    done = epochs_done(load_checkpoint(last))
    wanted = [a.partition("=")[2] for a in given if a.startswith("trainer.max_epochs=")]
    if wanted and re.fullmatch(r"-?\d+", wanted[-1]) and (int(wanted[-1]) > done or int(wanted[-1]) == -1):
        return  # a value that is not a number: the config's own check names it
    try:
        max_epochs = read_yaml(config_file(run))["trainer"]["max_epochs"]
    except (UnreadableFile, TypeError, KeyError):
        max_epochs = None  # only used in the message
    early = ""
    if is_int(max_epochs) and done < max_epochs:
        early = f" and stopped early (trainer.max_epochs={max_epochs})"
    raise AlreadyComplete(
        f"{run} is already complete: it trained {done} epochs{early}. Nothing was changed. To train it "
        f"longer: neuronlab-train {shlex.quote(f'resume={run}')} trainer.max_epochs={max(done * 2, done + 1)}"
        f"{' callbacks.early_stopping=null' if early else ''}",
        run,
    )


def resume_argv(argv: list[str]) -> list[str]:
    """``resume=<run folder>`` / ``ckpt_path=<run folder>`` -> that run's checked overrides, its folder, its
    ``last.ckpt``; later command-line overrides still win. Other command lines are returned unchanged."""
    args = argv[1:]
    chosen = None
    for arg in args:
        key, _, value = arg.partition("=")
        if key == "resume" or (key == "ckpt_path" and value and Path(value).expanduser().is_dir()):
            chosen = arg
    if chosen is None:
        check_fresh_folder(args)
        return argv
    run = Path(chosen.partition("=")[2]).expanduser().resolve()
    if not overrides_file(run).is_file():
        raise NeuronlabError(f"{chosen}: not a neuronlab run folder (expected {overrides_file(run)})")
    if {"-m", "--multirun"} & set(args):
        raise NeuronlabError(f"{chosen}: resume one run at a time, without -m")
    check_no_links(run)
    from neuronlab.io.checkpoint import resolve_checkpoint  # torch and Lightning: only for a real run folder

    try:
        last = resolve_checkpoint(run)
    except CheckpointError:  # it ended before its first last.ckpt (a full disk, a kill in epoch 1...)
        error = (read_result_or_none(run) or {}).get("error")
        why = f" (it ended with: {shown(error, 300)})" if isinstance(error, str) and error else ""
        raise NeuronlabError(
            f"resume={run}: {run} is a folder without checkpoints/last.ckpt: the run kept no checkpoint to "
            f"continue from{why}; start it again as a new run, with the overrides in {overrides_file(run)}"
        ) from None
    rest = [a for a in args if a != chosen]
    given = {override_key(a) for a in rest if "=" in a}
    saved = saved_overrides(run, skip=given | {"ckpt_path", "resume"})
    check_not_complete(run, last, rest)
    where = [NO_RECORD, f"ckpt_path={hydra_quote(str(last))}", f"hydra.run.dir={hydra_quote(str(run))}"]
    return [argv[0], *saved, *rest, *where]


def accept_checkpoint(ckpt_path: str, task: Any, max_epochs: int, run_dir: Path) -> tuple[Path, Any, bool]:
    """The checkpoint a run continues, loaded and checked before anything is written (the same net,
    optimizer and scheduler settings; epochs left). Returns it, its content, and whether only the test is
    left (this run's own fit completed and its final test was stopped)."""
    from neuronlab.io import checkpoint as ckpt_io

    path = ckpt_io.resolve_checkpoint(ckpt_path)
    checkpoint = ckpt_io.load_checkpoint(path)
    ckpt_io.check_same_architecture(checkpoint, task.net.config(), path)
    ckpt_io.check_same_training(checkpoint, task, path)
    _check_same_settings(checkpoint, task, path)
    done = ckpt_io.epochs_done(checkpoint)
    test_only = 0 < max_epochs == done and inside(run_dir, path)
    if 0 < max_epochs <= done and not test_only:  # Lightning would return at once and test a stale model
        raise CheckpointError(
            f"ckpt_path={path} has already trained {done} epochs and this run stops at "
            f"trainer.max_epochs={max_epochs}: pass a higher trainer.max_epochs to train on"
        )
    return path, checkpoint, test_only


def _check_same_settings(checkpoint: Any, task: Any, path: Path) -> None:
    """Refuse other optimizer or scheduler settings than the checkpoint's: Lightning restores the saved
    state, which brings the saved settings (``lr``...) back, while the run's record would say the new."""
    from collections.abc import Mapping

    from neuronlab.tasks.classifier import describe_factory

    hparams = checkpoint.get("hyper_parameters")
    for what in ("optimizer", "scheduler"):
        stored = hparams.get(what) if isinstance(hparams, Mapping) else None
        if not isinstance(stored, Mapping):
            continue  # none stored: check_same_training compared the classes
        mine = describe_factory(getattr(task, f"{what}_factory")) or {}
        changed = [
            f"{what}.{k}={shown(repr(stored.get(k)), 80)} (not {shown(repr(mine.get(k)), 80)})"
            for k in sorted({*stored, *mine} - {"name"}, key=str)
            if stored.get(k) != mine.get(k)
        ]
        if changed:
            raise CheckpointError(
                f"ckpt_path={path} was trained with {', '.join(changed)}: a run continues as it was (its "
                f"saved {what} state brings those settings back); to change the {what}, start a new run "
                "without resume= or ckpt_path"
            )


def hydra_record(cfg: Any) -> dict[str, str]:
    """What Hydra writes in a run's ``.hydra/`` for the current job (``cfg`` as composed, unresolved):
    ``config.yaml``, ``hydra.yaml``, ``overrides.yaml``. Read it before the run changes ``cfg``."""
    import copy

    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf, open_dict, read_write

    hydra_cfg = copy.deepcopy(HydraConfig.instance().cfg)
    if NO_RECORD in hydra_cfg.hydra.overrides.hydra:  # a resume's: as its record always was
        with read_write(hydra_cfg.hydra), open_dict(hydra_cfg.hydra):
            hydra_cfg.hydra.output_subdir = RECORD
            hydra_cfg.hydra.overrides.hydra = [o for o in hydra_cfg.hydra.overrides.hydra if o != NO_RECORD]
    task = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    return {
        "config.yaml": OmegaConf.to_yaml(task),
        "hydra.yaml": OmegaConf.to_yaml(hydra_cfg),
        "overrides.yaml": OmegaConf.to_yaml(hydra_cfg.hydra.overrides.task),
    }


def write_record(folder: Path, record: dict[str, str]) -> None:
    """Write a :func:`hydra_record` in ``folder`` (a run's ``.hydra/``), each file whole or not at all; a
    resume does so only once its checkpoint is accepted, so a refused one leaves the record as it was."""
    from neuronlab.io.files import atomic_write

    folder.mkdir(parents=True, exist_ok=True)
    for name, text in record.items():
        atomic_write(folder / name, text)
