import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from neuronlab.data import IDXError, MNISTDataModule, read_idx
from neuronlab.data.idx import write_idx
from neuronlab.data.mnist import DataNotFoundError
from tests.conftest import make_images, torchvision_mnist, write_mnist


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path, suffix):
    images, labels = make_images(7, 0)
    write_idx(tmp_path / f"img{suffix}", images)
    write_idx(tmp_path / f"lab{suffix}", labels)
    assert torch.equal(read_idx(tmp_path / f"img{suffix}"), torch.from_numpy(images))
    assert read_idx(tmp_path / f"lab{suffix}").tolist() == labels.tolist()
    if suffix:
        with gzip.open(tmp_path / "img.gz") as f:
            assert f.read(4) == bytes([0, 0, 8, 3])


def test_truncated_idx_is_named(tmp_path):
    write_idx(tmp_path / "img", make_images(5, 0)[0])
    data = (tmp_path / "img").read_bytes()
    (tmp_path / "img").write_bytes(data[:-100])
    with pytest.raises(IDXError, match=r"img: header says shape \(5, 28, 28\).*truncated"):
        read_idx(tmp_path / "img")
    (tmp_path / "bad").write_bytes(b"hello world")
    with pytest.raises(IDXError, match="not an IDX file"):
        read_idx(tmp_path / "bad")


@pytest.mark.parametrize(
    ("name", "folder", "gz"), [("mnist", "MNIST", False), ("fashion_mnist", "FashionMNIST", True)]
)
def test_reads_torchvision_layout_and_splits(tmp_path, name, folder, gz):
    write_mnist(tmp_path, folder, n_train=300, n_test=120, gz=gz)
    dm = MNISTDataModule(name=name, data_dir=str(tmp_path), val_size=50, batch_size=32, download=False)
    dm.setup(None)
    assert dm.splits["train"][0].shape == (250, 1, 28, 28)
    assert dm.splits["val"][0].shape == (50, 1, 28, 28)
    assert dm.splits["test"][0].shape == (120, 1, 28, 28)
    assert dm.splits["train"][0].dtype == torch.float32
    # train and val are disjoint and together the whole training file
    seen = torch.cat([dm.splits["train"][0], dm.splits["val"][0]]).flatten(1)
    assert torch.unique(seen, dim=0).shape[0] == 300
    batches = list(dm.train_dataloader())
    assert (
        len(batches) == 8
        and batches[0][0].shape == (32, 1, 28, 28)
        and batches[-1][0].shape == (26, 1, 28, 28)
    )


def test_normalisation_matches_torchvision(tmp_path):
    write_mnist(tmp_path, "MNIST", n_train=64, n_test=32)
    dm = MNISTDataModule(name="mnist", data_dir=str(tmp_path), val_size=0, batch_size=8, download=False)
    dm.setup("test")
    tv = torchvision_mnist(tmp_path, train=False)
    ours_x, ours_y = dm.splits["test"]
    for i in (0, 5, 31):
        x, y = tv[i]
        assert torch.equal(ours_x[i], x)
        assert int(ours_y[i]) == y


def test_flat_folder_of_four_files(tmp_path):
    write_mnist(tmp_path, "MNIST", n_train=40, n_test=20, gz=True)
    flat = tmp_path / "flat"
    (tmp_path / "MNIST" / "raw").rename(flat)
    dm = MNISTDataModule(name="mnist", data_dir=str(flat), val_size=10, download=False)
    dm.setup(None)
    assert dm.splits["test"][0].shape[0] == 20


def test_missing_files_offline_names_folder_and_files(tmp_path):
    dm = MNISTDataModule(name="mnist", data_dir=str(tmp_path / "nowhere"), download=False)
    with pytest.raises(DataNotFoundError) as err:
        dm.prepare_data()
    message = str(err.value)
    assert str(tmp_path / "nowhere" / "MNIST" / "raw") in message
    for stem in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        assert stem in message
    assert "data.download=true" in message


def test_val_size_must_leave_training_data(tmp_path):
    write_mnist(tmp_path, "MNIST", n_train=40, n_test=20)
    dm = MNISTDataModule(name="mnist", data_dir=str(tmp_path), val_size=40, download=False)
    with pytest.raises(ValueError, match="data.val_size=40 must be smaller than the 40 training images"):
        dm.setup("fit")


def test_labels_must_match_images(tmp_path):
    write_mnist(tmp_path, "MNIST", n_train=40, n_test=20)
    write_idx(tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte", np.zeros(19, dtype=np.uint8))
    dm = MNISTDataModule(name="mnist", data_dir=str(tmp_path), val_size=10, download=False)
    with pytest.raises(IDXError, match="expected 20 labels"):
        dm.setup("test")


def test_augment_path_uses_torchvision_transforms(tmp_path):
    write_mnist(tmp_path, "MNIST", n_train=40, n_test=20)
    dm = MNISTDataModule(
        name="mnist", data_dir=str(tmp_path), val_size=10, batch_size=8, augment="affine", download=False
    )
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert isinstance(loader, torch.utils.data.DataLoader)
    x, y = next(iter(loader))
    assert x.shape == (8, 1, 28, 28) and x.dtype == torch.float32 and y.shape == (8,)
    assert Path(dm.data_dir) == tmp_path
