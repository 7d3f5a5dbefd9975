"""Checkpoints are untrusted input: load them safely, check every stored value, write them atomically.

``torch.load(weights_only=True)`` only stops pickled code; nothing read back may choose code or a path
either. Stored class names go through one allow-list lookup (:func:`allowed_class`), the fields Lightning
restores are type-checked before it sees them (:func:`check_checkpoint`), a recorded data folder is only
read, and the stored data facts must be those of the allow-listed DataModule. Callback paths are kept
inside the run's ``checkpoints/`` by :class:`neuronlab.run.callbacks.ModelCheckpoint`.
"""

from __future__ import annotations

import functools
import inspect
import io
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO
from packaging.version import InvalidVersion, Version

from neuronlab.config import is_int
from neuronlab.data import DataFacts, FashionMNISTDataModule, GatesDataModule, MNISTDataModule
from neuronlab.data.checks import MAX_COUNTS
from neuronlab.errors import CheckpointError, first_line
from neuronlab.io.files import atomic_write
from neuronlab.models import NETS
from neuronlab.show import shown
from neuronlab.tasks import Classifier, describe_factory


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO, writing through :func:`neuronlab.io.files.atomic_write` (a kill or a full
    disk keeps the previous file whole) and reading through :func:`load_checkpoint`, resuming included."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)  # serialise first: a full disk then fails as a plain OSError
        try:
            atomic_write(path, buffer.getbuffer())
        except OSError as err:  # a full disk, a file size limit: name the file, say what was kept
            kept = f"the previous {path.name} is kept" if path.is_file() else f"no {path.name} was written"
            raise CheckpointError(
                f"cannot write {path} ({err.strerror or err}); {kept}: free some space or "
                "choose another paths.root_dir"
            ) from None

    def load_checkpoint(
        self, path: Any, map_location: Any | None = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        return load_checkpoint(path, map_location=map_location)


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or a run folder (its ``checkpoints/last.ckpt``, else ``interrupted.ckpt``)."""
    if not isinstance(path, str | Path) or not str(path):  # ckpt_path=null or ckpt_path= on the command line
        raise CheckpointError(f"ckpt_path={path!r}: pass ckpt_path=<a .ckpt file or a run folder>")
    path = Path(path).expanduser()
    if path.is_dir():
        for name in ("last.ckpt", "interrupted.ckpt"):
            for candidate in (path / "checkpoints" / name, path / name):
                if candidate.is_file():
                    return candidate
        raise CheckpointError(f"ckpt_path={path} is a folder without checkpoints/last.ckpt")
    if not path.is_file():
        raise CheckpointError(
            f"ckpt_path={path}: no such checkpoint file (expected a .ckpt file or a run folder)"
        )
    return path


MAX_INFLATED_BYTES = 1 << 30  # what a checkpoint may unpack to (neuronlab's own are a few MB)


def load_checkpoint(path: str | Path, map_location: Any = None) -> dict[str, Any]:
    """``torch.load(weights_only=True)``, then :func:`check_checkpoint`: one clear error for a damaged,
    foreign or tampered file. An archive that would unpack past ``MAX_INFLATED_BYTES`` (a small deflated
    file can hold gigabytes) is refused before anything is unpacked."""
    path = resolve_checkpoint(path)
    try:
        if zipfile.is_zipfile(path):  # torch.save's format (torch.load names anything else)
            with zipfile.ZipFile(path) as archive:
                inflated = sum(member.file_size for member in archive.infolist())
            if inflated > MAX_INFLATED_BYTES:
                raise CheckpointError(
                    f"ckpt_path={path} would unpack to {inflated / 2**20:.0f} MiB (more than "
                    f"{MAX_INFLATED_BYTES >> 20} MiB): not a neuronlab checkpoint; not loaded"
                )
        checkpoint = torch.load(path, map_location=map_location or "cpu", weights_only=True)
    except CheckpointError:
        raise
    except Exception as err:  # torch.load fails in many ways on a damaged file (KeyError, OSError, ...)
        raise CheckpointError(
            f"ckpt_path={path} is not a readable checkpoint ({_first_line(err)}); it may be damaged, "
            "truncated or not a checkpoint: copy it again or pick another file"
        ) from None
    check_checkpoint(checkpoint, path)
    return checkpoint


def _first_line(err: BaseException) -> str:
    """The error's first line, escaped (it may quote the file's strings)."""
    if "weights_only" in str(err) or "Weights only load failed" in str(err):
        # never pass on torch's advice to load with weights_only=False: that runs the file's code
        return "it holds Python objects that a safe load refuses"
    return shown(first_line(err))


def _is_plain(value: Any, depth: int = 0) -> bool:
    """Tensors, numbers, strings, None, and lists/tuples/dicts of them, nested at most 12 deep."""
    if isinstance(value, list | tuple):
        return depth < 12 and all(_is_plain(v, depth + 1) for v in value)
    if isinstance(value, Mapping):
        return depth < 12 and all(
            isinstance(k, str | int) and _is_plain(v, depth + 1) for k, v in value.items()
        )
    return value is None or isinstance(value, bool | int | float | str | torch.Tensor)


def _is_version(value: Any) -> bool:
    try:
        return isinstance(value, str) and len(value) < 64 and bool(Version(value))
    except InvalidVersion:
        return False


def _is_count(value: Any) -> bool:
    return is_int(value) and value >= 0


def _is_score(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and value.numel() == 1


# the containers a checkpoint holds, each plain values (no objects) of this type
CONTAINERS = {
    "hyper_parameters": (Mapping, "a mapping of plain values"),
    "datamodule_hyper_parameters": (Mapping, "a mapping of plain values"),
    "optimizer_states": (list, "a list of optimizer states"),
    "lr_schedulers": (list, "a list of scheduler states"),
    "callbacks": (Mapping, "callback names mapped to their states"),
    "loops": (Mapping, "Lightning's loop states"),
    "rng_state": (Mapping, "RNG states"),
}
_COUNT = (_is_count, "an integer >= 0")
_SCORE_OR_NULL = (lambda v: v is None or _is_score(v), "a number or null")
_FILE = (lambda v: isinstance(v, str), "a file name")
# the state fields of Lightning's callbacks (EarlyStopping, ModelCheckpoint) that a resume restores
CALLBACK_FIELDS: dict[str, tuple[Any, str]] = {
    **dict.fromkeys(("wait_count", "stopped_epoch", "patience"), _COUNT),
    "best_score": (_is_score, "a number"),
    **dict.fromkeys(("best_model_score", "kth_value", "current_score"), _SCORE_OR_NULL),
    **dict.fromkeys(("best_model_path", "kth_best_model_path", "last_model_path"), _FILE),
    "dirpath": (lambda v: v is None or isinstance(v, str), "a folder name"),
    "best_k_models": (
        lambda v: isinstance(v, Mapping) and all(isinstance(k, str) and _is_score(s) for k, s in v.items()),
        "file names mapped to scores",
    ),
}
COUNTERS = {"ready", "started", "processed", "completed", "_batches_that_stepped"}


def _counts_ok(node: Any) -> bool:
    """Lightning's loop progress counters (``ready``, ``completed``, ...) anywhere in ``loops``."""
    if isinstance(node, Mapping):
        return all((k not in COUNTERS or _is_count(v)) and _counts_ok(v) for k, v in node.items())
    if isinstance(node, list | tuple):
        return all(_counts_ok(v) for v in node)
    return True


def check_checkpoint(checkpoint: Any, path: Any) -> None:
    """Refuse a checkpoint whose fields are not of the types Lightning and neuronlab expect: Lightning
    trusts what it restores, so a tampered value would crash training halfway or steer it."""

    def bad(field: str, expected: str) -> CheckpointError:
        return CheckpointError(f"ckpt_path={path}: {field} is not valid (expected {expected}); not loaded")

    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), Mapping):
        raise CheckpointError(
            f"ckpt_path={path} is not a Lightning checkpoint (no state_dict inside): neuronlab reads the "
            ".ckpt files it writes (checkpoints/best.ckpt, last.ckpt); a bare state dict of another program "
            "has no description of its net"
        )
    version = checkpoint.get("pytorch-lightning_version")
    if version is not None and not _is_version(version):
        raise bad("pytorch-lightning_version", "a version number such as 2.6.0")
    if not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in checkpoint["state_dict"].items()
    ):
        raise bad("state_dict", "parameter names mapped to tensors")
    for field in ("epoch", "global_step"):
        if field in checkpoint and not _is_count(checkpoint[field]):
            raise bad(field, "an integer >= 0")
    for field, (kind, words) in CONTAINERS.items():
        if field in checkpoint and not (isinstance(checkpoint[field], kind) and _is_plain(checkpoint[field])):
            raise bad(field, words)
    for i, opt in enumerate(checkpoint.get("optimizer_states", [])):
        groups = opt.get("param_groups") if isinstance(opt, Mapping) else None
        if not (isinstance(groups, list) and all(isinstance(g, Mapping) for g in groups)):
            raise bad(f"optimizer_states[{i}]", "an optimizer state dict with param_groups")
        if any(isinstance(v, str | Mapping) for group in groups for v in group.values()):  # plain already
            raise bad(f"optimizer_states[{i}].param_groups", "numbers and flags")
    for name, value in checkpoint.get("callbacks", {}).items():
        if not isinstance(name, str) or not isinstance(value, Mapping):
            raise bad("callbacks", "callback names mapped to their states")
        for key, (ok, words) in CALLBACK_FIELDS.items():
            if key in value and not ok(value[key]):
                raise bad(f"callbacks[{shown(repr(name))}].{key}", words)
    if not _counts_ok(checkpoint.get("loops", {})):
        raise bad("loops", "progress counters that are integers >= 0")
    rng, reference = checkpoint.get("rng_state", {}), torch.get_rng_state()
    state = rng.get("torch", reference)
    if not (isinstance(state, torch.Tensor) and (state.dtype, state.shape) == (torch.uint8, reference.shape)):
        raise bad("rng_state.torch", f"a uint8 tensor of {reference.numel()} bytes")
    cuda = rng.get("cuda", [])
    if not isinstance(cuda, list | tuple) or any(
        not isinstance(s, torch.Tensor) or (s.dtype, s.ndim) != (torch.uint8, 1) for s in cuda
    ):
        raise bad("rng_state.cuda", "a list of uint8 tensors")


def epochs_done(checkpoint: Mapping[str, Any]) -> int:
    """Whole training epochs behind a checkpoint (Lightning's processed epochs; 0 if not recorded)."""
    try:
        done = checkpoint["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"]
    except (KeyError, TypeError):
        return 0
    return done if _is_count(done) else 0


def _by_name(*classes: type) -> dict[str, type]:
    return {f"{cls.__module__}.{cls.__qualname__}": cls for cls in classes}


OPTIMIZERS = _by_name(torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD)
SCHEDULERS = _by_name(
    torch.optim.lr_scheduler.CosineAnnealingLR,
    torch.optim.lr_scheduler.StepLR,
    torch.optim.lr_scheduler.ReduceLROnPlateau,
)
"""The only optimizer and scheduler classes a stored description may name (explicit allow-lists)."""


def allowed_class(
    description: Any, allowed: Mapping[str, type], what: str, key: str = "_target_"
) -> tuple[type, dict[str, Any]]:
    """The class a stored description names under ``key`` and its keyword arguments: the one place a
    stored string picks a class. The name must be a key of the allow-list ``allowed`` (never an import),
    each argument a constructor parameter (but the object it is built for, such as an optimizer's
    ``params``) and a plain value, which the constructor checks. Raises ``ValueError`` naming ``what``."""
    if not isinstance(description, Mapping):
        raise ValueError(f"{what}: expected a mapping of plain values, got {type(description).__name__}")
    kwargs = dict(description)
    name = kwargs.pop(key, None)
    cls = allowed.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f"{what}: {shown(repr(name))} is not allowed (allowed: {', '.join(allowed)})")
    params = inspect.signature(cls.__init__).parameters.values()
    accepted = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    accepted = [n for n in accepted if n not in ("self", "params", "optimizer")]
    for name, value in kwargs.items():
        if name not in accepted:
            raise ValueError(
                f"{what}: {cls.__name__} has no argument {shown(repr(name))} (allowed: {', '.join(accepted)})"
            )
        if not _is_plain_value(value):
            raise ValueError(f"{what}.{name}={shown(repr(value))} is not a plain value")
    return cls, kwargs


def _is_plain_value(value: Any, depth: int = 0) -> bool:
    if isinstance(value, list | tuple):
        return depth < 2 and len(value) <= 64 and all(_is_plain_value(v, depth + 1) for v in value)
    return value is None or isinstance(value, bool | int | float | str)


def load_classifier(path: str | Path) -> tuple[Classifier, dict[str, Any]]:
    """The :class:`Classifier` a checkpoint describes (for eval, predict, export), in eval mode: its net,
    optimizer and scheduler rebuilt through :func:`allowed_class`, its weights loaded."""
    checkpoint = load_checkpoint(path)
    hparams = checkpoint.get("hyper_parameters")
    if not isinstance(hparams, Mapping) or "net" not in hparams:
        raise CheckpointError(
            f"ckpt_path={path} was not written by neuronlab (no net description in its hyper_parameters)"
        )
    unknown = sorted(set(map(str, hparams)) - {"net", "num_classes", "optimizer", "scheduler", "compile"})
    if unknown:
        raise CheckpointError(
            f"ckpt_path={path}: hyper_parameters has unknown keys {shown(unknown)}; not loaded"
        )
    kwargs = dict(hparams)
    try:
        cls, args = allowed_class(kwargs["net"], NETS, "net")
        with torch.device("meta"):  # sizes only: a tampered size allocates nothing before it is compared
            described = sum(t.numel() for t in cls(**args).state_dict().values())
        stored = sum(t.numel() for k, t in checkpoint["state_dict"].items() if k.startswith("net."))
        if described != stored:
            raise ValueError(
                f"net describes {described} weights but the file holds {stored}: "
                "the description does not match the weights"
            )
        kwargs["net"] = cls(**args)
        for what, classes in (("optimizer", OPTIMIZERS), ("scheduler", SCHEDULERS)):
            if kwargs.get(what):  # {} or None: none (conf/scheduler/none.yaml)
                cls, args = allowed_class(kwargs[what], classes, what, key="name")
                kwargs[what] = functools.partial(cls, **args)
            else:
                kwargs[what] = None
        task = Classifier(**kwargs)
    except ValueError as err:
        raise CheckpointError(
            f"ckpt_path={path}: the stored hyper_parameters are not valid: {shown(err)}"
        ) from None
    try:
        task.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as err:
        raise CheckpointError(
            f"ckpt_path={path}: weights do not fit {type(task.net).__name__}: {_first_line(err)}"
        ) from None
    return task.eval(), checkpoint


def _datamodules() -> dict[str, type]:
    """The DataModules a checkpoint may name (an explicit allow-list)."""
    return _by_name(GatesDataModule, MNISTDataModule, FashionMNISTDataModule)


def datamodule_from_checkpoint(
    checkpoint: dict[str, Any], path: str | Path, data_dir: str | None = None, download: bool | None = None
) -> tuple[Any, str]:
    """The DataModule a checkpoint was trained with and its name, rebuilt from an allow-list.

    ``data_dir`` points at another copy of the same data. The folder recorded in the checkpoint is only
    read: nothing is downloaded into a folder that a file chose (``download`` applies to ``data_dir``).
    """
    data_cfg = checkpoint.get("datamodule_hyper_parameters")
    if not isinstance(data_cfg, Mapping) or "_target_" not in data_cfg:
        raise CheckpointError(
            f"ckpt_path={path} does not record the data it was trained on (kind of input, classes): use a "
            "checkpoint written by neuronlab-train (neuronlab-eval also takes data=<option>)"
        )
    try:
        cls, values = allowed_class(data_cfg, _datamodules(), "datamodule_hyper_parameters")
    except ValueError as err:
        raise CheckpointError(f"ckpt_path={path}: {shown(err)}; not loaded") from None
    for key, cap in MAX_COUNTS.items():
        if key in values and not (is_int(values[key]) and values[key] <= cap):
            raise CheckpointError(
                f"ckpt_path={path}: datamodule_hyper_parameters.{key}={shown(repr(values[key]))} must be an "
                f"integer of at most {cap}; not loaded"
            )
    if "data_dir" in inspect.signature(cls.__init__).parameters:
        if data_dir:
            values["data_dir"] = str(data_dir)
            if download is not None:
                values["download"] = download
        else:
            values["download"] = False  # the recorded folder is read, never written
    try:
        datamodule = cls(**values)
    except (ValueError, TypeError) as err:
        raise CheckpointError(
            f"ckpt_path={path}: datamodule_hyper_parameters: {shown(err)}; not loaded"
        ) from None
    return datamodule, datamodule.name


def data_facts(checkpoint: dict[str, Any], path: str | Path) -> DataFacts:
    """The :class:`~neuronlab.data.DataFacts` of a checkpoint's data: those it stores, checked value by
    value, or (an older checkpoint) those of the allow-listed DataModule it names. The stored kind, input
    shape and number of classes must be the class's own: a file never turns points into images."""
    datamodule, _ = datamodule_from_checkpoint(checkpoint, path)
    own = datamodule.facts()
    key = type(datamodule).__qualname__  # where Lightning keeps the DataModule's state_dict()
    stored = checkpoint.get(key)
    if stored is None:
        return own
    try:
        if not isinstance(stored, Mapping) or set(stored) != {"facts"}:
            raise ValueError("expected {'facts': {...}}")
        facts = DataFacts.from_plain(stored["facts"])
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"ckpt_path={path}: {key} is not valid: {shown(err)}; not loaded") from None
    shape = (facts.kind, list(facts.input_shape), facts.num_classes)
    if shape != (own.kind, list(own.input_shape), own.num_classes):
        raise CheckpointError(
            f"ckpt_path={path}: {key}.facts says {shape[0]} of shape {shape[1]} in {shape[2]} classes, but "
            f"{type(datamodule).__name__} serves {own.kind} of shape {list(own.input_shape)} in "
            f"{own.num_classes} classes; not loaded"
        )
    return facts


def check_same_architecture(checkpoint: dict[str, Any], net_config: dict[str, Any], path: str | Path) -> None:
    """Refuse to resume or test a checkpoint of another architecture, naming both."""
    saved = (checkpoint.get("hyper_parameters") or {}).get("net")
    if saved is not None and not isinstance(saved, Mapping):
        raise CheckpointError(f"ckpt_path={path}: hyper_parameters.net is not a net description")
    if saved is not None and dict(saved) != net_config:
        diffs = [
            f"{shown(k)}: checkpoint {shown(repr(saved.get(k)))} vs config {net_config.get(k)!r}"
            for k in sorted(set(map(str, saved)) | set(net_config))
            if saved.get(k) != net_config.get(k)
        ]
        raise CheckpointError(f"ckpt_path={path} holds another architecture ({'; '.join(diffs)})")


# the config option of each allow-listed optimizer and scheduler, for the message that names it
OPTIONS = {"Adam": "adam", "AdamW": "adamw", "SGD": "sgd", "none": "none"}
OPTIONS |= {"CosineAnnealingLR": "cosine", "StepLR": "step", "ReduceLROnPlateau": "plateau"}


def check_same_training(checkpoint: dict[str, Any], task: Classifier, path: str | Path) -> None:
    """Refuse to continue a checkpoint with another optimizer or scheduler: Lightning would load one's
    state into the other and fail halfway (e.g. SGD's ``momentum`` missing from Adam's state)."""
    hparams = checkpoint.get("hyper_parameters") or {}
    for what in ("optimizer", "scheduler"):
        if what not in hparams:
            continue
        stored = hparams[what].get("name") if isinstance(hparams[what], Mapping) else None
        stored = shown(stored) if isinstance(stored, str) else "none"
        mine = (describe_factory(getattr(task, f"{what}_factory")) or {}).get("name", "none")
        if stored != mine:
            option = OPTIONS.get(stored.rsplit(".", 1)[-1], f"<the {what} it used>")
            raise CheckpointError(
                f"ckpt_path={path} was trained with {what} {stored}, but this run uses {mine}: continue it "
                f"with {what}={option}, or start afresh without ckpt_path"
            )
