"""Batches sliced from tensors in memory (no per-sample ``__getitem__``, PIL or collate): what brings
neuronlab's epochs close to a bare PyTorch loop (``scripts/benchmark.py``). With ``steps_per_execution=K``
a training loader hands over K mini-batches at once, for :mod:`neuronlab.tasks.grouped`."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import torch

from neuronlab.data.checks import check_data_args


class InMemoryLoader:
    """Iterate ``(x, y)`` batches of in-memory tensors, reshuffled each epoch from a seeded generator.

    Under DDP each process takes its own shard (``rank``/``world_size``). Training shards are equal in
    length (the reshuffled remainder is dropped, so every rank runs the same number of steps);
    evaluation shards cover the split exactly once, without the padding duplicates of
    ``DistributedSampler``, so a metric synchronised over processes equals the single-process one.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        steps_per_execution: int = 1,
    ) -> None:
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} samples but y has {len(y)}")
        if batch_size <= 0:
            raise ValueError(f"batch_size={batch_size} must be positive")
        check_data_args(steps_per_execution=steps_per_execution)
        self.x, self.y = x, y
        self.batch_size, self.shuffle, self.seed = int(batch_size), shuffle, int(seed)
        self.rank, self.world_size = rank, world_size
        self.steps_per_execution = int(steps_per_execution)
        self.epoch = 0
        # Lightning calls ``dataloader.sampler.set_epoch(epoch)`` at each epoch start; so does DDP code.
        self.sampler = self
        self.batch_sampler = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def indices(self) -> torch.Tensor | None:
        """This process's sample order for the current epoch (``None``: all samples in order)."""
        n = len(self.x)
        if not self.shuffle and self.world_size == 1:
            return None
        if self.shuffle:
            order = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed + self.epoch))
            order = order[: n - n % self.world_size]  # training: equal shards
        else:
            order = torch.arange(n)
        return order[self.rank :: self.world_size].to(self.x.device)

    def __iter__(self) -> Iterator[Any]:
        """``(x, y)`` batches; with ``steps_per_execution=K > 1``, lists of up to K such batches (the same
        batches in the same order, the last list shorter when the epoch's batches do not divide by K)."""
        order = self.indices()
        size = self.batch_size
        if order is None:
            batches = ((self.x[i : i + size], self.y[i : i + size]) for i in range(0, len(self.x), size))
        else:
            batches = ((self.x[b], self.y[b]) for b in order.split(size))
        if self.steps_per_execution == 1:
            yield from batches
            return
        while group := list(itertools.islice(batches, self.steps_per_execution)):
            yield group

    @property
    def num_batches(self) -> int:
        """Mini-batches (optimizer steps, when training) per epoch, whatever ``steps_per_execution`` is."""
        n = len(self.x)
        if self.world_size > 1:
            n = n // self.world_size if self.shuffle else len(range(self.rank, n, self.world_size))
        return -(-n // self.batch_size)

    def __len__(self) -> int:
        """Items per epoch: mini-batches, or groups of ``steps_per_execution`` of them."""
        return -(-self.num_batches // self.steps_per_execution)

    def to(self, device: torch.device | str) -> InMemoryLoader:
        """Move the whole split to ``device`` once (e.g. the GPU), so batches need no transfer."""
        self.x, self.y = self.x.to(device), self.y.to(device)
        return self
