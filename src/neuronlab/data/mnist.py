"""The MNIST family (MNIST, Fashion-MNIST): each split read once from IDX files into normalised tensors.

Reads torchvision's layout (``<data_dir>/MNIST/raw/*-ubyte``, ``.gz`` accepted) or a folder holding the
four files (e.g. Debian's ``/usr/share/datasets/fashion-mnist``); downloads through torchvision if allowed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from neuronlab.data.base import InMemoryDataModule
from neuronlab.data.checks import check_data_args
from neuronlab.data.idx import IDXError, read_idx
from neuronlab.errors import ConfigError, DataError
from neuronlab.show import shown

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
STEMS = [stem for pair in FILES.values() for stem in pair]


class DataNotFoundError(DataError, FileNotFoundError):
    """The dataset's files are not on disk and could not be downloaded."""


def find_file(data_dir: Path, folder: str, stem: str) -> Path | None:
    """The first existing of ``<data_dir>/<folder>/raw/<stem>[.gz]`` and ``<data_dir>/<stem>[.gz]``."""
    for base in (data_dir / folder / "raw", data_dir):
        for name in (stem, stem + ".gz"):
            if (base / name).is_file():
                return base / name
    return None


class AugmentedDataset(Dataset):
    """Per-sample torchvision transforms on uint8 images: the slower path, only for augmentation."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: Any) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transform(self.images[i]), self.labels[i]


class MNISTDataModule(InMemoryDataModule):
    """MNIST: 60,000 training images split into train/val, and 10,000 test images.

    Each dataset of the family is a subclass stating its facts (as torchvision's ``FashionMNIST``
    subclasses ``MNIST``); ``MNISTDataModule(name=...)`` builds the one of that name from :data:`DATASETS`.
    """

    name = "mnist"
    folder = "MNIST"  # torchvision's folder name under data_dir
    kind = "images"
    classes = tuple(str(d) for d in range(10))
    input_shape = (1, 28, 28)
    mean, std = 0.1307, 0.3081
    fills_frame = False  # digits sit centred by mass in a 20x20 box

    def __new__(cls, *args: Any, **kwargs: Any) -> MNISTDataModule:
        name = kwargs.get("name", args[0] if args else None)
        if cls is MNISTDataModule and isinstance(name, str) and name in DATASETS:
            cls = DATASETS[name]
        return super().__new__(cls)

    def __init__(
        self,
        name: str | None = None,
        data_dir: str | None = None,
        val_size: int = 5000,
        batch_size: int = 64,
        eval_batch_size: int = 1000,
        download: bool = True,
        augment: str | None = None,
        num_workers: int = 0,
        seed: int = 0,
        steps_per_execution: int = 1,
    ) -> None:
        super().__init__(batch_size, eval_batch_size, seed, steps_per_execution)
        check_data_args(
            name=name,
            data_dir=data_dir,
            val_size=val_size,
            download=download,
            augment=augment,
            num_workers=num_workers,
        )
        if name is not None and name != self.name:
            raise ConfigError(
                f"data.name={name!r} does not fit {type(self).__name__} (data.name={self.name})"
            )
        self.data_dir = Path(data_dir or os.environ.get("NEURONLAB_DATA_DIR", "data")).expanduser()
        self.val_size, self.download = int(val_size), bool(download)
        self.augment, self.num_workers = augment, int(num_workers)
        self._raw: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._save_config(
            name=self.name,
            data_dir=str(self.data_dir),
            val_size=self.val_size,
            batch_size=batch_size,
            eval_batch_size=eval_batch_size,
            download=self.download,
            augment=augment,
            num_workers=self.num_workers,
            seed=seed,
        )

    def _missing(self) -> list[str]:
        return [stem for stem in STEMS if find_file(self.data_dir, self.folder, stem) is None]

    def _not_found(self, reason: str) -> DataNotFoundError:
        folder = self.data_dir / self.folder / "raw"
        files = ", ".join(f"{stem}[.gz]" for stem in STEMS)
        return DataNotFoundError(
            f"{self.name} data not found: expected the four files {files} in {shown(folder)} "
            f"(or directly in {shown(self.data_dir)}); {reason}"
        )

    def prepare_data(self) -> None:
        """Download once (rank 0) through torchvision when files are missing and ``download`` is on."""
        if not self._missing():
            return
        if not self.download:
            raise self._not_found("download is off: set data.download=true or data.data_dir=<your folder>")
        from torchvision import datasets

        dataset_cls = getattr(datasets, self.folder)
        try:
            for train in (True, False):
                dataset_cls(str(self.data_dir), train=train, download=True)
        except Exception as err:  # offline, proxy, disk: all end the same way for the user
            # torchvision says which mirrors it tried over several lines; the last says why they failed
            lines = [line.strip() for line in str(err).splitlines() if line.strip()]
            raise self._not_found(
                f"the download failed ({shown(lines[-1] if lines else type(err).__name__)}): copy the files "
                "there, or set data.data_dir=<a folder that holds them>"
            ) from None

    def _read(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 images ``(N, 1, 28, 28)`` and int64 labels of ``train`` or ``test``, read once."""
        if split in self._raw:
            return self._raw[split]
        if missing := self._missing():
            raise self._not_found(f"missing: {', '.join(missing)}")
        images_file, labels_file = (find_file(self.data_dir, self.folder, s) for s in FILES[split])
        images, labels = read_idx(images_file), read_idx(labels_file)
        if images.dtype != torch.uint8:  # e.g. float32 pixels in [0, 1]: would train on garbage
            raise IDXError(
                f"{images_file}: expected unsigned bytes (IDX type 0x08, pixels 0..255) as MNIST "
                f"stores them, found {str(images.dtype).removeprefix('torch.')}: convert the file"
            )
        if images.ndim != 3 or images.shape[1:] != (28, 28):
            raise IDXError(f"{images_file}: expected images of shape (N, 28, 28), got {tuple(images.shape)}")
        if labels.shape != (len(images),):
            raise IDXError(
                f"{labels_file}: expected {len(images)} labels to match {images_file.name}, "
                f"got shape {tuple(labels.shape)}"
            )
        if labels.is_floating_point():
            raise IDXError(f"{labels_file}: expected integer labels, found {labels.dtype}")
        bad = (labels < 0) | (labels >= self.num_classes)
        if bad.any():
            first = int(bad.nonzero()[0])
            raise IDXError(
                f"{labels_file}: label {int(labels[first])} (sample {first}) is outside "
                f"0..{self.num_classes - 1}; {int(bad.sum())} bad labels: fix or replace the file"
            )
        self._raw[split] = images.unsqueeze(1), labels.long()
        return self._raw[split]

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 -> float32 as torchvision's ``ToTensor`` + ``Normalize`` compute it."""
        return images.float().div(255).sub_(self.mean).div_(self.std)

    def _train_val_indices(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.val_size >= n:
            raise ConfigError(
                f"data.val_size={self.val_size} must be smaller than the {n} training images of {self.name}"
            )
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed))
        return order[self.val_size :], order[: self.val_size]

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit", "validate") and "train" not in self.splits:
            self._read("test")  # checked now: a bad test file is found before training, not after
            images, labels = self._read("train")
            train_idx, val_idx = self._train_val_indices(len(images))
            x = self.normalize(images)
            self.splits["train"] = x[train_idx], labels[train_idx]
            self.splits["val"] = x[val_idx], labels[val_idx]
        if stage in (None, "test", "predict") and "test" not in self.splits:
            images, labels = self._read("test")
            self.splits["test"] = self.normalize(images), labels

    def train_dataloader(self) -> Any:
        if self.augment is None:
            return super().train_dataloader()
        from torchvision.transforms import v2

        images, labels = self._read("train")
        train_idx, _ = self._train_val_indices(len(images))
        transform = v2.Compose(
            [
                v2.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1)),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize([self.mean], [self.std]),
            ]
        )
        dataset = AugmentedDataset(images[train_idx], labels[train_idx], transform)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=True,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            generator=torch.Generator().manual_seed(self.seed),
        )


class FashionMNISTDataModule(MNISTDataModule):
    """Fashion-MNIST: the same shapes and splits as MNIST, ten kinds of clothing."""

    name = "fashion_mnist"
    folder = "FashionMNIST"
    classes = (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    )
    mean, std = 0.2860, 0.3530
    fills_frame = True  # clothes fill the 28x28 frame


DATASETS: dict[str, type[MNISTDataModule]] = {
    cls.name: cls for cls in (MNISTDataModule, FashionMNISTDataModule)
}
"""The MNIST family by ``data.name``."""
