"""The lesson's logic gates: four points in {0,1}^2 and the gate's truth table as labels."""

from __future__ import annotations

import torch

from neuronlab.data.base import InMemoryDataModule
from neuronlab.data.checks import GATES, check_data_args

POINTS = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])


class GatesDataModule(InMemoryDataModule):
    """Train on the truth table (optionally repeated, with Gaussian input noise); validate/test on the
    four exact points. ``batch_size: null`` puts the whole training set in one batch, as the lesson does."""

    kind = "points"
    classes = ("0", "1")
    input_shape = (2,)

    def __init__(
        self,
        gate: str = "xor",
        repeats: int = 1,
        noise: float = 0.0,
        batch_size: int | None = None,
        seed: int = 0,
        steps_per_execution: int = 1,
    ) -> None:
        super().__init__(batch_size=batch_size, seed=seed, steps_per_execution=steps_per_execution)
        check_data_args(gate=gate, repeats=repeats, noise=noise)
        self.gate, self.repeats, self.noise = gate, int(repeats), float(noise)
        self.name = gate  # the data option (data=xor): named in messages
        self._save_config(gate=gate, repeats=self.repeats, noise=self.noise, batch_size=batch_size, seed=seed)

    def setup(self, stage: str | None = None) -> None:
        labels = torch.tensor(GATES[self.gate])
        x = POINTS.repeat(self.repeats, 1)
        if self.noise > 0:
            generator = torch.Generator().manual_seed(self.seed)
            x = x + self.noise * torch.randn(x.shape, generator=generator)
        self.splits = {
            "train": (x, labels.repeat(self.repeats)),
            "val": (POINTS.clone(), labels),
            "test": (POINTS.clone(), labels),
        }
