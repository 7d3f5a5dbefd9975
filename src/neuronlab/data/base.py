"""What every neuronlab DataModule shares: in-memory splits served by :class:`InMemoryLoader`."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as L
import torch

from neuronlab.data.checks import check_data_args
from neuronlab.data.loader import InMemoryLoader


class InMemoryDataModule(L.LightningDataModule):
    """A DataModule whose splits are tensors in memory; subclasses fill ``self.splits`` in ``setup``.

    ``input_size`` and ``num_classes`` are the facts a model is checked against before training.
    ``steps_per_execution``: mini-batches the training loader hands over at once (optimizer steps per
    Lightning step); a speed setting only, not stored in checkpoints (every K gives the same run).
    """

    input_size: int
    num_classes: int

    def __init__(
        self,
        batch_size: int | None,
        eval_batch_size: int | None = None,
        seed: int = 0,
        steps_per_execution: int = 1,
    ) -> None:
        super().__init__()
        check_data_args(
            batch_size=batch_size, eval_batch_size=eval_batch_size, steps_per_execution=steps_per_execution
        )
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.seed = int(seed or 0)
        self.steps_per_execution = int(steps_per_execution)
        self.splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def _save_config(self, **values: Any) -> None:
        """Store the constructor values (plain, with ``_target_``) so a checkpoint can rebuild the data."""
        cls = type(self)
        # logger=False: loggers get the run's parameters from report.hparams_of, not these
        self.save_hyperparameters(
            {"_target_": f"{cls.__module__}.{cls.__qualname__}", **values}, logger=False
        )

    def _loader(self, split: str, train: bool = False) -> InMemoryLoader:
        x, y = self.splits[split]
        batch = (self.batch_size if train else self.eval_batch_size) or len(x)
        rank, world, device = 0, 1, torch.device("cpu")
        if self.trainer is not None:
            rank, world = self.trainer.global_rank, self.trainer.world_size
            device = self.trainer.strategy.root_device
        loader = InMemoryLoader(
            x,
            y,
            batch,
            shuffle=train,
            seed=self.seed,
            rank=rank,
            world_size=world,
            steps_per_execution=self.steps_per_execution if train else 1,
        )
        return loader.to(device) if device.type != "cpu" else loader

    def train_dataloader(self) -> Any:
        return self._loader("train", train=True)

    def val_dataloader(self) -> Any:
        return self._loader("val")

    def test_dataloader(self) -> Any:
        return self._loader("test")

    def predict_dataloader(self) -> Any:
        return self._loader("test")
