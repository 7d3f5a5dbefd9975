"""The summary of a sweep: one row per job, best first, written at the sweep's root.

TensorBoard shows each job's curves; a sweep also needs its outcome at a glance, failed and unfinished
jobs included. ``summary.md`` (a Markdown table), ``summary.csv`` (raw values) and ``summary.png`` (the
metric against each swept value) are rebuilt from the job folders alone (``.hydra/overrides.yaml`` and
``result.json``), so the same code serves the Hydra callback (after every job and at the end of the
sweep) and ``neuronlab-summary <sweep folder>`` (for a sweep in progress or interrupted).

It also shows what a sweep learnt and survived: Optuna's pruned trials, the jobs a re-run skipped or
resumed (:mod:`neuronlab.sweeps.resume`), the seed groups (``mean ± std (n)``, ``summary_groups.csv``,
error bars) when ``seed`` varies, and the parameter importances the Optuna sweeper wrote.
"""

from __future__ import annotations

import argparse
import atexit
import csv
import io
import json
import logging
import math
import os
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from neuronlab.errors import NeuronlabError, run_command
from neuronlab.paths import launcher_rank
from neuronlab.sweeps.resume import read_resume

log = logging.getLogger(__name__)

DEFAULT_METRIC = "val/acc_best"
SHOWN_METRICS = ("val/acc_best", "test/acc")
TIE_BREAK = "val/loss"
LOCK_FILE = ".summary.lock"
STATUS_ORDER = {"completed": 0, "pruned": 1, "unfinished": 2, "interrupted": 2, "failed": 3}
UNKNOWN_STATUS = 4  # a status from elsewhere ranks after every known one, failed included
GROUP_METRICS = ("test/acc", "test/loss")  # summarised per seed group, after the optimized metric
HIDDEN_KEYS = ("optuna_trial",)  # set by the Optuna sweeper: the job's number already says it
MIN_GROUP_SEEDS = 2


@dataclass
class Job:
    """One job folder of a sweep, as read back from disk."""

    num: int
    folder: str
    params: dict[str, str]  # its command-line overrides, key -> value as typed
    status: str  # completed | pruned | failed | interrupted | unfinished (running, or killed)
    metrics: dict[str, float] = field(default_factory=dict)
    wall_time: float | None = None
    error: str = ""
    pruned_epoch: int | None = None
    resume: str = ""  # what a re-run of the sweep did: "skipped", "resumed after N epochs"


@dataclass
class Group:
    """The completed jobs that differ only by ``seed``: one setting, several seeds."""

    params: dict[str, str]  # the swept values other than the seed
    jobs: list[Job]
    stats: dict[str, tuple[float, float, int]]  # metric -> (mean, sample std, n); nan where undefined


@dataclass
class Summary:
    """A sweep's jobs, ranked, and what varies between them."""

    sweep_dir: Path
    jobs: list[Job]  # best first; then unfinished, then failed
    metric: str
    maximize: bool
    swept: list[str]  # override keys whose value differs between jobs: one column and one plot panel each
    fixed: dict[str, str]  # overrides shared by every job
    groups: list[Group] = field(default_factory=list)  # jobs differing only by seed, best mean first
    importance: dict[str, float] = field(default_factory=dict)  # Optuna's parameter importances

    @property
    def metrics(self) -> list[str]:
        return [self.metric, *(m for m in SHOWN_METRICS if m != self.metric)]

    @property
    def metrics_grouped(self) -> list[str]:
        return [self.metric, *(m for m in GROUP_METRICS if m != self.metric)]

    def counts(self) -> str:
        counts: dict[str, int] = {}
        for job in self.jobs:
            counts[job.status] = counts.get(job.status, 0) + 1
        return ", ".join(f"{n} {status}" for status, n in sorted(counts.items(), key=_status_key))

    def title(self) -> str:
        jobs = f"{len(self.jobs)} job{'s' if len(self.jobs) != 1 else ''}"
        direction = "higher is better" if self.maximize else "lower is better"
        return f"{jobs} ({self.counts()}), ranked by {self.metric} ({direction})"


def _status_key(item: tuple[str, int]) -> int:
    return STATUS_ORDER.get(item[0], UNKNOWN_STATUS)


# ---------------------------------------------------------------------------------------------- read


def _read_yaml(path: Path) -> Any:
    import yaml

    return yaml.safe_load(path.read_text())


def _split_override(override: str) -> tuple[str, str]:
    key, _, value = override.partition("=")
    return key.lstrip("+~"), value


def read_job(folder: Path, final: bool = False) -> Job:
    """A job from its folder; no ``result.json`` means still running, or interrupted once the sweep ended.

    A damaged ``overrides.yaml`` or ``result.json`` (these files may come from anywhere) makes that job a
    failed row saying which file is wrong; the other jobs are summarised as usual."""
    import yaml

    prefix = folder.name.split("_", 1)[0]
    job = Job(
        num=int(prefix) if prefix.isdigit() else -1,
        folder=folder.name,
        params={},
        status="interrupted" if final else "unfinished",
        resume=read_resume(folder),
    )
    overrides_file = folder / ".hydra" / "overrides.yaml"
    try:
        overrides = _read_yaml(overrides_file) or []
        if not isinstance(overrides, list):
            raise ValueError(f"a list of overrides expected, found {type(overrides).__name__}")
    except (OSError, ValueError, yaml.YAMLError) as err:
        job.status, job.error = "failed", f"unreadable {overrides_file}: {str(err).splitlines()[0]}"
        return job
    job.params = {k: v for k, v in map(_split_override, map(str, overrides)) if k not in HIDDEN_KEYS}
    result_file = folder / "result.json"
    if result_file.is_file():
        try:
            result = json.loads(result_file.read_text())
        except (OSError, ValueError):  # cut short (a full disk): as good as no result
            return job
        try:
            metrics = result.get("metrics") or {}
            job.metrics = {str(k): float(v) for k, v in metrics.items()}
            wall_time = result.get("wall_time")
            job.wall_time = float(wall_time) if wall_time is not None else None
        except (AttributeError, TypeError, ValueError):
            job.status, job.error = "failed", f"unreadable {result_file}: not a neuronlab result"
            job.metrics = {}
            return job
        job.status = str(result.get("status", job.status))
        if job.status == "running":  # the record a job writes when it starts: running, or killed
            job.status = "interrupted" if final else "unfinished"
        epoch = result.get("pruned_epoch")
        job.pruned_epoch = epoch if isinstance(epoch, int) and not isinstance(epoch, bool) else None
        # a user error's message says it all: "optimizer.lr=-1 is not allowed: ..."
        job.error = str(result.get("error") or "").removeprefix("NeuronlabError: ")
    return job


def find_jobs(sweep_dir: Path) -> list[Path]:
    """The job folders of a sweep: those holding Hydra's ``.hydra/overrides.yaml``."""
    if not sweep_dir.is_dir():
        raise NeuronlabError(f"sweep folder {sweep_dir} does not exist; pass outputs/<task>/multiruns/<time>")
    jobs = sorted(p for p in sweep_dir.iterdir() if (p / ".hydra" / "overrides.yaml").is_file())
    if not jobs:
        sweeps = sorted(
            (p for p in sweep_dir.glob("**/multiruns/*") if p.is_dir()), key=lambda p: p.stat().st_mtime
        )
        latest = f"; the latest sweep in it is {sweeps[-1]}" if sweeps else ""
        raise NeuronlabError(
            f"no sweep jobs (folders with .hydra/overrides.yaml) in {sweep_dir}: "
            f"pass a sweep folder, outputs/<task>/multiruns/<time>{latest}"
        )
    return jobs


def _optimized_metric(job_dirs: list[Path]) -> str:
    for folder in job_dirs:
        config = folder / ".hydra" / "config.yaml"
        if config.is_file():
            try:
                metric = (_read_yaml(config) or {}).get("optimized_metric")
            except Exception:  # a damaged config.yaml: another job's may do
                continue
            return str(metric) if metric else DEFAULT_METRIC
    return DEFAULT_METRIC


def summarize(sweep_dir: Path | str, final: bool = False) -> Summary:
    """Read every job of ``sweep_dir`` and rank them by the sweep's ``optimized_metric``."""
    sweep_dir = Path(sweep_dir)
    job_dirs = find_jobs(sweep_dir)
    jobs = [read_job(folder, final) for folder in job_dirs]
    metric = _optimized_metric(job_dirs)
    maximize = not metric.endswith("loss")

    keys = list(dict.fromkeys(k for job in jobs for k in job.params))
    values = {k: [job.params.get(k, "") for job in jobs] for k in keys}
    swept = [k for k in keys if len(set(values[k])) > 1]
    fixed = {k: values[k][0] for k in keys if k not in swept}

    def rank_key(job: Job) -> tuple[int, float, float, int]:
        value = job.metrics.get(metric, math.nan)
        score = (-value if maximize else value) if math.isfinite(value) else math.inf
        loss = job.metrics.get(TIE_BREAK, math.inf)  # equal accuracies (easy data): the lower loss first
        return (
            STATUS_ORDER.get(job.status, UNKNOWN_STATUS),
            score,
            loss if math.isfinite(loss) else math.inf,
            job.num,
        )

    jobs.sort(key=rank_key)
    summary = Summary(sweep_dir, jobs, metric, maximize, swept, fixed)
    summary.groups = seed_groups(summary)
    summary.importance = read_importance(sweep_dir)
    return summary


def seed_groups(summary: Summary) -> list[Group]:
    """When a sweep varies ``seed``: its completed jobs grouped by the other swept values, best mean first."""
    if "seed" not in summary.swept:
        return []
    keys = [k for k in summary.swept if k != "seed"]
    grouped: dict[tuple[str, ...], list[Job]] = {}
    for job in summary.jobs:
        if job.status == "completed":
            grouped.setdefault(tuple(job.params.get(k, "(default)") for k in keys), []).append(job)
    groups = []
    for values, jobs in grouped.items():
        stats = {}
        for name in summary.metrics_grouped:
            xs = [j.metrics[name] for j in jobs if math.isfinite(j.metrics.get(name, math.nan))]
            mean = statistics.fmean(xs) if xs else math.nan
            std = statistics.stdev(xs) if len(xs) >= MIN_GROUP_SEEDS else math.nan
            stats[name] = (mean, std, len(xs))
        groups.append(Group(dict(zip(keys, values, strict=True)), jobs, stats))

    def mean_key(group: Group) -> float:
        mean = group.stats[summary.metric][0]
        return (-mean if summary.maximize else mean) if math.isfinite(mean) else math.inf

    return sorted(groups, key=mean_key)


def read_importance(sweep_dir: Path) -> dict[str, float]:
    """The parameter importances the Optuna sweeper wrote in ``optimization_results.yaml`` (checked)."""
    import yaml

    try:
        results = _read_yaml(sweep_dir / "optimization_results.yaml")
    except (OSError, ValueError, yaml.YAMLError):
        return {}
    importance = results.get("importance") if isinstance(results, dict) else None
    if not isinstance(importance, dict):
        return {}
    return {
        str(k): float(v)
        for k, v in importance.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    }


# -------------------------------------------------------------------------------------------- format


def format_metric(name: str, value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{100 * value:.2f} %" if "acc" in name else f"{value:.4f}"


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def format_value(value: str) -> str:
    """An override value for reading: 0.007231563192959944 -> 0.007232 (the CSV keeps it whole)."""
    try:
        number = float(value)
    except ValueError:
        return value
    return f"{number:.4g}" if any(c in value for c in ".eE") and math.isfinite(number) else value


def _status_cell(job: Job) -> str:
    cell = f"{job.status}: {job.error}" if job.error and job.status != "completed" else job.status
    if job.status == "pruned" and job.pruned_epoch is not None:
        cell = f"pruned at epoch {job.pruned_epoch}"
    return f"{cell} ({job.resume})" if job.resume else cell


def format_stat(name: str, mean: float, std: float, n: int) -> str:
    """``mean ± std (n)``: 97.10 ± 0.35 % (3)."""
    if not math.isfinite(mean):
        return "–"
    spread = f" ± {format_metric(name, std).removesuffix(' %')}" if math.isfinite(std) else ""
    if "acc" in name:
        return f"{100 * mean:.2f}{spread} % ({n})"
    return f"{mean:.4f}{spread} ({n})"


def group_rows(summary: Summary) -> tuple[list[str], list[list[str]]]:
    """The seed groups' table: rank, the swept values but the seed, ``mean ± std (n)`` per metric."""
    keys = [k for k in summary.swept if k != "seed"]
    header = ["rank", *keys, *summary.metrics_grouped]
    body = [
        [
            str(i),
            *(format_value(g.params[k]) for k in keys),
            *(format_stat(m, *g.stats[m]) for m in summary.metrics_grouped),
        ]
        for i, g in enumerate(summary.groups, start=1)
    ]
    return header, body


def groups_csv(summary: Summary) -> str:
    """``summary_groups.csv``: one row per seed group, raw means and sample standard deviations."""
    keys = [k for k in summary.swept if k != "seed"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    stat_columns = [f"{m}_{s}" for m in summary.metrics_grouped for s in ("mean", "std")]
    writer.writerow(["rank", *keys, *stat_columns, "n", "jobs"])
    for i, g in enumerate(summary.groups, start=1):
        stats = [g.stats[m][j] for m in summary.metrics_grouped for j in (0, 1)]
        writer.writerow(
            [
                i,
                *(g.params[k] for k in keys),
                *("" if not math.isfinite(v) else v for v in stats),
                len(g.jobs),
                " ".join(str(j.num) for j in sorted(g.jobs, key=lambda j: j.num)),
            ]
        )
    return out.getvalue()


def rows(summary: Summary) -> tuple[list[str], list[list[str]]]:
    """The table as people read it: header and formatted cells (shared by Markdown and the terminal)."""
    header = ["rank", "job", *summary.swept, *summary.metrics, "epochs", "wall time", "status"]
    body = []
    for i, job in enumerate(summary.jobs, start=1):
        epochs = job.metrics.get("epochs")
        body.append(
            [
                str(i) if job.status == "completed" else "–",
                str(job.num),
                *(format_value(job.params.get(k, "(default)")) for k in summary.swept),
                *(format_metric(m, job.metrics.get(m)) for m in summary.metrics),
                str(int(epochs)) if epochs is not None else "–",
                format_duration(job.wall_time),
                _status_cell(job),
            ]
        )
    return header, body


def to_markdown(summary: Summary) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    header, body = rows(summary)
    n_keys = len(summary.swept)
    align = ["---:", "---:", *["---"] * n_keys, *["---:"] * (len(summary.metrics) + 3)]
    align[-1] = "---"
    lines = [
        "# Sweep summary",
        "",
        f"`{summary.sweep_dir}`: {summary.title()}. Updated {time.strftime('%Y-%m-%d %H:%M:%S')}.",
        "",
    ]
    if summary.fixed:
        lines += ["Same in every job: " + ", ".join(f"`{k}={v}`" for k, v in summary.fixed.items()), ""]
    lines += [
        "| " + " | ".join(cell(h) for h in header) + " |",
        "| " + " | ".join(align) + " |",
        *("| " + " | ".join(cell(c) for c in row) + " |" for row in body),
        "",
        f"Ties are broken by the lower {TIE_BREAK}. `job` is the number that starts the job's folder name "
        "(an Optuna trial's number). `unfinished`: no result yet (still running, or killed); "
        "`interrupted`: stopped by a signal, or without a result when the sweep ended; `pruned`: stopped "
        "early by the Optuna pruner (its metrics are those of that epoch; not tested).",
    ]
    best = summary.jobs[0]
    if best.status == "completed":
        lines += ["", f"Best: `{best.folder}`."]
    lines += _resume_note(summary)
    if summary.groups:
        g_header, g_body = group_rows(summary)
        lines += [
            "",
            "## Seed groups",
            "",
            f"Completed jobs that differ only by `seed`, ranked by their mean {summary.metric}: "
            "`mean ± std (n)`, the sample standard deviation over n seeds (`summary_groups.csv`).",
            "",
            "| " + " | ".join(cell(h) for h in g_header) + " |",
            "| "
            + " | ".join(["---:", *["---"] * (len(g_header) - 1 - len(summary.metrics_grouped))])
            + " | ---:" * len(summary.metrics_grouped)
            + " |",
            *("| " + " | ".join(cell(c) for c in row) + " |" for row in g_body),
        ]
    if summary.importance:
        lines += [
            "",
            "Parameter importances (Optuna's `optuna.importance.get_param_importances`; they add up to 1): "
            + ", ".join(f"`{k}` {v:.2f}" for k, v in summary.importance.items())
            + ".",
        ]
    lines += [
        "",
        f"Compare the jobs' curves and hyper-parameters: `tensorboard --logdir {summary.sweep_dir}`"
        " (HPARAMS tab).",
        "",
        "![the metric against each swept value](summary.png)",
        "",
    ]
    return "\n".join(lines)


def _resume_note(summary: Summary) -> list[str]:
    """Which jobs a re-run of the sweep in its folder skipped or resumed."""
    skipped = [str(j.num) for j in sorted(summary.jobs, key=lambda j: j.num) if j.resume == "skipped"]
    resumed = [
        f"{j.num} ({j.resume})"
        for j in sorted(summary.jobs, key=lambda j: j.num)
        if j.resume.startswith("resumed")
    ]
    if not skipped and not resumed:
        return []
    parts = []
    if skipped:
        parts.append(f"skipped the completed job{'s' if len(skipped) > 1 else ''} {', '.join(skipped)}")
    if resumed:
        parts.append(f"resumed {', '.join(resumed)} from {'their' if len(resumed) > 1 else 'its'} last.ckpt")
    return ["", f"This sweep was run again in its folder: it {' and '.join(parts)}."]


def to_csv(summary: Summary) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [
            "rank",
            "job",
            "folder",
            *summary.swept,
            *summary.metrics,
            "epochs",
            "wall_time_s",
            "status",
            "error",
            "pruned_epoch",
            "resume",
        ]
    )
    for i, job in enumerate(summary.jobs, start=1):
        epochs = job.metrics.get("epochs")
        writer.writerow(
            [
                i if job.status == "completed" else "",
                job.num,
                job.folder,
                *(job.params.get(k, "") for k in summary.swept),
                *(job.metrics.get(m, "") for m in summary.metrics),
                int(epochs) if epochs is not None else "",
                f"{job.wall_time:.2f}" if job.wall_time is not None else "",
                job.status,
                job.error,
                "" if job.pruned_epoch is None else job.pruned_epoch,
                job.resume,
            ]
        )
    return out.getvalue()


def _as_numbers(values: list[str]) -> list[float] | None:
    try:
        return [float(v) for v in values]
    except ValueError:
        return None


def _spread(values: list[str], i: int) -> float:
    """A small offset that sets apart the jobs sharing a category, so that none hides another."""
    same = [j for j, v in enumerate(values) if v == values[i]]
    return 0.3 * (same.index(i) / (len(same) - 1) - 0.5) if len(same) > 1 else 0.0


def figure(summary: Summary) -> Any:
    """One panel per swept key: the metric of every finished job against that key's value.

    Values drawn from a range (Optuna's) go on a numeric axis, logarithmic when they span a decade or more
    (learning rates); a grid's few values, names and lists of sizes are categories, jobs sharing one set a
    little apart. Failed jobs are red crosses on the floor.
    """
    from matplotlib.figure import Figure

    keys = summary.swept or ["job"]
    ncols = min(len(keys), 3)
    nrows = math.ceil(len(keys) / ncols)
    fig = Figure(figsize=(4.2 * ncols, 3.4 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[len(keys) :]:
        ax.set_visible(False)
    for ax, key in zip(axes, keys, strict=False):
        _panel(ax, summary, key)
    fig.suptitle(f"{summary.sweep_dir.name}: {summary.counts()} (best circled)", fontsize="medium")
    return fig


def _panel(ax: Any, summary: Summary, key: str) -> None:
    from matplotlib.transforms import blended_transform_factory

    percent = "acc" in summary.metric
    scale = 100.0 if percent else 1.0
    ax.set_xlabel(key)
    ax.set_ylabel(f"{summary.metric} (%)" if percent else summary.metric)
    ax.grid(alpha=0.3)
    jobs = [j for j in summary.jobs if j.status in ("completed", "pruned", "failed")]
    if not jobs:
        ax.text(0.5, 0.5, "no job has finished yet", ha="center", transform=ax.transAxes)
        return
    raw = [str(j.num) if key == "job" else j.params.get(key, "(default)") for j in jobs]
    numbers = _as_numbers(raw)
    distinct = len(set(raw))
    if numbers is None or distinct < 2 or distinct <= len(raw) / 2:  # names, or a grid's few values
        categories = sorted(set(raw), key=float if numbers else None)
        xs = [categories.index(v) + _spread(raw, i) for i, v in enumerate(raw)]
        ax.set_xticks(range(len(categories)), categories, rotation=30 if len(categories) > 3 else 0)
        ax.set_xlim(-0.5, len(categories) - 0.5)
        position = {v: float(categories.index(v)) for v in categories}
    else:
        xs = numbers
        position = {v: x for v, x in zip(raw, xs, strict=True)}
        if min(xs) > 0 and max(xs) / min(xs) >= 10:
            ax.set_xscale("log")
    if key not in ("seed", "job") and summary.groups:  # each seed group: its mean and std
        bars = [(position[g.params[key]], *g.stats[summary.metric][:2]) for g in summary.groups]
        bars = [
            (x, m * scale, s * scale if math.isfinite(s) else 0.0) for x, m, s in bars if math.isfinite(m)
        ]
        ax.errorbar(
            [b[0] for b in bars],
            [b[1] for b in bars],
            yerr=[b[2] for b in bars],
            fmt="_",
            markersize=14,
            color="black",
            capsize=5,
            zorder=5,
            label="mean ± std over seeds",
        )
        ax.legend(loc="best", fontsize="small")
    pruned = [(x, j.metrics.get(summary.metric, math.nan) * scale) for x, j in zip(xs, jobs, strict=True)]
    pruned = [(x, y) for (x, y), j in zip(pruned, jobs, strict=True) if j.status == "pruned"]
    if pruned:
        ax.scatter(*zip(*pruned, strict=True), marker="v", color="tab:gray", alpha=0.7, label="pruned")
        ax.legend(loc="best", fontsize="small")
    done = [(x, j.metrics.get(summary.metric, math.nan) * scale) for x, j in zip(xs, jobs, strict=True)]
    done = [(x, y) for (x, y), j in zip(done, jobs, strict=True) if j.status == "completed"]
    ax.scatter([x for x, _ in done], [y for _, y in done], color="tab:blue", alpha=0.8, zorder=3)
    if summary.jobs[0].status == "completed":  # the best job, first in rank order
        ax.scatter(*done[0], s=140, facecolors="none", edgecolors="tab:orange", linewidths=2, zorder=4)
    if percent and done:
        ax.set_ylim(top=min(ax.get_ylim()[1], 101))
    failed = [x for x, j in zip(xs, jobs, strict=True) if j.status == "failed"]
    if failed:
        floor = blended_transform_factory(ax.transData, ax.transAxes)
        ax.scatter(failed, [0.03] * len(failed), marker="x", color="tab:red", transform=floor, label="failed")
        ax.update_datalim([(x, ax.dataLim.y0) for x in failed], updatey=False)  # keep them in view
        ax.autoscale_view()
        ax.legend(loc="best", fontsize="small")


# --------------------------------------------------------------------------------------------- write


def _tmp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def _write_text_atomic(path: Path, text: str) -> None:
    """Readers (and jobs finishing at the same moment) never see half a file."""
    tmp = _tmp_path(path)
    tmp.write_text(text)
    tmp.replace(path)


@contextmanager
def _locked(sweep_dir: Path) -> Iterator[None]:
    """One writer at a time, so the last job to finish writes a summary that includes every job."""
    try:
        import fcntl
    except ImportError:  # Windows: the atomic renames still keep every file whole
        yield
        return
    with open(sweep_dir / LOCK_FILE, "a") as handle:
        with suppress(OSError):  # a file system without locks
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def write_summary(sweep_dir: Path | str, final: bool = False) -> Summary:
    """Read the sweep's jobs and write ``summary.md``, ``summary.csv`` and ``summary.png`` at its root."""
    sweep_dir = Path(sweep_dir)
    find_jobs(sweep_dir)  # a clear message, before anything is written
    with _locked(sweep_dir):
        summary = summarize(sweep_dir, final)
        _write_text_atomic(sweep_dir / "summary.md", to_markdown(summary))
        _write_text_atomic(sweep_dir / "summary.csv", to_csv(summary))
        if summary.groups:
            _write_text_atomic(sweep_dir / "summary_groups.csv", groups_csv(summary))
        png = sweep_dir / "summary.png"
        figure(summary).savefig(_tmp_path(png), format="png", dpi=100)
        _tmp_path(png).replace(png)
    return summary


def print_summary(summary: Summary) -> None:
    """The table in the terminal, with where the files are."""
    from rich.console import Console
    from rich.table import Table

    header, body = rows(summary)
    table = Table(
        title=f"Sweep summary: {summary.title()}",
        title_justify="left",
        caption=f"{summary.sweep_dir}/summary.md, summary.csv, summary.png",
        caption_justify="left",
    )
    n_keys = len(summary.swept)
    for i, name in enumerate(header):
        numeric = i < 2 or 2 + n_keys <= i < len(header) - 1
        table.add_column(name, justify="right" if numeric else "left", overflow="fold")
    styles = {"completed": None, "failed": "red"}  # unfinished, interrupted: yellow
    for i, (job, row) in enumerate(zip(summary.jobs, body, strict=True)):
        best = i == 0 and job.status == "completed"
        table.add_row(*row, style="bold green" if best else styles.get(job.status, "yellow"))
    console = Console()
    if not console.is_terminal:  # a log file: the whole table on one line per job, not folded to 80 columns
        console.width = max(
            console.width, console.measure(table, options=console.options.update_width(500)).maximum
        )
    console.print(table)


# ------------------------------------------------------------------------------------------ callback


def _quoted(value: str) -> str:
    """A string as a quoted Hydra override value (spaces, commas and ``=`` are safe inside quotes)."""
    return "'" + value.replace("'", "\\'") + "'"


class SweepSummary(Callback):
    """Hydra callback (``hydra.callbacks`` in ``conf/hydra/default.yaml``): the sweep summary, kept current.

    - At the start of a sweep: makes ``${hydra:...}`` resolvable in the sweep folder's path (Hydra sets it
      only inside jobs), and pins that folder: each job composes its own config, and jobs that change
      ``task_name`` (``data=xor,and``: each data's recipe names it) would otherwise scatter the sweep.
    - After each job (wherever it ran: here, a joblib worker, a SLURM node): rewrites the summary.
    - At the end: writes the final summary and prints it. The basic sweeper raises on a failed job before
      ``on_multirun_end``, so the same also runs at interpreter exit when the end was never reached.
    """

    def __init__(self) -> None:
        self._sweep_dir: Path | None = None
        self._done = False

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from hydra.core.hydra_config import HydraConfig
        from omegaconf import open_dict, read_write

        HydraConfig.instance().set_config(config)
        sweep_dir = str(config.hydra.sweep.dir)
        with read_write(config.hydra), open_dict(config.hydra):
            config.hydra.sweep.dir = sweep_dir
            # launchers compose each job from the master's hydra overrides: the same folder for all
            config.hydra.overrides.hydra.append(f"hydra.sweep.dir={_quoted(sweep_dir)}")
        self._sweep_dir = Path(sweep_dir)
        self._done = False
        atexit.register(self._finish)

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        from hydra.types import RunMode

        if config.hydra.mode != RunMode.MULTIRUN or launcher_rank() != 0:  # one writer per DDP job on SLURM
            return
        try:
            write_summary(Path(config.hydra.sweep.dir))
        except Exception as err:  # a summary must never fail the job it describes
            log.warning(f"could not write the sweep summary: {err}")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._finish()

    def _finish(self) -> None:
        if self._done or self._sweep_dir is None or not self._sweep_dir.is_dir():
            return
        self._done = True
        try:
            summary = write_summary(self._sweep_dir, final=True)
        except NeuronlabError:  # no job got as far as its folder
            return
        except Exception as err:
            log.warning(f"could not write the sweep summary: {err}")
            return
        print_summary(summary)


# ----------------------------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> None:
    """``neuronlab-summary <sweep folder>``: (re)write and print the summary of a sweep, finished or not."""
    parser = argparse.ArgumentParser(
        prog="neuronlab-summary",
        description="Write summary.md, summary.csv and summary.png at a sweep's root; print the table.",
    )
    parser.add_argument("sweep_dir", type=Path, help="a sweep folder: outputs/<task>/multiruns/<time>")
    args = parser.parse_args(argv)
    print_summary(run_command(lambda: write_summary(args.sweep_dir)))


if __name__ == "__main__":
    main()
