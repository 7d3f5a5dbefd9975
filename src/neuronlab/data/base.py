"""What every neuronlab DataModule shares: its facts as class attributes (as torchvision's datasets keep
them), listed once in :class:`DataFacts`, and in-memory splits served by :class:`InMemoryLoader`."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import lightning.pytorch as L
import torch

from neuronlab.config import is_int
from neuronlab.data.checks import MESSAGE_LIMIT, check_data_args
from neuronlab.data.loader import InMemoryLoader
from neuronlab.show import shown

KINDS = ("points", "images")
MAX_CLASSES = 1000  # a stored class list longer than this is not one of ours
MAX_INPUT_SIZE = 1 << 16


@dataclasses.dataclass(frozen=True)
class DataFacts:
    """What predict, export and figures need from the data a net was trained on: the one list of the
    facts, stated by each DataModule as class attributes of these names (a missing one takes the default).
    A checkpoint stores them, so every value is checked here.

    ``kind``: ``points`` (rows of ``input_shape[0]`` numbers) or ``images`` (``(channels, height, width)``,
    pixels normalised as ``(pixel / 255 - mean) / std``). ``fills_frame``: objects fill the picture
    (Fashion-MNIST) rather than sit centred by mass in a 20x20 box (MNIST). ``name``: the data's title.
    """

    kind: str
    classes: tuple[str, ...]
    input_shape: tuple[int, ...]
    mean: float = 0.0
    std: float = 1.0
    fills_frame: bool = False
    name: str = ""

    def __post_init__(self) -> None:
        def fail(field: str, expected: str) -> ValueError:
            value = shown(repr(getattr(self, field)), MESSAGE_LIMIT // 2)  # read from a checkpoint
            return ValueError(f"{field}={value} is not valid (expected {expected})")

        if self.kind not in KINDS:
            raise fail("kind", " or ".join(KINDS))
        if not (
            isinstance(self.classes, tuple)
            and 2 <= len(self.classes) <= MAX_CLASSES
            and all(isinstance(c, str) for c in self.classes)
        ):
            raise fail("classes", f"2 to {MAX_CLASSES} class names")
        shape = self.input_shape
        if not (
            isinstance(shape, tuple)
            and len(shape) == (3 if self.kind == "images" else 1)
            and all(is_int(n) and n > 0 for n in shape)
            and math.prod(shape) <= MAX_INPUT_SIZE
        ):
            layout = "(channels, height, width)" if self.kind == "images" else "(features,)"
            raise fail("input_shape", f"{layout} of positive sizes, at most {MAX_INPUT_SIZE} values")
        for field in ("mean", "std"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise fail(field, "a finite number")
        if not self.std > 0:
            raise fail("std", "a number > 0")
        if not isinstance(self.fills_frame, bool):
            raise fail("fills_frame", "true or false")
        if not isinstance(self.name, str):
            raise fail("name", "a string")

    @property
    def input_size(self) -> int:
        return math.prod(self.input_shape)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def to_plain(self) -> dict[str, Any]:
        """Lists, not tuples: plain values for a checkpoint."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def of(cls, source: Any) -> DataFacts:
        """The facts that ``source`` (a DataModule or its class) states as attributes, checked."""
        values = {f.name: getattr(source, f.name, None) for f in dataclasses.fields(cls)}
        return cls.from_plain({k: v for k, v in values.items() if v is not None})

    @classmethod
    def from_plain(cls, values: Any) -> DataFacts:
        """Facts read back from a checkpoint: only known fields, each of its type (``ValueError`` else)."""
        fields = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(values, dict) or not set(values) <= fields:
            raise ValueError(f"expected a mapping with keys among {', '.join(sorted(fields))}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        return cls(**values)


class InMemoryDataModule(L.LightningDataModule):
    """A DataModule whose splits are tensors in memory; subclasses fill ``self.splits`` in ``setup``.

    A subclass's facts (class attributes named as :class:`DataFacts`' fields) are checked when the class
    is defined. ``steps_per_execution``: mini-batches the training loader hands over at once; a speed
    setting only, not stored in checkpoints (every K gives the same run).
    """

    input_size: ClassVar[int]  # derived from the facts for each subclass
    num_classes: ClassVar[int]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if hasattr(cls, "kind"):  # a dataset
            facts = DataFacts.of(cls)
            cls.input_size, cls.num_classes = facts.input_size, facts.num_classes

    def facts(self) -> DataFacts:
        return DataFacts.of(self)

    def state_dict(self) -> dict[str, Any]:
        """Lightning stores this in every checkpoint (under the class's name)."""
        return {"facts": self.facts().to_plain()}

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
        """Store the constructor values (plain, with ``_target_``) so a checkpoint can rebuild the data
        (``logger=False``: loggers get the run's parameters from ``report.hparams_of``)."""
        cls = type(self)
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
        k = self.steps_per_execution if train else 1
        loader = InMemoryLoader(
            x, y, batch, shuffle=train, seed=self.seed, rank=rank, world_size=world, steps_per_execution=k
        )
        return loader.to(device)

    def train_dataloader(self) -> Any:
        return self._loader("train", train=True)

    def val_dataloader(self) -> Any:
        return self._loader("val")

    def test_dataloader(self) -> Any:
        return self._loader("test")

    def predict_dataloader(self) -> Any:
        return self._loader("test")
