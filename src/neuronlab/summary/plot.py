"""``summary.png``: the sweep's metric against each swept value, one panel per key."""

from __future__ import annotations

import math
from typing import Any

from neuronlab.show import shown
from neuronlab.summary.table import Summary


def _spread(values: list[str], i: int) -> float:
    """A small offset that sets apart the jobs sharing a category, so that none hides another."""
    same = [j for j, v in enumerate(values) if v == values[i]]
    return 0.3 * (same.index(i) / (len(same) - 1) - 0.5) if len(same) > 1 else 0.0


def figure(summary: Summary) -> Any:
    """One panel per swept key: the metric of every finished job against that key's value. Ranges
    (Optuna's) on a numeric axis, logarithmic over a decade or more; a grid's few values, names and lists
    are categories, jobs sharing one set a little apart; failed jobs are red crosses on the floor."""
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
    title = f"{shown(summary.sweep_dir.name)}: {summary.counts()} (best circled)"
    fig.suptitle(title, fontsize="medium", parse_math=False)
    return fig


def _panel(ax: Any, summary: Summary, key: str) -> None:
    import numpy as np
    from matplotlib.transforms import blended_transform_factory

    percent = "acc" in summary.metric
    scale = 100.0 if percent else 1.0
    # stored strings as plain text: escaped, capped, never mathtext ("$" in a value would not draw)
    ax.set_xlabel(shown(key), parse_math=False)
    ax.set_ylabel(shown(summary.metric + (" (%)" if percent else "")), parse_math=False)
    ax.grid(alpha=0.3)
    jobs = [j for j in summary.jobs if j.status in ("completed", "pruned", "failed")]
    if not jobs:
        ax.text(0.5, 0.5, "no job has finished yet", ha="center", transform=ax.transAxes)
        return
    raw = [str(j.num) if key == "job" else j.params.get(key, "(default)") for j in jobs]
    try:
        numbers = [float(v) for v in raw]
    except ValueError:
        numbers = None
    distinct = len(set(raw))
    if numbers is None or distinct < 2 or distinct <= len(raw) / 2:  # names, or a grid's few values
        categories = sorted(set(raw), key=float if numbers else None)
        xs = [categories.index(v) + _spread(raw, i) for i, v in enumerate(raw)]
        labels = [shown(c, 40) for c in categories]
        ax.set_xticks(
            range(len(categories)), labels, rotation=30 if len(categories) > 3 else 0, parse_math=False
        )
        ax.set_xlim(-0.5, len(categories) - 0.5)
        position = {v: float(categories.index(v)) for v in categories}
    else:
        xs = numbers
        position = dict(zip(raw, xs, strict=True))
        if min(xs) > 0 and max(xs) / min(xs) >= 10:
            ax.set_xscale("log")
    if key not in ("seed", "job") and summary.groups:  # each seed group: its mean and std
        x, mean, std = np.array(
            [(position[g.params[key]], *g.stats[summary.metric][:2]) for g in summary.groups]
        ).T
        style = {"fmt": "_", "markersize": 14, "color": "black", "capsize": 5, "zorder": 5}
        ax.errorbar(x, mean * scale, yerr=np.nan_to_num(std) * scale, label="mean ± std over seeds", **style)
    xs, ys = np.array(xs), np.array([j.metrics.get(summary.metric, math.nan) for j in jobs]) * scale
    status = np.array([j.status for j in jobs])
    if (pruned := status == "pruned").any():
        ax.scatter(xs[pruned], ys[pruned], marker="v", color="tab:gray", alpha=0.7, label="pruned")
    done = status == "completed"
    ax.scatter(xs[done], ys[done], color="tab:blue", alpha=0.8, zorder=3)
    if summary.jobs[0].status == "completed":  # the best job, first in rank order
        best = {"s": 140, "facecolors": "none", "edgecolors": "tab:orange", "linewidths": 2, "zorder": 4}
        ax.scatter(xs[done][0], ys[done][0], **best)
    if percent and done.any():
        ax.set_ylim(top=min(ax.get_ylim()[1], 101))
    if (failed := status == "failed").any():
        floor = blended_transform_factory(ax.transData, ax.transAxes)
        ax.scatter(
            xs[failed], [0.03] * failed.sum(), marker="x", color="tab:red", transform=floor, label="failed"
        )
        ax.update_datalim([(x, ax.dataLim.y0) for x in xs[failed]], updatey=False)  # keep them in view
        ax.autoscale_view()
    if ax.get_legend_handles_labels()[1]:
        ax.legend(loc="best", fontsize="small")
