"""Test instruments added to a real run from the command line (``+callbacks.probe._target_=...``).

They observe what the built objects are and what each process did, and write it to one JSON file per
rank, so a test can check a real run (in this process or in DDP worker processes) from the outside.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
from pathlib import Path
from typing import Any

import lightning.pytorch as L
import torch


def tests_importable() -> dict[str, str]:
    """The environment a command needs to load these instruments: this repository on ``PYTHONPATH``,
    after what is there already (scripts/mutation_table.py puts a changed copy of ``src`` first)."""
    paths = [os.environ.get("PYTHONPATH", ""), str(Path(__file__).resolve().parents[1])]
    return {"PYTHONPATH": os.pathsep.join(p for p in paths if p)}


class Probe(L.Callback):
    """Records the optimizer, scheduler, activation and precision a run trained with, the dtype of the
    net's output during training, each rank's training steps and samples per epoch, its local test
    samples, and the test confusion matrix's total (synchronised over processes)."""

    def __init__(self, out: str) -> None:
        self.out = Path(out)
        self.record: dict[str, Any] = {"train_samples": [], "train_steps": 0, "test_samples": 0}
        self._epoch_samples = 0

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        configs = trainer.lr_scheduler_configs
        self.record.update(
            rank=trainer.global_rank,
            world_size=trainer.world_size,
            optimizer=type(trainer.optimizers[0]).__name__,
            optimizer_defaults={k: v for k, v in trainer.optimizers[0].defaults.items() if _plain(v)},
            scheduler=type(configs[0].scheduler).__name__ if configs else None,
            activations=sorted(
                {
                    type(m).__name__
                    for m in pl_module.net.modules()
                    if type(m).__module__.endswith("activation")
                }
            ),
            precision=str(trainer.precision),
        )

        def hook(module: torch.nn.Module, args: Any, output: torch.Tensor) -> None:
            if module.training:
                self.record["train_output_dtype"] = str(output.dtype)

        self._hook = pl_module.net.register_forward_hook(hook)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: Any, outputs: Any, batch: Any, i: int
    ) -> None:
        self.record["train_steps"] += 1
        self._epoch_samples += len(batch[1])

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.record["train_samples"].append(self._epoch_samples)
        self._epoch_samples = 0

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._hook.remove()
        self.record["global_step"] = trainer.global_step
        lrs = [group["lr"] for group in trainer.optimizers[0].param_groups]
        self.record["final_lr"] = lrs[0]
        self._write()

    def on_test_batch_end(
        self, trainer: L.Trainer, pl_module: Any, outputs: Any, batch: Any, i: int, dataloader_idx: int = 0
    ) -> None:
        self.record["test_samples"] += len(batch[1])

    def on_test_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        self.record["confusion_total"] = int(pl_module.test_confusion.compute().sum())
        self._write()

    def _write(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        rank = self.record.get("rank", 0)
        (self.out / f"rank{rank}.json").write_text(json.dumps(self.record))


def _plain(value: Any) -> bool:
    return isinstance(value, bool | int | float | str) or value is None


def read_probe(out: Path) -> dict[int, dict[str, Any]]:
    """Every rank's record, by rank."""
    records = [json.loads(p.read_text()) for p in sorted(out.glob("rank*.json"))]
    return {r["rank"]: r for r in records}


class FileSizeLimit(L.Callback):
    """From the start of epoch ``at_epoch`` on, this process may not write files beyond ``max_bytes``
    (``RLIMIT_FSIZE``): the next checkpoint write fails part way, as on a disk that fills up."""

    def __init__(self, at_epoch: int, max_bytes: int, snapshot: str) -> None:
        self.at_epoch, self.max_bytes, self.snapshot = at_epoch, max_bytes, Path(snapshot)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == self.at_epoch:
            # the checkpoints as they are before the failing write, for the test to compare with
            self.snapshot.mkdir(parents=True)
            for ckpt in Path(trainer.checkpoint_callback.dirpath).glob("*.ckpt"):
                shutil.copy2(ckpt, self.snapshot / ckpt.name)
            resource.setrlimit(resource.RLIMIT_FSIZE, (self.max_bytes, resource.RLIM_INFINITY))
