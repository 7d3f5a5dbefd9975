"""Loading checkpoints safely (``weights_only=True``) and rebuilding the net they hold."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from neuronlab.errors import NeuronlabError
from neuronlab.models import build_net
from neuronlab.tasks import Classifier


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write each checkpoint to a temporary file in its own folder, then rename it over the final name.

    A kill, a full disk or a crash mid-write leaves the previous checkpoint intact, never half a file
    under ``last.ckpt`` (Lightning's own save moves a temporary file across filesystems, which copies).
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)  # serialise first: a full disk then fails as a plain OSError
        try:
            with open(tmp, "wb") as f:
                f.write(buffer.getbuffer())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as err:  # a full disk: name the checkpoint (a failed write() names no file)
            raise OSError(err.errno, err.strerror, str(path)) from None
        finally:
            tmp.unlink(missing_ok=True)


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or a run folder (its ``checkpoints/last.ckpt``, else ``interrupted.ckpt``)."""
    path = Path(path).expanduser()
    if path.is_dir():
        for name in ("last.ckpt", "interrupted.ckpt"):
            for candidate in (path / "checkpoints" / name, path / name):
                if candidate.is_file():
                    return candidate
        raise NeuronlabError(f"ckpt_path={path} is a folder without checkpoints/last.ckpt")
    if not path.is_file():
        raise NeuronlabError(
            f"ckpt_path={path}: no such checkpoint file (expected a .ckpt file or a run folder)"
        )
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """``torch.load`` with the safe default, turning a damaged file into one clear error."""
    path = resolve_checkpoint(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch.load fails in many ways on a damaged file (KeyError, OSError, ...)
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise NeuronlabError(f"ckpt_path={path} is not a readable checkpoint ({first})") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise NeuronlabError(f"ckpt_path={path} is not a Lightning checkpoint (no state_dict inside)")
    return checkpoint


def load_classifier(path: str | Path) -> tuple[Classifier, dict[str, Any]]:
    """The :class:`Classifier` stored in a checkpoint (for eval, predict, export), in eval mode."""
    checkpoint = load_checkpoint(path)
    hparams = checkpoint.get("hyper_parameters") or {}
    if "net" not in hparams:
        raise NeuronlabError(f"ckpt_path={path} was not written by neuronlab (no net description inside)")
    net = build_net(hparams["net"])
    task = Classifier(net, num_classes=hparams.get("num_classes"))
    try:
        task.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as err:
        raise NeuronlabError(f"ckpt_path={path}: weights do not fit {type(net).__name__}: {err}") from None
    task.eval()
    return task, checkpoint


def datamodule_from_checkpoint(
    checkpoint: dict[str, Any], path: str | Path, data_dir: str | None = None, download: bool | None = None
) -> tuple[Any, str]:
    """The DataModule a checkpoint was trained with (its plain values are stored in it) and its name;
    ``data_dir`` points at another copy of the same data, ``download`` overrides the stored choice."""
    from hydra.utils import instantiate

    data_cfg = dict(checkpoint.get("datamodule_hyper_parameters") or {})
    if "_target_" not in data_cfg:
        raise NeuronlabError(f"ckpt_path={path} does not record its data: pass data=<option>")
    if "data_dir" in data_cfg:
        data_cfg["data_dir"] = str(data_dir or data_cfg["data_dir"])
        if download is not None:
            data_cfg["download"] = download
    name = str(data_cfg.get("name") or data_cfg.get("gate") or "data")
    return instantiate(data_cfg), name


def check_same_architecture(checkpoint: dict[str, Any], net_config: dict[str, Any], path: str | Path) -> None:
    """Refuse to resume or test a checkpoint of another architecture, naming both."""
    saved = (checkpoint.get("hyper_parameters") or {}).get("net")
    if saved is not None and saved != net_config:
        diffs = [
            f"{k}: checkpoint {saved.get(k)!r} vs config {net_config.get(k)!r}"
            for k in sorted(set(saved) | set(net_config))
            if saved.get(k) != net_config.get(k)
        ]
        raise NeuronlabError(f"ckpt_path={path} holds another architecture ({'; '.join(diffs)})")
