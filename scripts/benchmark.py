"""Side-by-side timing of neuronlab against plain PyTorch, in one process (a shared machine's speed drifts
by the minute, so every ratio is measured with both sides interleaved):

  (a) the lesson's plain PyTorch loop on torchvision's DataLoader (ToTensor + Normalize, batch 64, shuffle)
  (b) the same network on pre-loaded tensors in a bare loop: the floor
  (c) ``neuronlab-train experiment=mnist`` as a user runs it (TensorBoard, checkpoints, figures, progress
      bar on): the recipe's GroupedClassifier at the default ``data.steps_per_execution`` K, and K=1 as
      the plain Classifier (Lightning's automatic optimization, one optimizer step per Lightning step)

Prints the fastest training epoch and evaluation pass of each, the ratios c/a and c/b (b's epochs run
between (c)'s), the whole epoch as a user sees it (validation, figures, checkpoints and logging included)
against (b)'s epoch plus its own pass over the validation split, test accuracy after N epochs of (a) and
(c) (mean of ``--seeds``), (c)'s peak resident memory, and whole-process times: the main job
(``neuronlab-train``, the XOR network) against the lesson's XOR script (``scripts/lesson_xor.py``), its time
to the first training step, its figures' share (the time the figures callback's hooks take), and
``neuronlab-train --help`` against ``import lightning.pytorch``.

    python scripts/benchmark.py --data fashion_mnist --seeds 3   # Debian's dataset-fashion-mnist files
    python scripts/benchmark.py --data mnist --data-dir data     # a real MNIST folder
    python scripts/benchmark.py --variants compile,bf16          # also time task.compile / bf16-mixed
    python scripts/benchmark.py --device cuda --variants bf16    # the GPU rows (trainer=gpu)
    python scripts/benchmark.py --ks 4,64                        # also K=4 and K=64 (choosing K)
    python scripts/benchmark.py --clock cpu                      # CPU time: steadier on a shared machine
    python scripts/benchmark.py --quick                          # a short check that everything runs
    python scripts/benchmark.py --graphs --device cuda --seeds 3 --epochs 3   # CUDA graphs (see graphs_rows)
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
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

from neuronlab.config import CONF_DIR
from neuronlab.data.mnist import DATASETS, FILES, find_file
from neuronlab.models import MNISTClassifier

DEBIAN_FASHION = "/usr/share/datasets/fashion-mnist"
SCRIPTS = Path(__file__).resolve().parent
DEFAULT_K = "default"
clock = time.perf_counter  # --clock cpu: time.process_time (this process's CPU time, all its threads)


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
        self.epoch_starts.append(clock())

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._val = clock()

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.val_times.append(clock() - self._val)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if EpochTimer.between_epochs is not None:
            self.between.append(EpochTimer.between_epochs())

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.epoch_starts.append(clock())

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._test = clock()

    def on_test_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: object) -> None:
        self.test_time = clock() - self._test  # the pass itself; figures come after it

    def whole_epoch_times(self) -> list[float]:
        """Epoch start to the next epoch's start, without what ran between epochs: what a user waits."""
        spans = [b - a for a, b in zip(self.epoch_starts, self.epoch_starts[1:], strict=False)]
        between = self.between or [0.0] * len(spans)
        return [span - other for span, other in zip(spans, between, strict=False)]

    def train_epoch_times(self) -> list[float]:
        return [whole - val for whole, val in zip(self.whole_epoch_times(), self.val_times, strict=False)]


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
        "train_epochs": times,
        "whole_epochs": timer.whole_epoch_times(),
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
    device = next(model.parameters()).device
    for i, (x, y) in enumerate(batches):
        if limit is not None and i >= limit:
            break
        optimizer.zero_grad()
        F.cross_entropy(model(x.to(device)), y.to(device)).backward()
        optimizer.step()


@torch.no_grad()
def evaluate(model: torch.nn.Module, batches) -> float:
    model.eval()
    device = next(model.parameters()).device
    correct = total = 0
    for x, y in batches:
        correct += (model(x.to(device)).argmax(1) == y.to(device)).sum().item()
        total += len(y)
    return correct / total


def timed(fn, *args) -> tuple[float, object]:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = clock()
    result = fn(*args)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return clock() - start, result


def preloaded(loader) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*[(x, y) for x, y in loader], strict=True)
    return torch.cat(xs), torch.cat(ys)


def tensor_batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, shuffle: bool):
    order = torch.randperm(len(x), device=x.device) if shuffle else torch.arange(len(x), device=x.device)
    for i in range(0, len(x), batch_size):
        idx = order[i : i + batch_size]
        yield x[idx], y[idx]


BENCH_CALLBACKS = """
import time, lightning.pytorch as L
from neuronlab.run.figures import FiguresCallback

class FirstStep(L.Callback):
    def __init__(self, path):
        self.path = path
    def on_train_batch_start(self, *args):
        if self.path:
            open(self.path, "w").write(repr(time.time()))
            self.path = None

class TimedFigures(FiguresCallback):
    # neuronlab's figures callback, adding up the time its hooks take (written to path)
    def __init__(self, path, **kwargs):
        super().__init__(**kwargs)
        self.path, self.spent = path, 0.0

def _timed(hook):
    def timed(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return hook(self, *args, **kwargs)
        finally:
            self.spent += time.perf_counter() - start
            open(self.path, "w").write(repr(self.spent))
    return timed

for name, hook in vars(FiguresCallback).items():
    if name.startswith("on_") and callable(hook):
        setattr(TimedFigures, name, _timed(hook))
"""


def run_timed(name: str, command: list[str], env: dict, cwd: Path, times: list[float]):
    """Run one whole process as a user would, append its wall time to ``times``; stop on a failure."""
    start = time.time()
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=cwd)
    times.append(time.time() - start)
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stderr[-2000:]}")
    return done


def whole_process(repeats: int, scratch: Path) -> dict[str, list[float]]:
    """Wall times of whole processes, interleaved: the main job (``neuronlab-train``, XOR) with its time to
    the first training step and the time its figures callback's hooks took, the lesson's XOR script,
    ``neuronlab-train --help``, ``import lightning``."""
    (scratch / "bench_helpers").mkdir(exist_ok=True)
    (scratch / "bench_helpers" / "neuronlab_bench_callbacks.py").write_text(BENCH_CALLBACKS)
    env = {**os.environ, "NEURONLAB_OUTPUT_ROOT": str(scratch / "whole")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(scratch / "bench_helpers"), env.get("PYTHONPATH")]))
    mark, figures = scratch / "first_step.txt", scratch / "figures.txt"
    commands = {
        "main job": [
            sys.executable,
            "-m",
            "neuronlab.train",
            "+callbacks.first_step._target_=neuronlab_bench_callbacks.FirstStep",
            f"+callbacks.first_step.path={mark}",
            "callbacks.figures._target_=neuronlab_bench_callbacks.TimedFigures",
            f"+callbacks.figures.path={figures}",
        ],
        "lesson XOR script": [sys.executable, str(SCRIPTS / "lesson_xor.py")],
        "--help": [sys.executable, "-m", "neuronlab.train", "--help"],
        "import lightning.pytorch": [sys.executable, "-c", "import lightning.pytorch"],
    }
    times: dict[str, list[float]] = {name: [] for name in [*commands, "first step", "figures"]}
    for _ in range(repeats):
        for name, command in commands.items():
            mark.unlink(missing_ok=True)
            start = time.time()
            run_timed(name, command, env, scratch, times[name])
            if name == "main job":
                times["first step"].append(float(mark.read_text()) - start)
                times["figures"].append(float(figures.read_text()))
    return times


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
    parser.add_argument("--side-epochs", type=int, default=4, help="epochs of each interleaved (c) run")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each whole-process command")
    parser.add_argument("--device", default="cpu", help="cpu or cuda: (b) and (c) on this device")
    parser.add_argument("--quick", action="store_true", help="1 epoch, 2 interleaved, 1 repeat: a check")
    parser.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="epoch and pass times in wall time or in this process's CPU time (steadier on a shared machine)",
    )
    parser.add_argument(
        "--ks", default="", help="more data.steps_per_execution values to time beside K=1 and the default"
    )
    parser.add_argument(
        "--whole-only", action="store_true", help="only the whole-process rows (main job, figures, --help)"
    )
    parser.add_argument(
        "--graphs", action="store_true", help="only the CUDA-graph rows (graphs_rows): use with --device cuda"
    )
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args()
    global clock
    if args.clock == "cpu":
        if args.device != "cpu":
            parser.error("--clock cpu times CPU work: use it with --device cpu")
        clock = time.process_time
    if args.quick:
        args.epochs, args.side_epochs, args.repeats, args.seeds = 1, 2, 1, 1
    data_dir = Path(args.data_dir or (DEBIAN_FASHION if args.data == "fashion_mnist" else "data"))
    device = torch.device(args.device)
    on_device = ["trainer=gpu"] if device.type == "cuda" else []
    L.seed_everything(0, verbose=False)
    scratch = Path(tempfile.mkdtemp(prefix="neuronlab-bench-"))
    if args.whole_only:
        from rich.console import Console

        whole = whole_process(args.repeats, scratch)
        shutil.rmtree(scratch, ignore_errors=True)
        report_whole(whole, args.repeats, Console(width=150))
        if args.json:
            Path(args.json).write_text(json.dumps({"whole_process": whole}, indent=1))
        return
    if args.graphs:
        graphs_rows(args, data_dir, scratch)
        shutil.rmtree(scratch, ignore_errors=True)
        return
    rows: dict[str, dict] = {}

    def c_run(epochs: int, extra: list[str]) -> dict:
        return run_neuronlab(args.data, str(data_dir), epochs, scratch / "outputs", [*on_device, *extra])

    # (c) first: the process's peak resident memory right after it is (c)'s own
    rows["c"] = c_run(args.epochs, [])
    rows["c"]["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    for variant in filter(None, args.variants.split(",")):
        extra = {"compile": ["task.compile=true"], "bf16": ["trainer.precision=bf16-mixed"]}[variant]
        rows[f"c+{variant}"] = c_run(2, extra)

    train_loader, test_loader = lesson_loaders(
        args.data, torchvision_root(args.data, data_dir, scratch), args.batch_size
    )

    # (b) the floor: the same network and optimizer on pre-loaded tensors (the same 55,000/5,000 split as
    # (c)), its epochs interleaved with (c)'s, so that both see the same machine
    from neuronlab.data import MNISTDataModule

    split = MNISTDataModule(args.data, str(data_dir), download=False)
    split.setup("fit")
    (x_train, y_train), (x_val, y_val) = split.splits["train"], split.splits["val"]
    x_train, y_train, x_val, y_val = (t.to(device) for t in (x_train, y_train, x_val, y_val))
    x_test, y_test = (t.to(device) for t in preloaded(test_loader))
    model = MNISTClassifier().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    train_epoch(model, optimizer, tensor_batches(x_train, y_train, args.batch_size, True), limit=50)
    bare: dict[str, list[float]] = {"train": [], "val": []}

    def bare_epoch() -> float:
        t_train = timed(
            train_epoch, model, optimizer, tensor_batches(x_train, y_train, args.batch_size, True)
        )
        t_val = timed(evaluate, model, tensor_batches(x_val, y_val, 1000, False))
        bare["train"].append(t_train[0])
        bare["val"].append(t_val[0])
        return t_train[0] + t_val[0]

    side: dict[str, dict] = {}
    EpochTimer.between_epochs = bare_epoch
    ks = ["1", DEFAULT_K, *(k for k in args.ks.split(",") if k and k not in ("1", DEFAULT_K))]
    for k in ks * 2:  # twice each, alternating
        extra = [] if k == DEFAULT_K else [f"data.steps_per_execution={k}"]
        if k == "1":  # one mini-batch per Lightning step: the plain Classifier, as Lightning documents it
            extra += ["task._target_=neuronlab.tasks.Classifier", "~task.cuda_graphs"]
        bare["train"].clear()
        bare["val"].clear()
        run = c_run(args.side_epochs, [*extra, "test=false"])
        pairs = side.setdefault(k, {"c_train": [], "c_whole": [], "b_train": [], "b_whole": []})
        pairs["c_train"] += run["train_epochs"][1:]
        pairs["c_whole"] += run["whole_epochs"][1:]
        pairs["b_train"] += bare["train"][1:]
        pairs["b_whole"] += [t + v for t, v in zip(bare["train"][1:], bare["val"][1:], strict=True)]
    EpochTimer.between_epochs = None
    t_eval = min(timed(evaluate, model, tensor_batches(x_test, y_test, 1000, False))[0] for _ in range(3))
    rows["b"] = {"train_epoch": min(side[DEFAULT_K]["b_train"]), "eval": t_eval}

    # (a) the lesson's loop, for args.epochs epochs; the fastest epoch is the one reported
    def lesson_run(seed: int) -> dict[str, float]:
        L.seed_everything(seed, verbose=False)
        model = MNISTClassifier().to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        train_epoch(model, optimizer, train_loader, limit=50)  # warm-up
        epoch_times = [timed(train_epoch, model, optimizer, train_loader)[0] for _ in range(args.epochs)]
        t_eval, accuracy = timed(evaluate, model, test_loader)
        return {"train_epoch": min(epoch_times), "eval": t_eval, "test_acc": accuracy}

    rows["a"] = lesson_run(0)
    # more seeds: the accuracy of one 5-epoch run moves by a few tenths of a point from seed to seed
    extra_seeds = range(1, args.seeds)
    a_accs = [rows["a"]["test_acc"], *(lesson_run(seed)["test_acc"] for seed in extra_seeds)]
    c_accs = [rows["c"]["test_acc"], *(c_run(args.epochs, [f"seed={s}"])["test_acc"] for s in extra_seeds)]
    rows["a"]["test_acc"], rows["c"]["test_acc"] = statistics.mean(a_accs), statistics.mean(c_accs)
    rows["a"]["test_accs"], rows["c"]["test_accs"] = a_accs, c_accs
    whole = whole_process(args.repeats, scratch)
    shutil.rmtree(scratch, ignore_errors=True)
    report(rows, side, whole, args)


def graphs_rows(args, data_dir: Path, scratch: Path) -> None:
    """``--graphs``: the bare loop on pre-loaded tensors, neuronlab's eager grouped steps at K=16, and its
    CUDA-graph replays at K=16 and K=64 (``task.cuda_graphs=true``), ``--epochs`` each for ``--seeds``
    seeds (seeds outside, paths inside: each path sees the same machine); the fastest training epoch after
    the first (which holds the warm-up and the recording), test accuracy, peak GPU memory. Then the whole
    ``neuronlab-train experiment=mnist trainer=gpu`` run (5 epochs, test included) against the lesson's
    MNIST script (``scripts/lesson_mnist.py``), each as its own process. On the CPU (to check the
    script) the "captured" rows fall back to eager steps (``auto``) and say so."""
    from neuronlab.data import MNISTDataModule

    device = torch.device(args.device)
    gpu = device.type == "cuda"
    capture = "true" if gpu else "auto"
    paths = {
        "bare loop, pre-loaded tensors": None,
        "neuronlab eager K=16": ["task.cuda_graphs=false", "data.steps_per_execution=16"],
        "neuronlab captured K=16": [f"task.cuda_graphs={capture}", "data.steps_per_execution=16"],
        "neuronlab captured K=64": [f"task.cuda_graphs={capture}", "data.steps_per_execution=64"],
    }
    split = MNISTDataModule(args.data, str(data_dir), download=False)
    split.setup("fit")
    split.setup("test")
    (x_train, y_train), (x_test, y_test) = (
        tuple(t.to(device) for t in split.splits[name]) for name in ("train", "test")
    )
    results: dict[str, dict[str, list]] = {
        name: {"epochs": [], "whole": [], "test_acc": [], "peak_mib": []} for name in paths
    }
    for seed in range(args.seeds):
        for name, extra in paths.items():
            if gpu:
                torch.cuda.reset_peak_memory_stats()
            result = results[name]
            if extra is None:
                L.seed_everything(seed, verbose=False)
                model = MNISTClassifier().to(device)
                optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
                for _ in range(args.epochs):
                    batches = tensor_batches(x_train, y_train, args.batch_size, True)
                    result["epochs"].append(timed(train_epoch, model, optimizer, batches)[0])
                result["test_acc"].append(evaluate(model, tensor_batches(x_test, y_test, 1000, False)))
            else:
                overrides = [*(["trainer=gpu"] if gpu else []), f"seed={seed}", *extra]
                run = run_neuronlab(args.data, str(data_dir), args.epochs, scratch / "outputs", overrides)
                result["epochs"] += run["train_epochs"][1:]
                result["whole"] += run["whole_epochs"][1:]
                result["test_acc"].append(run["test_acc"])
            result["peak_mib"].append(torch.cuda.max_memory_allocated() / 2**20 if gpu else float("nan"))

    trainer = "trainer=gpu" if gpu else "trainer=cpu"
    main_job = f"neuronlab-train experiment=mnist {trainer}"
    whole: dict[str, list[float]] = {main_job: [], "lesson_mnist.py": []}
    env = {**os.environ, "NEURONLAB_OUTPUT_ROOT": str(scratch / "whole")}
    folder = DATASETS[args.data].folder
    commands = {
        main_job: [
            sys.executable, "-m", "neuronlab.train", "experiment=mnist", f"data={args.data}",
            f"paths.data_dir={data_dir.resolve()}", "data.download=false", "trainer.max_epochs=5", trainer,
        ],
        "lesson_mnist.py": [
            sys.executable, str(SCRIPTS / "lesson_mnist.py"), "--dataset", folder, "--epochs", "5",
            "--root", str(torchvision_root(args.data, data_dir, scratch / "torchvision")),
        ],
    }  # fmt: skip
    accuracy: dict[str, float] = {}
    for name, command in commands.items():
        done = run_timed(name, command, env, scratch, whole[name])
        if name == "lesson_mnist.py":
            accuracy[name] = float(done.stdout.split("accuracy:")[-1])
        else:
            result_file = next((scratch / "whole").rglob("result.json"))
            accuracy[name] = json.loads(result_file.read_text())["metrics"]["test/acc"]
    graphs_report(results, whole, accuracy, args, capture)


def graphs_report(results: dict, whole: dict, accuracy: dict, args, capture: str) -> None:
    from rich.console import Console
    from rich.table import Table

    machine = f"{platform.machine()}, torch {torch.__version__}"
    if args.device.startswith("cuda"):
        machine += f", {torch.cuda.get_device_name()}"
    table = Table(
        title=f"{args.data}, batch {args.batch_size}, {args.epochs} epochs x {args.seeds} seeds — {machine}"
    )
    columns = ("path", "train epoch (s)", "/ bare", "whole epoch (s)", "test acc (mean; seeds)", "peak MiB")
    for column in columns:
        table.add_column(column)
    bare = min(results["bare loop, pre-loaded tensors"]["epochs"])
    for name, result in results.items():
        epoch = min(result["epochs"])
        accs = result["test_acc"]
        table.add_row(
            name + ("" if capture == "true" or "captured" not in name else " (CPU: eager, auto)"),
            f"{epoch:.3f}",
            f"{epoch / bare:.2f}",
            f"{min(result['whole']):.3f}" if result["whole"] else "",
            f"{statistics.mean(accs) * 100:.2f}% ({_percents(accs)})",
            f"{max(result['peak_mib']):.0f}" if capture == "true" else "-",
        )
    console = Console(width=150)
    console.print(table)
    eager, captured = results["neuronlab eager K=16"], results["neuronlab captured K=16"]
    gap = (statistics.mean(captured["test_acc"]) - statistics.mean(eager["test_acc"])) * 100
    names = list(whole)
    console.print(
        f"captured K=16 / bare loop: train epoch {min(captured['epochs']) / bare:.2f} (target <= 0.3)\n"
        f"test acc captured K=16 - eager K=16 = {gap:+.2f} points (target within 0.3)\n"
        + "\n".join(f"{n}: {whole[n][0]:.1f} s, test acc {accuracy[n] * 100:.2f}%" for n in names)
        + f"\nwhole run ratio: {whole[names[0]][0] / whole[names[1]][0]:.2f}"
    )
    if args.json:
        payload = {"rows": results, "whole_process": whole, "whole_test_acc": accuracy}
        Path(args.json).write_text(json.dumps(payload, indent=1))


def _percents(values: list[float]) -> str:
    return "/".join(f"{v * 100:.2f}" for v in values)


def _ratio(pairs: dict[str, list[float]], c: str, b: str) -> tuple[float, float, float]:
    """Median, lowest and highest of the per-epoch ratios c/b (each c epoch beside its own b epoch)."""
    ratios = [x / y for x, y in zip(pairs[c], pairs[b], strict=True)]
    return statistics.median(ratios), min(ratios), max(ratios)


def report(rows: dict[str, dict], side: dict[str, dict], whole: dict[str, list[float]], args) -> None:
    from rich.console import Console
    from rich.table import Table

    a, c = rows["a"], rows["c"]
    machine = f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    if args.device.startswith("cuda"):
        machine += f", {torch.cuda.get_device_name()}"
    table = Table(
        title=f"{args.data}, batch {args.batch_size}, {args.epochs} epochs for accuracy — {machine}"
        + (" — CPU time" if args.clock == "cpu" else "")
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
    console = Console(width=150)
    console.print(table)
    lines = []
    for k, pairs in side.items():
        name = "default K" if k == DEFAULT_K else "K=1 plain" if k == "1" else f"K={k}"
        r, lo, hi = _ratio(pairs, "c_train", "b_train")
        w, wlo, whi = _ratio(pairs, "c_whole", "b_whole")
        lines.append(
            f"{name:>9}: train epoch c/b = {r:.2f} ({lo:.2f}-{hi:.2f} over {len(pairs['c_train'])} epochs; "
            f"c {min(pairs['c_train']):.2f} s, b {min(pairs['b_train']):.2f} s)   whole epoch c/(b + its "
            f"validation pass) = {w:.2f} ({wlo:.2f}-{whi:.2f})"
        )
    k1, kd = side["1"], side[DEFAULT_K]
    speedup = [x / y for x, y in zip(k1["c_train"], kd["c_train"], strict=False)]
    console.print(
        "interleaved with (b); targets at the default K: c/b <= 1.2, whole <= 1.25 (K=1 plain: the "
        "Classifier, automatic optimization):\n"
        + "\n".join(lines)
        + f"\n  default K vs K=1 plain: epoch {statistics.median(speedup):.2f}x faster (median of pairs)\n"
        f"train epoch  c/a = {c['train_epoch'] / a['train_epoch']:.2f} (target <= 0.40)\n"
        f"eval pass    c/a = {c['eval'] / a['eval']:.3f} (target <= 0.1)\n"
        f"test acc     c - a = {(c['test_acc'] - a['test_acc']) * 100:+.2f} points (target >= -0.3; "
        f"mean of {len(c['test_accs'])} seed(s): a {_percents(a['test_accs'])}, "
        f"c {_percents(c['test_accs'])})\n"
        f"peak RSS (c) = {c['peak_rss_gib']:.2f} GiB (target <= 1.5)"
    )
    report_whole(whole, args.repeats, console)
    if args.json:
        Path(args.json).write_text(
            json.dumps({"rows": rows, "side_by_side": side, "whole_process": whole}, indent=1, default=str)
        )


def report_whole(whole: dict[str, list[float]], repeats: int, console) -> None:
    """The whole-process lines: main job against the lesson's script, its figures' share, ``--help``."""
    medians = {name: statistics.median(times) for name, times in whole.items()}
    job, lesson, helps, lightning = (
        medians[k] for k in ("main job", "lesson XOR script", "--help", "import lightning.pytorch")
    )
    share = statistics.median(f / t for f, t in zip(whole["figures"], whole["main job"], strict=True))
    console.print(
        f"whole process (median of {repeats}, interleaved): main job {job:.2f} s (first training "
        f"step after {medians['first step']:.2f} s), lesson XOR script {lesson:.2f} s: ratio "
        f"{job / lesson:.2f} (target <= 1.5)\n"
        f"our own start-up: first training step - import lightning.pytorch = "
        f"{medians['first step'] - lightning:.2f} s (target <= 1.5 s)\n"
        f"figures: the main job's figures callback took {medians['figures']:.2f} s, {share * 100:.1f}% of "
        "the job (target <= ~5%)\n"
        f"--help {helps:.2f} s vs import lightning.pytorch {lightning:.2f} s: ratio {helps / lightning:.2f} "
        "(target < 0.5)"
    )


if __name__ == "__main__":
    main()
