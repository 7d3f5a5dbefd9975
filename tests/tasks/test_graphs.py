"""GraphClassifier: the K optimizer steps of a group recorded as one CUDA graph and replayed.

On the CPU the very body the graph records (``group_steps``) runs eagerly: those tests prove its arithmetic
(the same weights, metrics and ``global_step`` as GroupedClassifier, bit for bit: the same operations in
the same order on the same numbers) and its resume. The tests whose names contain ``gpu`` need CUDA
(``pytest -k gpu`` on a GPU machine; ``scripts/device_check.sh`` runs them) and check the recording itself.
"""

from __future__ import annotations

import copy
import functools
import logging

import lightning.pytorch as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.precision import MixedPrecision

from neuronlab.errors import ConfigError
from neuronlab.models import MNISTClassifier
from neuronlab.tasks import GraphClassifier, GroupedClassifier, graphs
from tests.tasks.test_classifier import CountHooks, step_scheduled, tiny_mnist

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
ADAM = functools.partial(torch.optim.Adam, lr=0.01)
STEP_LR = functools.partial(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5)


def fit(tmp_path, task, epochs=2, k=5, ckpt_path=None, callbacks=(), **trainer_args):
    """Fit on 500 tiny training images in batches of 32 (16 mini-batches an epoch, the last of 20
    images): with K=5, groups of 5, 5, 5 and 1; with K=4, four groups, the last one ending short."""
    dm = tiny_mnist(tmp_path, n_train=600, val_size=100, batch_size=32, steps_per_execution=k, seed=3)
    trainer = L.Trainer(
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=bool(callbacks),
        callbacks=list(callbacks),
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        **trainer_args,
    )
    trainer.fit(task, datamodule=dm, ckpt_path=ckpt_path)
    return trainer


def net(seed=0, dropout=0.2):
    torch.manual_seed(seed)
    return MNISTClassifier(hidden_sizes=[16], dropout=dropout)


def assert_same_weights(a, b, relative: float = 0.0):
    """Bit for bit, or each tensor within ``relative`` of its norm (Adam can turn a last-bit difference
    in a near-zero gradient into a visible one in a few weights: elementwise tolerances test the wrong
    thing)."""
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        if relative:
            assert float((x.float() - y.float()).norm()) <= relative * float(x.float().norm()), name
        else:
            assert torch.equal(x, y), name


@pytest.fixture
def body_on_cpu(monkeypatch):
    """Capture declared supported on the CPU: the task then runs its graph's body eagerly."""
    monkeypatch.setattr(graphs, "unsupported", lambda trainer, task: None)


def test_the_graphs_body_equals_the_grouped_steps_bit_for_bit(tmp_path, body_on_cpu):
    """Adam, dropout, clipping and a per-epoch scheduler, groups of 5, 5, 5 and 1: the body the graph
    records ends with GroupedClassifier's weights, metrics, learning rate and global_step, bit for bit."""
    start = net()
    tasks, trainers = [], []
    for cls in (GroupedClassifier, GraphClassifier):
        seed = L.seed_everything(0, verbose=False)
        task = cls(copy.deepcopy(start), optimizer=ADAM, scheduler=STEP_LR)
        trainers.append(fit(tmp_path / str(seed) / cls.__name__, task, gradient_clip_val=0.05))
        tasks.append(task)
    grouped, captured = tasks
    assert captured.capture and not grouped.automatic_optimization
    assert_same_weights(grouped.net, captured.net)
    assert trainers[0].global_step == trainers[1].global_step == 32
    assert trainers[0].callback_metrics.keys() == trainers[1].callback_metrics.keys()
    for name, value in trainers[0].callback_metrics.items():
        assert torch.equal(value, trainers[1].callback_metrics[name]), name
    assert trainers[1].callback_metrics["train/acc"] > 0.3  # it learned
    lrs = [t.optimizers().param_groups[0]["lr"] for t in tasks]
    assert lrs[0] == lrs[1] == 0.01 / 4
    assert int(captured.first_nonfinite) == -1


def test_a_resume_from_the_graphs_checkpoint_continues_exactly(tmp_path, body_on_cpu):
    """Two epochs in one go, and one epoch then a resume from its checkpoint: the same weights and
    global_step, equal to GroupedClassifier's two epochs (dropout's generator restored too)."""
    start = net()
    L.seed_everything(0, verbose=False)
    whole = GraphClassifier(copy.deepcopy(start), optimizer=ADAM, scheduler=STEP_LR)
    fit(tmp_path / "whole", whole)
    L.seed_everything(0, verbose=False)
    first = GraphClassifier(copy.deepcopy(start), optimizer=ADAM, scheduler=STEP_LR)
    every = ModelCheckpoint(dirpath=tmp_path / "ckpt", filename="{epoch}", save_top_k=-1)
    fit(tmp_path / "first", first, epochs=1, callbacks=[every])
    L.seed_everything(1, verbose=False)  # the checkpoint's generator state must win
    resumed = GraphClassifier(net(seed=5), optimizer=ADAM, scheduler=STEP_LR)
    trainer = fit(tmp_path / "first", resumed, ckpt_path=tmp_path / "ckpt" / "epoch=0.ckpt")
    assert trainer.global_step == 32 and resumed.capture
    assert_same_weights(whole.net, resumed.net)
    L.seed_everything(0, verbose=False)
    grouped = GroupedClassifier(copy.deepcopy(start), optimizer=ADAM, scheduler=STEP_LR)
    fit(tmp_path / "grouped", grouped)
    assert_same_weights(grouped.net, resumed.net)


def test_auto_falls_back_with_one_line_and_every_hook(tmp_path, caplog):
    """task.cuda_graphs=auto where a callback uses per-step hooks: one logged line with the reason, then
    GroupedClassifier's eager steps, each with its hooks."""
    counter = CountHooks()
    task = GraphClassifier(net(), optimizer=ADAM)
    with caplog.at_level(logging.INFO, logger=graphs.__name__):
        trainer = fit(tmp_path, task, epochs=1, callbacks=[counter])
    lines = [r.getMessage() for r in caplog.records if r.name == graphs.__name__]
    reason = "callback CountHooks uses on_before_backward, which cannot run inside a graph"
    assert lines == [f"CUDA graphs off: {reason}"]
    assert not task.capture and trainer.global_step == 16
    assert counter.counts["optimizer_step"] == 16 and counter.counts["batches"] == 4


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"precision": "16-mixed"}, "trainer.precision=16-mixed (its gradient scaler checks every step"),
        ({"precision": "bf16-true"}, "trainer.precision=bf16-true: only 32-true and bf16-mixed are captured"),
        ({"compile": True}, "task.compile=true"),
        ({"augment": "affine"}, "data.augment=affine (per-sample transforms on the host)"),
        ({"k": 1}, "data.steps_per_execution=1 (one mini-batch per step: nothing to group)"),
        ({"optimizer": "sgd"}, "optimizer SGD has no capturable step (Adam and AdamW have)"),
        ({"scheduler": "step"}, "a scheduler steps per optimizer step"),
        ({"callback": True}, "callback CountHooks uses on_before_backward, which cannot run inside a graph"),
        ({}, "the run is on the CPU (CUDA graphs need trainer=gpu)"),
        ({"precision": "bf16-mixed", "scheduler": "epoch"}, "the run is on the CPU"),  # both supported
    ],
    ids=["16-mixed", "bf16-true", "compile", "augment", "k1", "sgd", "step-sched", "callback", "cpu", "bf16"],
)
def test_each_unsupported_setting_is_named_before_training(tmp_path, change, reason):
    """task.cuda_graphs=true where a setting cannot be captured: one ConfigError naming it, before any
    optimizer step (auto logs the same reason and trains eagerly). The device is checked last, so that on
    the CPU each other setting names itself."""
    cls = step_scheduled(GraphClassifier) if change.get("scheduler") == "step" else GraphClassifier
    optimizer = functools.partial(torch.optim.SGD, lr=0.1) if change.get("optimizer") else ADAM
    scheduler = STEP_LR if change.get("scheduler") else None
    task = cls(net(), optimizer=optimizer, scheduler=scheduler, compile=bool(change.get("compile")))
    task.cuda_graphs = True
    precision = change.get("precision")
    args = {"precision": precision} if precision else {}
    if precision == "16-mixed":  # Lightning's 16-mixed plugin, on the CPU
        args = {"plugins": [MixedPrecision("16-mixed", "cpu", torch.amp.GradScaler("cpu"))]}
    k = change.get("k", 2)
    dm = tiny_mnist(tmp_path, n_train=300, val_size=50, batch_size=50, steps_per_execution=k)
    dm.augment = change.get("augment")
    callbacks = [CountHooks()] if change.get("callback") else []
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, callbacks=callbacks, **args)
    with pytest.raises(ConfigError) as refused:
        trainer.fit(task, datamodule=dm)
    assert str(refused.value).startswith(f"task.cuda_graphs=true but {reason}")
    assert str(refused.value).endswith(": set task.cuda_graphs=auto or false")
    assert trainer.global_step == 0


def test_ddp_and_plain_loaders_are_named(tmp_path):
    task = GraphClassifier(net(), optimizer=ADAM)
    ddp = L.Trainer(accelerator="cpu", devices=2, strategy="ddp", logger=False)
    assert graphs.unsupported(ddp, task) == "2 processes (DDP): each step waits on the others' gradients"
    one = L.Trainer(accelerator="cpu", devices=1, logger=False)
    assert graphs.unsupported(one, task) == "the training data is not an in-memory neuronlab DataModule"


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_a_bad_switch_value_is_refused(value):
    with pytest.raises(ConfigError, match=f"task.cuda_graphs={value!r} must be auto, true or false"):
        GraphClassifier(net(), optimizer=ADAM, cuda_graphs=value)


def test_the_step_counter_it_advances_is_still_lightnings_global_step(tmp_path, body_on_cpu):
    """Replayed steps bypass the LightningOptimizer, so GraphClassifier advances the manual-optimization
    step progress that ``global_step`` reads. If Lightning moves it, this fails: update graphs.py."""
    task = GraphClassifier(net(), optimizer=ADAM)
    trainer = fit(tmp_path, task, epochs=1)
    progress = trainer.fit_loop.epoch_loop.manual_optimization.optim_step_progress
    assert task.capture and trainer.global_step == progress.total.completed == 16


# ---- on a GPU ----------------------------------------------------------------------------------------


def gpu_fit(tmp_path, task, precision="32-true", **kwargs):
    torch.cuda.reset_peak_memory_stats()
    trainer = fit(tmp_path, task, k=4, accelerator="gpu", devices=1, precision=precision, **kwargs)
    print(f"peak GPU memory {type(task).__name__}: {torch.cuda.max_memory_allocated() / 2**20:.1f} MiB")
    return trainer


@cuda
@pytest.mark.parametrize(("precision", "tolerance"), [("32-true", 1e-3), ("bf16-mixed", 2e-2)])
def test_gpu_captured_equals_eager_after_two_epochs(tmp_path, precision, tolerance):
    """Warm-up, recording, replays and the short last group: the weights of the eager grouped steps within
    float tolerance (the capturable optimizer computes its bias corrections on the device), the same
    global_step and accuracies."""
    start = net(dropout=0.0)
    tasks, trainers = [], []
    for cuda_graphs in (False, True):
        L.seed_everything(0, verbose=False)
        task = GraphClassifier(copy.deepcopy(start), optimizer=ADAM, scheduler=STEP_LR)
        task.cuda_graphs = cuda_graphs
        trainers.append(gpu_fit(tmp_path / str(cuda_graphs), task, precision, gradient_clip_val=0.5))
        tasks.append(task)
    assert tasks[1].capture and tasks[1].graph is not None and not tasks[0].capture
    assert_same_weights(tasks[0].net, tasks[1].net, relative=tolerance)
    assert trainers[0].global_step == trainers[1].global_step == 32
    metrics = [t.callback_metrics for t in trainers]
    for name in ("train/acc", "val/acc"):
        assert abs(float(metrics[0][name]) - float(metrics[1][name])) <= 0.02, name
    losses = [m["train/loss"] for m in metrics]
    torch.testing.assert_close(*losses, rtol=tolerance, atol=tolerance)
    lr = tasks[1].optimizers().param_groups[0]["lr"]
    assert float(lr) == pytest.approx(0.01 / 4)  # the per-epoch scheduler reached the graph's lr


@cuda
def test_gpu_dropout_is_random_on_each_replay_and_reproducible(tmp_path):
    runs = []
    for seed in (0, 0, 1):
        model = net(dropout=0.5)  # the same start each time (net() seeds the generators itself)
        L.seed_everything(seed, verbose=False)
        task = GraphClassifier(model, optimizer=ADAM, cuda_graphs=True)
        gpu_fit(tmp_path / f"run{len(runs)}", task, epochs=1)
        runs.append(task)
    assert_same_weights(runs[0].net, runs[1].net)
    assert any(not torch.equal(a, b) for a, b in zip(runs[0].parameters(), runs[2].parameters(), strict=True))
    before = torch.cuda.get_rng_state()
    runs[0].graph.replay()  # each replay draws new masks: the generator moves on
    assert not torch.equal(before, torch.cuda.get_rng_state())


@cuda
def test_gpu_resume_from_a_captured_checkpoint_continues_exactly(tmp_path):
    start = net()
    L.seed_everything(0, verbose=False)
    whole = GraphClassifier(copy.deepcopy(start), optimizer=ADAM, scheduler=STEP_LR, cuda_graphs=True)
    gpu_fit(tmp_path / "whole", whole)
    L.seed_everything(0, verbose=False)
    first = GraphClassifier(copy.deepcopy(start), optimizer=ADAM, scheduler=STEP_LR, cuda_graphs=True)
    every = ModelCheckpoint(dirpath=tmp_path / "ckpt", filename="{epoch}", save_top_k=-1)
    gpu_fit(tmp_path / "first", first, epochs=1, callbacks=[every])
    L.seed_everything(1, verbose=False)
    resumed = GraphClassifier(net(seed=5), optimizer=ADAM, scheduler=STEP_LR, cuda_graphs=True)
    trainer = gpu_fit(tmp_path / "first", resumed, ckpt_path=tmp_path / "ckpt" / "epoch=0.ckpt")
    assert trainer.global_step == 32 and resumed.graph is not None
    assert_same_weights(whole.net, resumed.net, relative=1e-5)


@cuda
def test_gpu_experiment_mnist_records_its_groups_through_the_entry_point(tmp_path):
    """`neuronlab-train experiment=mnist trainer=gpu` as a user runs it (the recipe's GraphClassifier,
    task.cuda_graphs=auto): the one line says the graphs are on, the run trains and tests."""
    import json

    from tests.conftest import run_cli, write_mnist

    # 3,200 training images: 50 mini-batches of 64, three groups of 16 (warm-up, recording, replay), then 2
    data = write_mnist(tmp_path / "data", "MNIST", n_train=3400, n_test=200)
    done = run_cli(
        "neuronlab.train",
        "experiment=mnist",
        "trainer=gpu",
        "trainer.max_epochs=2",
        f"paths.data_dir={data}",
        "data.val_size=200",
        "data.download=false",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in (done.stdout + done.stderr).splitlines() if "CUDA graphs" in line]
    assert lines and all(line.endswith("CUDA graphs on: each group of steps is replayed") for line in lines)
    result = json.loads(next((tmp_path / "outputs").rglob("result.json")).read_text())
    assert result["metrics"]["test/acc"] > 0.5
