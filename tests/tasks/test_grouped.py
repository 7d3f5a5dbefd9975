"""GroupedClassifier: K optimizer steps per Lightning step, through Lightning's manual optimization."""

import copy
import functools

import lightning.pytorch as L
import pytest
import torch
from lightning.pytorch.loops import _TrainingEpochLoop
from lightning.pytorch.plugins.precision import MixedPrecision

from neuronlab.models import MNISTClassifier
from neuronlab.tasks import Classifier, GroupedClassifier
from tests.tasks.test_classifier import tiny_mnist


def test_the_one_lightning_internal_it_touches_is_still_there():
    """GroupedClassifier adds K-1 to ``fit_loop.epoch_loop._batches_that_stepped`` after each group (the
    step loggers and checkpoints count). If Lightning renames or drops it, this fails: update grouped.py."""
    loop = _TrainingEpochLoop(L.Trainer(logger=False))
    assert isinstance(loop._batches_that_stepped, int)
    assert loop.state_dict()["state_dict"] == {"_batches_that_stepped": 0}  # what checkpoints store


def test_loggers_count_optimizer_steps(tmp_path):
    """The per-epoch metrics land at the optimizer step they were logged at, as with K=1."""
    import csv

    from lightning.pytorch.loggers import CSVLogger

    dm = tiny_mnist(tmp_path, n_train=600, val_size=100, batch_size=32, steps_per_execution=5)
    logger = CSVLogger(tmp_path, name="csv")
    trainer = L.Trainer(max_epochs=2, logger=logger, enable_checkpointing=False, enable_progress_bar=False)
    optimizer = functools.partial(torch.optim.SGD, lr=0.1)
    trainer.fit(GroupedClassifier(MNISTClassifier(hidden_sizes=[8]), optimizer=optimizer), datamodule=dm)
    with open(f"{logger.log_dir}/metrics.csv") as f:
        rows = [row for row in csv.DictReader(f) if row["train/loss"]]
    assert [int(row["step"]) for row in rows] == [15, 31]  # 16 mini-batches an epoch, 4 Lightning steps
    assert trainer.global_step == 32


@pytest.mark.parametrize("clip", [None, 0.05])
def test_a_gradient_scaler_unscales_before_clipping_on_every_step(tmp_path, clip):
    """16-mixed's gradient scaler (here on the CPU): each optimizer step goes through Lightning's precision
    plugin (scaled backward, unscale, clip, step, scale update), so K=4 ends bit for bit where Lightning's
    automatic optimization does with K=1."""
    weights = []
    for cls, k in ((Classifier, 1), (GroupedClassifier, 4)):
        dm = tiny_mnist(tmp_path / str(k), n_train=600, val_size=100, batch_size=32, steps_per_execution=k)
        torch.manual_seed(0)
        net = MNISTClassifier(hidden_sizes=[16], dropout=0.0)
        task = cls(copy.deepcopy(net), optimizer=functools.partial(torch.optim.Adam, lr=0.01))
        scaler = torch.amp.GradScaler("cpu", init_scale=2.0**12)
        trainer = L.Trainer(
            max_epochs=1,
            accelerator="cpu",
            plugins=[MixedPrecision("16-mixed", "cpu", scaler=scaler)],
            gradient_clip_val=clip,
            deterministic=True,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
        )
        trainer.fit(task, datamodule=dm)
        assert trainer.global_step == 16
        weights.append(task.net.state_dict())
    for name, value in weights[0].items():
        assert torch.equal(weights[1][name], value), name
