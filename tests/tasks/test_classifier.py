import functools

import lightning.pytorch as L
import pytest
import torch
from torchmetrics import MeanMetric
from torchmetrics.classification import Accuracy

from neuronlab.models import MNISTClassifier, SimpleNN
from neuronlab.tasks import Classifier, GroupedClassifier
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


@pytest.mark.parametrize(
    ("net", "gate", "message"),
    [
        (
            MNISTClassifier(),
            "xor",
            "model.input_size=784 does not match data=xor, whose samples have 2 features: pick a model made "
            "for it or set model.input_size=2",
        ),
        (
            SimpleNN(output_size=3),
            "and",
            "model.output_size=3 does not match data=and, which has 2 classes: set model.output_size=2 "
            "(or 1 for a single sigmoid output)",
        ),
    ],
)
@pytest.mark.parametrize("stage", ["fit", "test"])
def test_the_net_is_checked_against_the_data_as_training_or_testing_starts(
    tmp_path, net, gate, message, stage
):
    import lightning.pytorch as L

    from neuronlab.data import GatesDataModule
    from neuronlab.errors import NeuronlabError

    task = Classifier(net, optimizer=functools.partial(torch.optim.SGD, lr=0.1))
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, default_root_dir=tmp_path)
    with pytest.raises(NeuronlabError) as refused:
        getattr(trainer, stage)(task, datamodule=GatesDataModule(gate=gate))
    assert str(refused.value) == message
    assert trainer.global_step == 0
    fits = Classifier(SimpleNN(), optimizer=functools.partial(torch.optim.SGD, lr=0.1))
    getattr(trainer, stage)(fits, datamodule=GatesDataModule(gate=gate))  # the same data, a net that fits


def step_scheduled(cls):
    """The task with its scheduler stepped after every optimizer step (Lightning's ``interval``)."""

    class StepScheduled(cls):
        def configure_optimizers(self):
            config = super().configure_optimizers()
            config["lr_scheduler"]["interval"] = "step"
            return config

    return StepScheduled


@pytest.mark.parametrize(
    ("cls", "k", "interval"),
    [
        (Classifier, 1, "epoch"),
        (Classifier, 1, "step"),
        (GroupedClassifier, 1, "epoch"),
        (GroupedClassifier, 5, "epoch"),
        (GroupedClassifier, 5, "step"),
    ],
)
def test_k_steps_per_lightning_step_equal_a_plain_pytorch_loop(tmp_path, cls, k, interval):
    """Forward, backward, gradient clipping (trainer.gradient_clip_val), step and scheduler, per mini-batch:
    Lightning's automatic optimization, and K mini-batches per Lightning step (GroupedClassifier), end with
    the weights of a plain loop over the same batches, bit for bit."""
    import copy

    import lightning.pytorch as L
    import torch.nn.functional as F

    from neuronlab.data import MNISTDataModule
    from tests.conftest import write_mnist

    write_mnist(tmp_path, "MNIST", n_train=600, n_test=50)
    torch.manual_seed(0)
    net = MNISTClassifier(hidden_sizes=[32], dropout=0.0)
    start = copy.deepcopy(net)
    data = dict(name="mnist", data_dir=str(tmp_path), val_size=100, batch_size=32, download=False)
    dm = MNISTDataModule(**data, steps_per_execution=k)
    optimizer = functools.partial(torch.optim.SGD, lr=0.5, momentum=0.5)
    step_size = 7 if interval == "step" else 1
    scheduler = functools.partial(torch.optim.lr_scheduler.StepLR, step_size=step_size, gamma=0.5)
    cls = step_scheduled(cls) if interval == "step" else cls
    task = cls(net, optimizer=optimizer, scheduler=scheduler, num_classes=10)
    trainer = L.Trainer(
        max_epochs=2,
        gradient_clip_val=0.05,  # small enough to clip every step
        deterministic=True,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(task, datamodule=dm)
    assert trainer.global_step == 2 * 16  # optimizer steps: 500 images in batches of 32

    reference_dm = MNISTDataModule(**data)
    reference_dm.setup("fit")
    loader = reference_dm.train_dataloader()
    opt = optimizer(params=start.parameters())
    sched = scheduler(optimizer=opt)
    clipped = 0
    for epoch in range(2):
        loader.set_epoch(epoch)
        for x, y in loader:
            F.cross_entropy(start(x), y).backward()
            clipped += float(torch.nn.utils.clip_grad_norm_(start.parameters(), 0.05)) > 0.05
            opt.step()
            opt.zero_grad()
            if interval == "step":
                sched.step()
        if interval == "epoch":
            sched.step()
    assert clipped == 32  # the clip mattered at every step
    for (name, got), expected in zip(net.state_dict().items(), start.state_dict().values(), strict=True):
        assert torch.equal(got, expected), name  # bit for bit
    assert opt.param_groups[0]["lr"] == task.optimizers().param_groups[0]["lr"]


@pytest.mark.parametrize(("cls", "k"), [(Classifier, 1), (GroupedClassifier, 2)])
def test_plateau_scheduler_reads_its_monitor_once_per_epoch(tmp_path, cls, k):
    dm = tiny_mnist(tmp_path, n_train=300, val_size=50, batch_size=50, steps_per_execution=k)
    optimizer = functools.partial(torch.optim.SGD, lr=1e-6)  # nothing improves: the plateau cuts the lr
    scheduler = functools.partial(torch.optim.lr_scheduler.ReduceLROnPlateau, factor=0.1, patience=0)
    task = cls(MNISTClassifier(hidden_sizes=[8]), optimizer=optimizer, scheduler=scheduler)
    trainer = L.Trainer(max_epochs=3, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.fit(task, datamodule=dm)
    lr = task.optimizers().param_groups[0]["lr"]
    assert lr == pytest.approx(1e-8)  # 3 epochs: a first best, then no better twice (lr 1e-6: no change)


def tiny_mnist(tmp_path, n_train: int, **kwargs):
    """An MNISTDataModule on ``n_train`` written training images (and 50 test images)."""
    from neuronlab.data import MNISTDataModule
    from tests.conftest import write_mnist

    write_mnist(tmp_path, "MNIST", n_train=n_train, n_test=50)
    return MNISTDataModule(name="mnist", data_dir=str(tmp_path), download=False, **kwargs)


class CountHooks(L.Callback):
    """Counts the per-optimizer-step hooks Lightning calls on callbacks, and the Lightning steps."""

    def __init__(self) -> None:
        self.counts = {"before_backward": 0, "backward": 0, "optimizer_step": 0, "batches": 0}

    def on_before_backward(self, trainer, pl_module, loss) -> None:
        self.counts["before_backward"] += 1

    def on_after_backward(self, trainer, pl_module) -> None:
        self.counts["backward"] += 1

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self.counts["optimizer_step"] += 1

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.counts["batches"] += 1


@pytest.mark.parametrize(("cls", "k", "lightning_steps"), [(Classifier, 1, 16), (GroupedClassifier, 5, 4)])
def test_callbacks_see_the_per_step_hooks_on_every_optimizer_step(tmp_path, cls, k, lightning_steps):
    """K optimizer steps per Lightning step (16 an epoch here, in groups of 5+5+5+1): the callbacks'
    backward and optimizer-step hooks run on every optimizer step, the batch hooks once per group, and
    ``global_step`` counts optimizer steps."""
    dm = tiny_mnist(tmp_path, n_train=600, val_size=100, batch_size=32, steps_per_execution=k)
    counter = CountHooks()
    trainer = L.Trainer(
        max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False, callbacks=[counter]
    )
    optimizer = functools.partial(torch.optim.SGD, lr=0.1)
    trainer.fit(cls(MNISTClassifier(hidden_sizes=[8]), optimizer=optimizer), datamodule=dm)
    assert trainer.global_step == 16
    assert counter.counts == {
        "before_backward": 16,
        "backward": 16,
        "optimizer_step": 16,
        "batches": lightning_steps,
    }


def test_the_plain_classifier_refuses_groups_of_mini_batches(tmp_path):
    from neuronlab.errors import NeuronlabError

    dm = tiny_mnist(tmp_path, n_train=300, val_size=50, batch_size=50, steps_per_execution=2)
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    task = Classifier(MNISTClassifier(hidden_sizes=[8]), optimizer=functools.partial(torch.optim.SGD, lr=0.1))
    with pytest.raises(NeuronlabError, match="data.steps_per_execution=2 .*GroupedClassifier"):
        trainer.fit(task, datamodule=dm)
