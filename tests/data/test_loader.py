"""The in-memory loader: the same samples as torchvision's dataset, reshuffled per epoch, sharded for DDP."""

from __future__ import annotations

import pytest
import torch

from neuronlab.data import InMemoryLoader, MNISTDataModule
from tests.conftest import torchvision_mnist, write_mnist


def epoch_of(loader: InMemoryLoader, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
    loader.set_epoch(epoch)
    xs, ys = zip(*loader, strict=True)
    return torch.cat(xs), torch.cat(ys)


def test_yields_torchvisions_samples_each_exactly_once_per_epoch(tmp_path):
    write_mnist(tmp_path, "MNIST", n_train=90, n_test=70)
    dm = MNISTDataModule(name="mnist", data_dir=str(tmp_path), val_size=10, batch_size=16, download=False)
    dm.setup("test")
    reference = torchvision_mnist(tmp_path, train=False)
    ref_x = torch.stack([reference[i][0] for i in range(len(reference))])
    ref_y = torch.tensor([reference[i][1] for i in range(len(reference))])
    x, y = dm.splits["test"]
    loader = InMemoryLoader(x, y, batch_size=16, shuffle=True, seed=5)
    seen_x, seen_y = epoch_of(loader, 0)
    assert len(seen_y) == 70 and len(loader) == 5
    # every torchvision sample appears exactly once, with identical normalised values
    order = loader.indices()
    assert sorted(order.tolist()) == list(range(70))
    assert torch.equal(seen_x, ref_x[order]) and torch.equal(seen_y, ref_y[order])


def test_order_changes_across_epochs_and_repeats_for_the_same_seed():
    x, y = torch.arange(100).float().unsqueeze(1), torch.arange(100)
    a = InMemoryLoader(x, y, batch_size=10, shuffle=True, seed=1)
    b = InMemoryLoader(x, y, batch_size=10, shuffle=True, seed=1)
    first, second = epoch_of(a, 0)[1], epoch_of(a, 1)[1]
    assert not torch.equal(first, second)
    assert torch.equal(first, epoch_of(b, 0)[1]) and torch.equal(second, epoch_of(b, 1)[1])
    assert not torch.equal(first, epoch_of(InMemoryLoader(x, y, 10, shuffle=True, seed=2), 0)[1])
    assert torch.equal(epoch_of(InMemoryLoader(x, y, 10), 0)[1], y)  # evaluation: in order


@pytest.mark.parametrize("world", [2, 3, 4])
def test_ddp_shards_cover_the_split_without_overlap(world):
    n = 103
    x, y = torch.zeros(n, 1), torch.arange(n)
    # evaluation: every sample exactly once over all ranks, shards differ in size by at most one
    shards = [epoch_of(InMemoryLoader(x, y, 8, rank=r, world_size=world), 0)[1] for r in range(world)]
    assert sorted(torch.cat(shards).tolist()) == list(range(n))
    assert max(map(len, shards)) - min(map(len, shards)) <= 1
    # training: equal shards (same number of steps on every rank), disjoint, reshuffled each epoch
    for epoch in (0, 1):
        loaders = [
            InMemoryLoader(x, y, 8, shuffle=True, seed=0, rank=r, world_size=world) for r in range(world)
        ]
        train = [epoch_of(loader, epoch)[1] for loader in loaders]
        assert len({len(t) for t in train}) == 1 and len(train[0]) == n // world
        assert len({len(loader) for loader in loaders}) == 1
        flat = torch.cat(train).tolist()
        assert len(set(flat)) == len(flat) == n - n % world


def test_lightning_sets_the_epoch_through_the_sampler_hook():
    from lightning.fabric.utilities.data import _set_sampler_epoch

    loader = InMemoryLoader(torch.zeros(10, 1), torch.arange(10), 4, shuffle=True)
    _set_sampler_epoch(loader, 7)
    assert loader.epoch == 7


def test_in_memory_and_torchvision_paths_reach_the_same_accuracy(compose_cfg, mnist_dir, tmp_path):
    """The same task, seed and epochs, once on neuronlab's loader and once on torchvision's DataLoader."""
    import lightning.pytorch as L
    from hydra.utils import instantiate
    from torch.utils.data import DataLoader, Subset

    from neuronlab.train import train

    common = ["experiment=mnist", f"paths.data_dir={mnist_dir}", "data.val_size=100", "trainer.max_epochs=2"]
    fast = train(compose_cfg(common))

    cfg = compose_cfg(common, run_dir=tmp_path / "torchvision")
    L.seed_everything(0)
    dm = MNISTDataModule(name="mnist", data_dir=str(mnist_dir), val_size=100, download=False)
    task = instantiate(cfg.task)
    train_set = torchvision_mnist(mnist_dir, train=True)
    train_idx, val_idx = dm._train_val_indices(len(train_set))
    trainer = L.Trainer(max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.fit(
        task,
        DataLoader(Subset(train_set, train_idx.tolist()), batch_size=64, shuffle=True),
        DataLoader(Subset(train_set, val_idx.tolist()), batch_size=1000),
    )
    trainer.test(task, DataLoader(torchvision_mnist(mnist_dir, train=False), batch_size=1000))
    reference = float(trainer.callback_metrics["test/acc"])
    assert fast["test/acc"] > 0.9
    assert fast["test/acc"] == pytest.approx(reference, abs=0.05)


def test_augment_path_trains_too(compose_cfg, mnist_dir):
    from neuronlab.train import train

    common = ["experiment=mnist", f"paths.data_dir={mnist_dir}", "data.val_size=100", "trainer.max_epochs=2"]
    assert train(compose_cfg([*common, "data.augment=affine"]))["test/acc"] > 0.8


@pytest.mark.parametrize("k", [1, 3, 4, 16])
def test_steps_per_execution_groups_the_same_batches_in_the_same_order(k):
    x, y = torch.arange(100).float().unsqueeze(1), torch.arange(100)
    plain = InMemoryLoader(x, y, batch_size=8, shuffle=True, seed=2)
    grouped = InMemoryLoader(x, y, batch_size=8, shuffle=True, seed=2, steps_per_execution=k)
    for epoch in (0, 1):
        plain.set_epoch(epoch)
        grouped.set_epoch(epoch)
        batches = list(plain)
        groups = list(grouped) if k > 1 else [[b] for b in grouped]
        assert len(grouped) == len(groups) == -(-13 // k) and grouped.num_batches == 13
        assert all(len(g) == k for g in groups[:-1]) and 1 <= len(groups[-1]) <= k
        flat = [b for g in groups for b in g]
        assert len(flat) == len(batches)
        for (gx, gy), (x_, y_) in zip(flat, batches, strict=True):
            assert torch.equal(gx, x_) and torch.equal(gy, y_)


def test_evaluation_loaders_stay_one_batch_per_step(tmp_path):
    write_mnist(tmp_path, "MNIST", n_train=90, n_test=70)
    dm = MNISTDataModule(
        name="mnist",
        data_dir=str(tmp_path),
        val_size=10,
        batch_size=16,
        download=False,
        steps_per_execution=4,
    )
    dm.setup("fit")
    dm.setup("test")
    assert dm.train_dataloader().steps_per_execution == 4 and len(dm.train_dataloader()) == 2
    assert dm.val_dataloader().steps_per_execution == dm.test_dataloader().steps_per_execution == 1
    with pytest.raises(ValueError, match="data.steps_per_execution=0"):
        MNISTDataModule(name="mnist", data_dir=str(tmp_path), steps_per_execution=0)


def test_the_datamodule_hands_each_rank_of_its_trainer_its_own_shard():
    """The DataModule's loaders ask the trainer for the process's rank and world size (the real DDP
    run is in tests/test_ddp.py; here a trainer-shaped object makes rank 1 of 2 in this process)."""
    from types import SimpleNamespace

    from neuronlab.data import GatesDataModule

    dm = GatesDataModule(gate="xor", repeats=25, noise=0.1, batch_size=8, seed=4)
    dm.setup("fit")
    cpu = SimpleNamespace(root_device=torch.device("cpu"))
    shards = {}
    for rank in (0, 1):
        dm.trainer = SimpleNamespace(global_rank=rank, world_size=2, strategy=cpu)
        train, val = dm.train_dataloader(), dm.val_dataloader()
        assert (train.rank, train.world_size, train.shuffle, train.seed) == (rank, 2, True, 4)
        assert len(train) == 7 and sum(len(y) for _, y in train) == 50  # 100 points: 50 a rank, 8 a step
        shards[rank] = torch.cat([x for x, _ in val])
        assert not dm.test_dataloader().shuffle and len(dm.test_dataloader()) == 1
    assert torch.equal(torch.cat([shards[0], shards[1]]), dm.splits["val"][0][[0, 2, 1, 3]])
    dm.trainer = None
    assert sum(len(y) for _, y in dm.train_dataloader()) == 100
    dm.eval_batch_size = 3  # the MNIST family's data.eval_batch_size: evaluation only
    assert (dm.train_dataloader().batch_size, dm.val_dataloader().batch_size) == (8, 3)
    predict = dm.predict_dataloader()
    assert torch.equal(torch.cat([x for x, _ in predict]), dm.splits["test"][0]) and not predict.shuffle


def test_loader_checks_its_arguments_and_keeps_its_defaults():
    x, y = torch.arange(10).float().unsqueeze(1), torch.arange(10)
    with pytest.raises(ValueError, match="^batch_size=0 must be positive$"):
        InMemoryLoader(x, y, 0)
    with pytest.raises(ValueError, match="^x has 10 samples but y has 9$"):
        InMemoryLoader(x, y[:9], 4)
    one = InMemoryLoader(x, y, 1)
    assert len(one) == 10 and [b[1].item() for b in one] == list(range(10))

    loader = InMemoryLoader(x, y, 4, shuffle=True)  # seed 0, epoch 0, rank 0 of 1, last batch kept
    assert (loader.seed, loader.epoch, loader.rank, loader.world_size) == (0, 0, 0, 1)
    assert loader.sampler is loader and loader.batch_sampler is None  # what Lightning looks for
    # the order of a seed and epoch is fixed: a rerun, or a resume with a later neuronlab, draws the same
    for epoch in (0, 3):
        expected = torch.randperm(10, generator=torch.Generator().manual_seed(0 + epoch))
        loader.set_epoch(epoch)
        assert torch.equal(loader.indices(), expected)
        assert torch.equal(torch.cat([b for _, b in loader]), expected)
    loader.seed = 5
    assert torch.equal(loader.indices(), torch.randperm(10, generator=torch.Generator().manual_seed(5 + 3)))


@pytest.mark.parametrize("world", [1, 3])
@pytest.mark.parametrize("shuffle", [False, True])
def test_len_is_the_number_of_batches_yielded(world, shuffle):
    x, y = torch.zeros(23, 1), torch.arange(23)
    for rank in range(world):
        loader = InMemoryLoader(x, y, 4, shuffle=shuffle, rank=rank, world_size=world)
        batches = [len(b) for _, b in loader]
        assert len(loader) == len(batches), (rank, batches)
        assert all(0 < size <= 4 for size in batches)
        assert sum(batches) == (23 // world if shuffle else len(range(rank, 23, world)))


def test_datamodule_checks_batch_sizes_and_records_how_to_rebuild_it():
    from neuronlab.data import GatesDataModule

    with pytest.raises(
        ValueError, match=r"^data.batch_size=0 must be a positive integer \(or null: all at once\)$"
    ):
        GatesDataModule(batch_size=0)
    dm = GatesDataModule(batch_size=1, seed=None)
    assert (dm.batch_size, dm.eval_batch_size, dm.seed) == (1, 1, 0)
    assert dm.hparams["_target_"] == "neuronlab.data.gates.GatesDataModule" and dm.hparams["batch_size"] == 1
    assert GatesDataModule().eval_batch_size is None  # null: all at once
