import pytest
import torch

from neuronlab.data import GATES, GatesDataModule


@pytest.mark.parametrize(
    ("gate", "table"),
    [("xor", [0, 1, 1, 0]), ("and", [0, 0, 0, 1]), ("or", [0, 1, 1, 1]), ("nand", [1, 1, 1, 0])],
)
def test_truth_tables(gate, table):
    dm = GatesDataModule(gate=gate)
    dm.setup("fit")
    for split in ("train", "val", "test"):
        x, y = dm.splits[split]
        assert x.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
        assert y.tolist() == table


def test_one_batch_by_default_and_repeats_with_noise():
    dm = GatesDataModule(gate="xor", repeats=5, noise=0.1, seed=3)
    dm.setup("fit")
    batches = list(dm.train_dataloader())
    assert len(batches) == 1
    x, y = batches[0]
    assert x.shape == (20, 2) and y.shape == (20,)
    assert not torch.equal(x, x.round())  # noise was added
    assert (x - x.round()).abs().max() < 0.6
    corners = x.round().long()
    assert y.tolist() == [GATES["xor"][2 * a + b] for a, b in corners.tolist()]  # shuffled, labels follow
    assert sorted(y.tolist()) == sorted(GATES["xor"] * 5)
    val_x, _ = next(iter(dm.val_dataloader()))
    assert torch.equal(val_x, val_x.round())  # validation is the exact four points


def test_bad_gate_lists_options():
    with pytest.raises(ValueError, match="data.gate='xnor'.*xor, and, or"):
        GatesDataModule(gate="xnor")
