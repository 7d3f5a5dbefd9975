import functools

import pytest
import torch
from torchmetrics import MeanMetric
from torchmetrics.classification import Accuracy

from neuronlab.models import MNISTClassifier, SimpleNN
from neuronlab.tasks import Classifier
from neuronlab.tasks.classifier import EpochStats


@pytest.mark.parametrize("binary", [True, False])
def test_epoch_stats_equal_torchmetrics_over_uneven_batches(binary):
    task = Classifier(SimpleNN() if binary else MNISTClassifier(), optimizer=None)
    reference_acc = (
        Accuracy(task="binary") if binary else Accuracy(task="multiclass", num_classes=10, average="micro")
    )
    reference_loss, stats = MeanMetric(), EpochStats()
    generator = torch.Generator().manual_seed(0)
    for size in (64, 64, 17):
        preds = (
            torch.rand(size, generator=generator) if binary else torch.randn(size, 10, generator=generator)
        )
        y = torch.randint(0, 2 if binary else 10, (size,), generator=generator)
        loss = torch.rand((), generator=generator)
        stats.update(loss, task._correct(preds, y), size)
        reference_acc.update(preds, y)
        reference_loss.update(loss, weight=size)
    loss, acc = stats.compute()
    torch.testing.assert_close(acc, reference_acc.compute())
    torch.testing.assert_close(loss, reference_loss.compute())
    stats.reset()
    assert stats.count == 0


def test_hyper_parameters_are_plain_values():
    optimizer = functools.partial(torch.optim.Adam, lr=0.1, betas=[0.9, 0.99])
    task = Classifier(SimpleNN(), optimizer=optimizer)
    assert task.hparams["optimizer"] == {"name": "torch.optim.adam.Adam", "lr": 0.1, "betas": [0.9, 0.99]}
    assert task.hparams["net"]["_target_"] == "neuronlab.models.mlp.SimpleNN"
    assert task.binary and task.num_classes == 2


def test_output_size_must_match_classes():
    with pytest.raises(ValueError, match="10 outputs but the data has 5 classes"):
        Classifier(MNISTClassifier(), num_classes=5)
