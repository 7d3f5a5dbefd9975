"""A sweep's jobs ranked, its seed groups, and the table as Markdown, CSV and rows for the terminal.

Ranking: completed jobs by the sweep's ``optimized_metric`` (ties: the lower ``val/loss`` first), then
pruned, unfinished or interrupted, failed, and any status from elsewhere last. Every string here came from
a job folder: cells pass through :func:`~neuronlab.show.shown`, CSV cells through ``csv_cell``.
"""

from __future__ import annotations

import csv
import io
import math
import shlex
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neuronlab.show import csv_cell, shown
from neuronlab.summary.jobs import Job, find_jobs, optimized_metric, read_importance, read_job

SHOWN_METRICS = ("val/acc_best", "test/acc")
TIE_BREAK = "val/loss"
STATUS_ORDER = {"completed": 0, "pruned": 1, "unfinished": 2, "interrupted": 2, "failed": 3}
UNKNOWN_STATUS = 4  # a status from elsewhere ranks after every known one, failed included
GROUP_METRICS = ("test/acc", "test/loss")  # summarised per seed group, after the optimized metric


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

    @property
    def has_devices(self) -> bool:
        """Whether a job recorded device slots (a local GPU sweep): then the table has a devices column."""
        return any(job.devices for job in self.jobs)

    def counts(self) -> str:
        counts = Counter(job.status for job in self.jobs)
        ordered = sorted(counts.items(), key=lambda item: STATUS_ORDER.get(item[0], UNKNOWN_STATUS))
        return ", ".join(f"{n} {status}" for status, n in ordered)

    def title(self) -> str:
        jobs = f"{len(self.jobs)} job{'s' if len(self.jobs) != 1 else ''}"
        direction = "higher is better" if self.maximize else "lower is better"
        return f"{jobs} ({shown(self.counts())}), ranked by {shown(self.metric)} ({direction})"


def _score(value: float, maximize: bool) -> float:
    """A sort key: the best value first, a missing or non-finite one last."""
    return (-value if maximize else value) if math.isfinite(value) else math.inf


def summarize(sweep_dir: Path | str, final: bool = False) -> Summary:
    """Read every job of ``sweep_dir`` and rank them by the sweep's ``optimized_metric``."""
    sweep_dir = Path(sweep_dir)
    job_dirs = find_jobs(sweep_dir)
    jobs = [read_job(folder, final) for folder in job_dirs]
    metric = optimized_metric(job_dirs)
    maximize = not metric.endswith("loss")

    keys = list(dict.fromkeys(k for job in jobs for k in job.params))
    values = {k: [job.params.get(k, "") for job in jobs] for k in keys}
    swept = [k for k in keys if len(set(values[k])) > 1]
    fixed = {k: values[k][0] for k in keys if k not in swept}
    jobs.sort(
        key=lambda job: (
            STATUS_ORDER.get(job.status, UNKNOWN_STATUS),
            _score(job.metrics.get(metric, math.nan), maximize),
            _score(job.metrics.get(TIE_BREAK, math.nan), False),  # equal accuracies: the lower loss first
            job.num,
        )
    )
    summary = Summary(sweep_dir, jobs, metric, maximize, swept, fixed, importance=read_importance(sweep_dir))
    summary.groups = seed_groups(summary)
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
            stats[name] = (mean, statistics.stdev(xs) if len(xs) >= 2 else math.nan, len(xs))
        groups.append(Group(dict(zip(keys, values, strict=True)), jobs, stats))
    return sorted(groups, key=lambda g: _score(g.stats[summary.metric][0], summary.maximize))


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


def format_stat(name: str, mean: float, std: float, n: int) -> str:
    """``mean ± std (n)``: 97.10 ± 0.35 % (3)."""
    if not math.isfinite(mean):
        return "–"
    spread = f" ± {format_metric(name, std).removesuffix(' %')}" if math.isfinite(std) else ""
    return f"{format_metric(name, mean).removesuffix(' %')}{spread}{' %' if 'acc' in name else ''} ({n})"


def device_cells(summary: Summary, job: Job, none: str = "–") -> list[str]:
    """A job's ``devices`` cell (``0``, ``2, 3``); no cell where no job recorded slots (a CPU sweep)."""
    if not summary.has_devices:
        return []
    return [", ".join(map(str, job.devices)) if job.devices else none]


def _status_cell(job: Job) -> str:
    cell = f"{job.status}: {job.error}" if job.error and job.status != "completed" else job.status
    if job.status == "pruned" and job.pruned_epoch is not None:
        cell = f"pruned at epoch {job.pruned_epoch}"
    return f"{cell} ({job.resume})" if job.resume else cell


def rows(summary: Summary) -> tuple[list[str], list[list[str]], list[str]]:
    """The table as people read it: header, formatted cells and each column's Markdown alignment (numbers
    right, swept values and status left), shared by Markdown and the terminal."""
    header = [shown(h) for h in ("rank", "job", *summary.swept, *summary.metrics, "epochs", "wall time")]
    header += [*(["devices"] if summary.has_devices else []), "status"]
    body = [
        [
            str(i) if job.status == "completed" else "–",
            str(job.num),
            *(shown(format_value(job.params.get(k, "(default)"))) for k in summary.swept),
            *(format_metric(m, job.metrics.get(m)) for m in summary.metrics),
            str(int(job.metrics["epochs"])) if "epochs" in job.metrics else "–",
            format_duration(job.wall_time),
            *map(shown, device_cells(summary, job)),
            shown(_status_cell(job)),
        ]
        for i, job in enumerate(summary.jobs, start=1)
    ]
    n_keys = len(summary.swept)
    return header, body, ["---:", "---:", *["---"] * n_keys, *["---:"] * (len(header) - 3 - n_keys), "---"]


def _markdown_table(header: list[str], body: list[list[str]], align: list[str]) -> str:
    lines = [header, align, *body]
    return "\n".join("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |" for cells in lines)


def to_markdown(summary: Summary) -> str:
    """``summary.md``: paragraphs and tables, separated by blank lines."""
    header, body, align = rows(summary)
    notes = (
        f"Ties are broken by the lower {TIE_BREAK}. `job` is the number that starts the job's folder name "
        "(an Optuna trial's number). `unfinished`: no result yet (still running, or killed); "
        "`interrupted`: stopped by a signal, or without a result when the sweep ended; `pruned`: stopped "
        "early by the Optuna pruner (its metrics are those of that epoch; not tested)."
    )
    if summary.has_devices:
        notes += " `devices`: the device slots (GPU indices) the job trained on, from its `environment.json`."
    parts = [
        "# Sweep summary",
        f"`{shown(summary.sweep_dir)}`: {summary.title()}. Updated {time.strftime('%Y-%m-%d %H:%M:%S')}.",
    ]
    if summary.fixed:
        same = ", ".join(f"`{shown(k)}={shown(v)}`" for k, v in summary.fixed.items())
        parts.append(f"Same in every job: {same}")
    parts += [_markdown_table(header, body, align), notes]
    if summary.jobs[0].status == "completed":
        parts.append(f"Best: `{shown(summary.jobs[0].folder)}`.")
    parts += _resume_note(summary)
    if summary.groups:  # rank, the swept values but the seed, ``mean ± std (n)`` per metric
        keys, stats = [k for k in summary.swept if k != "seed"], summary.metrics_grouped
        header = [shown(h) for h in ("rank", *keys, *stats)]
        body = [
            [
                str(i),
                *(shown(format_value(g.params[k])) for k in keys),
                *(format_stat(m, *g.stats[m]) for m in stats),
            ]
            for i, g in enumerate(summary.groups, start=1)
        ]
        parts += [
            "## Seed groups",
            f"Completed jobs that differ only by `seed`, ranked by their mean {shown(summary.metric)}: "
            "`mean ± std (n)`, the sample standard deviation over n seeds (`summary_groups.csv`).",
            _markdown_table(header, body, ["---:", *["---"] * len(keys), *["---:"] * len(stats)]),
        ]
    if summary.importance:
        parts.append(
            "Parameter importances (Optuna's `optuna.importance.get_param_importances`; they add up to 1): "
            + ", ".join(f"`{shown(k)}` {v:.2f}" for k, v in summary.importance.items())
            + "."
        )
    parts += [
        "Compare the jobs' curves and hyper-parameters: "
        f"`tensorboard --logdir {shown(shlex.quote(str(summary.sweep_dir)))}` (HPARAMS tab).",
        "![the metric against each swept value](summary.png)",
    ]
    return "\n\n".join(parts) + "\n"


def _resume_note(summary: Summary) -> list[str]:
    """Which jobs a re-run of the sweep in its folder skipped or resumed."""
    jobs = sorted(summary.jobs, key=lambda j: j.num)
    skipped = [str(j.num) for j in jobs if j.resume == "skipped"]
    resumed = [f"{j.num} ({shown(j.resume)})" for j in jobs if j.resume.startswith("resumed")]
    parts = []
    if skipped:
        parts.append(f"skipped the completed job{'s' if len(skipped) > 1 else ''} {', '.join(skipped)}")
    if resumed:
        parts.append(f"resumed {', '.join(resumed)} from {'their' if len(resumed) > 1 else 'its'} last.ckpt")
    return [f"This sweep was run again in its folder: it {' and '.join(parts)}."] if parts else []


def _csv(header: list[str], body: list[list[Any]]) -> str:
    """CSV text whose text cells cannot run as spreadsheet formulas (``=``, ``+``, ``-``, ``@``)."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(
        [csv_cell(cell) for cell in row] for row in [header, *body]
    )
    return out.getvalue()


def to_csv(summary: Summary) -> str:
    """``summary.csv``: the raw values, in the table's order."""
    devices = ["devices"] if summary.has_devices else []
    header = [
        *("rank", "job", "folder", *summary.swept, *summary.metrics, "epochs", "wall_time_s", *devices),
        *("status", "error", "pruned_epoch", "resume"),
    ]
    body = [
        [
            i if job.status == "completed" else "",
            job.num,
            job.folder,
            *(job.params.get(k, "") for k in summary.swept),
            *(job.metrics.get(m, "") for m in summary.metrics),
            int(job.metrics["epochs"]) if "epochs" in job.metrics else "",
            f"{job.wall_time:.2f}" if job.wall_time is not None else "",
            *device_cells(summary, job, none=""),
            job.status,
            job.error,
            "" if job.pruned_epoch is None else job.pruned_epoch,
            job.resume,
        ]
        for i, job in enumerate(summary.jobs, start=1)
    ]
    return _csv(header, body)


def groups_csv(summary: Summary) -> str:
    """``summary_groups.csv``: one row per seed group, raw means and sample standard deviations."""
    keys = [k for k in summary.swept if k != "seed"]
    stat_columns = [f"{m}_{s}" for m in summary.metrics_grouped for s in ("mean", "std")]
    body = [
        [
            i,
            *(g.params[k] for k in keys),
            *(v if math.isfinite(v) else "" for m in summary.metrics_grouped for v in g.stats[m][:2]),
            len(g.jobs),
            " ".join(str(j.num) for j in sorted(g.jobs, key=lambda j: j.num)),
        ]
        for i, g in enumerate(summary.groups, start=1)
    ]
    return _csv(["rank", *keys, *stat_columns, "n", "jobs"], body)
