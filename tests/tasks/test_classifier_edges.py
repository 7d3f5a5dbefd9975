"""Edges of the LightningModule that the training runs do not reach (found by mutation testing)."""

import pytest
import torch

from neuronlab.models import SimpleNN
from neuronlab.tasks import Classifier
from neuronlab.tasks.classifier import EpochStats


def test_epoch_stats_of_a_single_sample_and_of_none():
    stats = EpochStats()
    loss, acc = stats.compute()
    assert (loss.item(), acc.item()) == (0.0, 0.0)  # an empty epoch: zeros, not a division by zero
    stats.reset()
    stats.update(torch.tensor(0.75), torch.tensor(1), 1)
    loss, acc = stats.compute()
    assert (loss.item(), acc.item()) == (0.75, 1.0)


def test_a_classifier_without_an_optimizer_only_evaluates():
    with pytest.raises(
        RuntimeError, match="^Classifier was built without an optimizer; it can only evaluate$"
    ):
        Classifier(SimpleNN()).configure_optimizers()


def test_tasks_import_only_the_rooms_below_them():
    """tasks/ uses models/ and the ground floor; io/ (checkpoints) uses tasks/, never the other way round."""
    import ast
    from pathlib import Path

    import neuronlab.tasks

    allowed = ("neuronlab.tasks", "neuronlab.models", "neuronlab.errors")
    for file in Path(neuronlab.tasks.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(file.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                assert not name.startswith("neuronlab") or name.startswith(allowed), (file.name, name)
