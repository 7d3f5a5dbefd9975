"""Side-by-side timing of one MNIST-sized training epoch and one evaluation pass, in one process:

  (a) the lesson's plain PyTorch loop on torchvision's DataLoader (ToTensor + Normalize, batch 64, shuffle)
  (b) the same network on pre-loaded tensors in a bare loop: the floor
  (c) ``neuronlab-train experiment=mnist`` as a user runs it (TensorBoard, checkpoints, progress bar on)

Prints times, the ratios c/a and c/b, peak resident memory of (c) and test accuracy after N epochs of (a)
and (c). (c) runs first, so the process's peak memory when it ends is (c)'s own. Each time is the fastest
of several epochs (after a warm-up): on a shared machine, the least disturbed one.

    python scripts/benchmark.py --data fashion_mnist            # Debian's dataset-fashion-mnist files
    python scripts/benchmark.py --data mnist --data-dir data     # a real MNIST folder
    python scripts/benchmark.py --variants compile,bf16          # also time model.compile / bf16-mixed
"""

from __future__ import annotations

import argparse
import gzip
import platform
import resource
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import lightning.pytorch as L
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

from neuronlab.data.mnist import DATASETS, FILES, find_file
from neuronlab.models import MNISTClassifier
from neuronlab.paths import CONF_DIR

DEBIAN_FASHION = "/usr/share/datasets/fashion-mnist"


class EpochTimer(L.Callback):
    """Wall time of each training epoch (validation excluded, logging and checkpoints included) and of
    the test pass over the data (the once-per-run figures logged at its end excluded)."""

    latest: EpochTimer | None = None  # the instance Hydra built for the last run
    between_epochs: Callable[[], float] | None = None  # run after each epoch, its time not counted

    def __init__(self) -> None:
        EpochTimer.latest = self
        self.epoch_starts: list[float] = []
        self.val_times: list[float] = []
        self.between: list[float] = []
        self.test_time = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.epoch_starts.append(time.perf_counter())

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._val = time.perf_counter()

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.val_times.append(time.perf_counter() - self._val)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if EpochTimer.between_epochs is not None:
            self.between.append(EpochTimer.between_epochs())

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.epoch_starts.append(time.perf_counter())

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._test = time.perf_counter()

    def on_test_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: object) -> None:
        self.test_time = time.perf_counter() - self._test  # the pass itself; figures come after it

    def train_epoch_times(self) -> list[float]:
        spans = [b - a for a, b in zip(self.epoch_starts, self.epoch_starts[1:], strict=False)]
        between = self.between or [0.0] * len(spans)
        return [span - val - other for span, val, other in zip(spans, self.val_times, between, strict=False)]


def run_neuronlab(data: str, data_dir: str, epochs: int, out: Path, extra: list[str]) -> dict[str, float]:
    """(c): the real entry point's ``train`` on the composed ``experiment=mnist`` config."""
    from neuronlab.train import train

    overrides = [
        "experiment=mnist",
        f"data={data}",
        f"paths.data_dir={data_dir}",
        f"trainer.max_epochs={epochs}",
        f"paths.root_dir={out}",
        *extra,
    ]
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    run_dir = out / f"run-{len(list(out.glob('run-*')))}"
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(run_dir)
        cfg.hydra.job.config_name = "train"
        cfg.callbacks.timer = {"_target_": f"{EpochTimer.__module__}.EpochTimer"}
    HydraConfig.instance().set_config(cfg)
    metrics = train(cfg)
    timer = EpochTimer.latest
    assert timer is not None
    times = timer.train_epoch_times()
    return {
        "train_epoch": min(times[1:] if len(times) > 1 else times),  # min: the least disturbed epoch
        "eval": timer.test_time,
        "test_acc": metrics.get("test/acc", float("nan")),
    }


def torchvision_root(data: str, data_dir: Path, scratch: Path) -> Path:
    """torchvision's datasets want ``<root>/<Folder>/raw/*-ubyte`` uncompressed: make one if needed."""
    folder = DATASETS[data].folder
    raw = scratch / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for stems in FILES.values():
        for stem in stems:
            source = find_file(data_dir, folder, stem)
            if source is None:
                raise SystemExit(f"{data}: {stem}[.gz] not found under {data_dir}")
            if source.suffix == ".gz":
                with gzip.open(source) as f_in, open(raw / stem, "wb") as f_out:
                    shutil.copyfileobj(f_in, f_out)
            else:
                shutil.copy(source, raw / stem)
    return scratch


def lesson_loaders(data: str, root: Path, batch_size: int) -> tuple:
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    info = DATASETS[data]
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((info.mean,), (info.std,))])
    cls = getattr(datasets, info.folder)
    train = DataLoader(cls(str(root), train=True, transform=tf), batch_size=batch_size, shuffle=True)
    test = DataLoader(cls(str(root), train=False, transform=tf), batch_size=1000)
    return train, test


def train_epoch(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, batches, limit: int | None = None
) -> None:
    model.train()
    for i, (x, y) in enumerate(batches):
        if limit is not None and i >= limit:
            break
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()


@torch.no_grad()
def evaluate(model: torch.nn.Module, batches) -> float:
    model.eval()
    correct = total = 0
    for x, y in batches:
        correct += (model(x).argmax(1) == y).sum().item()
        total += len(y)
    return correct / total


def timed(fn, *args) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def preloaded(loader) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*[(x, y) for x, y in loader], strict=True)
    return torch.cat(xs), torch.cat(ys)


def tensor_batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, shuffle: bool):
    order = torch.randperm(len(x)) if shuffle else torch.arange(len(x))
    for i in range(0, len(x), batch_size):
        idx = order[i : i + batch_size]
        yield x[idx], y[idx]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", choices=sorted(DATASETS), default="fashion_mnist")
    parser.add_argument("--data-dir", help=f"default: {DEBIAN_FASHION} for fashion_mnist, ./data for mnist")
    parser.add_argument("--epochs", type=int, default=5, help="epochs of (a) and (c) for the accuracy row")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--variants", default="", help="extra (c) rows: compile, bf16 (comma-separated)")
    parser.add_argument(
        "--seeds", type=int, default=1, help="average the test accuracies over this many seeds"
    )
    args = parser.parse_args()
    data_dir = Path(args.data_dir or (DEBIAN_FASHION if args.data == "fashion_mnist" else "data"))
    L.seed_everything(0, verbose=False)
    scratch = Path(tempfile.mkdtemp(prefix="neuronlab-bench-"))
    rows: dict[str, dict[str, float]] = {}

    # (c) first: the process's peak resident memory right after it is (c)'s own
    rows["c"] = run_neuronlab(args.data, str(data_dir), args.epochs, scratch / "outputs", [])
    rows["c"]["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    for variant in filter(None, args.variants.split(",")):
        extra = {"compile": ["model.compile=true"], "bf16": ["trainer.precision=bf16-mixed"]}[variant]
        rows[f"c+{variant}"] = run_neuronlab(args.data, str(data_dir), 2, scratch / "outputs", extra)

    train_loader, test_loader = lesson_loaders(
        args.data, torchvision_root(args.data, data_dir, scratch), args.batch_size
    )

    # (b) the floor: the same network and optimizer on pre-loaded tensors, its epochs interleaved with a
    # second (c) run's, so that both see the same machine (a shared machine's speed drifts by the minute)
    x_train, y_train = preloaded(train_loader)
    x_test, y_test = preloaded(test_loader)
    model = MNISTClassifier()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    train_epoch(
        model, optimizer, tensor_batches(x_train, y_train, args.batch_size, True), limit=50
    )  # warm-up

    def bare_epoch() -> float:
        return timed(train_epoch, model, optimizer, tensor_batches(x_train, y_train, args.batch_size, True))[
            0
        ]

    EpochTimer.between_epochs = bare_epoch
    side_by_side = run_neuronlab(args.data, str(data_dir), 4, scratch / "outputs", [])
    EpochTimer.between_epochs = None
    assert EpochTimer.latest is not None
    bare_times = EpochTimer.latest.between[1:]
    t_eval = min(timed(evaluate, model, tensor_batches(x_test, y_test, 1000, False))[0] for _ in range(3))
    rows["b"] = {"train_epoch": min(bare_times), "eval": t_eval}
    rows["c"]["train_epoch_side_by_side"] = side_by_side["train_epoch"]

    # (a) the lesson's loop, for args.epochs epochs; the fastest epoch is the one reported
    def lesson_run(seed: int) -> dict[str, float]:
        L.seed_everything(seed, verbose=False)
        model = MNISTClassifier()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        train_epoch(model, optimizer, train_loader, limit=50)  # warm-up
        epoch_times = [timed(train_epoch, model, optimizer, train_loader)[0] for _ in range(args.epochs)]
        t_eval, accuracy = timed(evaluate, model, test_loader)
        return {"train_epoch": min(epoch_times), "eval": t_eval, "test_acc": accuracy}

    rows["a"] = lesson_run(0)
    # more seeds: the accuracy of one 5-epoch run moves by a few tenths of a point from seed to seed
    extra_seeds = range(1, args.seeds)
    a_accs = [rows["a"]["test_acc"], *(lesson_run(seed)["test_acc"] for seed in extra_seeds)]
    c_accs = [rows["c"]["test_acc"]]
    for seed in extra_seeds:
        run = run_neuronlab(args.data, str(data_dir), args.epochs, scratch / "outputs", [f"seed={seed}"])
        c_accs.append(run["test_acc"])
    rows["a"]["test_acc"], rows["c"]["test_acc"] = statistics.mean(a_accs), statistics.mean(c_accs)
    rows["a"]["test_accs"], rows["c"]["test_accs"] = a_accs, c_accs
    shutil.rmtree(scratch, ignore_errors=True)
    report(rows, args)


def _percents(values: list[float]) -> str:
    return "/".join(f"{v * 100:.2f}" for v in values)


def report(rows: dict[str, dict[str, float]], args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    a, b, c = rows["a"], rows["b"], rows["c"]
    machine = f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    table = Table(
        title=f"{args.data}, batch {args.batch_size}, {args.epochs} epochs for accuracy — {machine}"
    )
    for column in ("path", "train epoch (s)", "eval pass (s)", "test acc", "peak RSS (GiB)"):
        table.add_column(column)
    names = {"a": "(a) lesson: torchvision DataLoader", "b": "(b) bare loop, pre-loaded tensors"}
    for key, row in rows.items():
        table.add_row(
            names.get(key, f"({key}) neuronlab-train experiment=mnist"),
            f"{row['train_epoch']:.2f}",
            f"{row['eval']:.3f}",
            f"{row['test_acc'] * 100:.2f}%" if "test_acc" in row else "",
            f"{row['peak_rss_gib']:.2f}" if "peak_rss_gib" in row else "",
        )
    console = Console(width=140)
    console.print(table)
    console.print(
        f"train epoch  c/a = {c['train_epoch'] / a['train_epoch']:.2f} (target <= 0.45)   "
        f"c/b = {c['train_epoch_side_by_side'] / b['train_epoch']:.2f} (target <= 1.4; epochs of b and c "
        f"interleaved: {c['train_epoch_side_by_side']:.2f} s vs {b['train_epoch']:.2f} s)\n"
        f"eval pass    c/a = {c['eval'] / a['eval']:.3f} (target <= 0.1)\n"
        f"test acc     c - a = {(c['test_acc'] - a['test_acc']) * 100:+.2f} points (target >= -0.3; "
        f"mean of {len(c['test_accs'])} seed(s): a {_percents(a['test_accs'])}, "
        f"c {_percents(c['test_accs'])})\n"
        f"peak RSS (c) = {c['peak_rss_gib']:.2f} GiB (target <= 1.5)"
    )


if __name__ == "__main__":
    main()
