"""Paper figures as pure functions of the leaderboard / robustness frames and training logs.

Conventions: matplotlib `Figure` + Agg canvas (no pyplot, no global backend switch); widths of
3.3 in (one journal column) or 7 in (two columns) with 7-8 pt text, so figures stay legible when
placed at their natural size; one fixed colour per method from the Okabe-Ito palette
(colour-blind safe), keyed by method label in report order, so a method has the same colour in
every figure; a missing run is drawn as a hatched cell / an explicit "missing" note, never left
out silently.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from benchmark.report.frames import (
    SCORE_METRICS,
    SPLIT_NAMES,
    cost_frame,
    dataset_of,
    dataset_view,
    label_of,
    scenario_order,
    split_name,
)
from benchmark.system.io import atomic_output

OKABE_ITO = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#D55E00",  # vermillion
    "#F0E442",  # yellow
    "#000000",  # black
)
EXTRA_COLOURS = (
    "#882255",  # wine
    "#999933",  # olive
    "#332288",  # indigo
    "#888888",  # grey
)
"""Paul Tol's muted colours unlike any Okabe-Ito one: a zoo of nine to twelve methods keeps
one colour per method instead of repeating the first ones."""
SINGLE = 3.3
DOUBLE = 7.0
FONT = {
    "font.size": 7,
    "axes.titlesize": 7.5,
    "axes.labelsize": 7,
    "xtick.labelsize": 6.5,
    "ytick.labelsize": 6.5,
    "legend.fontsize": 6.5,
    "hatch.linewidth": 0.6,
}
LINESTYLES = ("-", "--", ":", "-.")
MISSING_FACE = "#EEEEEE"


def method_colours(methods: Sequence[str]) -> dict[str, str]:
    """Okabe-Ito colour per method label, in order; four more distinct colours for the ninth
    to twelfth method, then the palette cycles."""
    palette = OKABE_ITO + EXTRA_COLOURS
    return {m: palette[i % len(palette)] for i, m in enumerate(methods)}


def new_figure(width: float, height: float) -> Figure:
    import matplotlib

    matplotlib.rcParams.update(FONT)
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save(fig: Figure, stem: Path, dpi: int = 200) -> list[Path]:
    """Write `stem`.png and `stem`.pdf (each atomically); returns both paths."""
    paths = []
    for suffix in (".png", ".pdf"):
        path = stem.with_suffix(suffix)
        metadata = {"CreationDate": None} if suffix == ".pdf" else None
        with atomic_output(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format=suffix[1:], metadata=metadata)
        paths.append(path)
    return paths


def _short(scenario: str, missing: str, sep: str = "\n") -> str:
    return f"{scenario}{sep}(full)" if missing == "none" else f"{scenario}{sep}(−{missing})"


CHAR_WIDTH = 0.055
"""Inches per character of a 6.5 pt tick label, to decide whether labels fit their column."""


def fits(labels: Iterable[str], inches: float) -> bool:
    """Whether every line of every label fits `inches` wide (at `CHAR_WIDTH` per character)."""
    widest = max((len(line) for label in labels for line in label.split("\n")), default=0)
    return CHAR_WIDTH * widest <= inches


def scenario_ticks(ax: Axes, scenarios: Sequence[str], missing_of: Mapping, column: float) -> float:
    """Scenario tick labels on `ax`'s x axis: two lines when they fit a `column` inches wide,
    else one line at 45° (four modalities make 15 long labels). Returns the extra height in
    inches the labels need beyond two lines."""
    two_lines = [_short(s, missing_of[s]) for s in scenarios]
    ax.set_xticks(range(len(scenarios)))
    if fits(two_lines, column):
        ax.set_xticklabels(two_lines)
        return 0.0
    one_line = [_short(s, missing_of[s], sep=" ") for s in scenarios]
    ax.set_xticklabels(one_line, rotation=45, ha="right", rotation_mode="anchor")
    return CHAR_WIDTH * max(len(label) for label in one_line) * 0.71


def _factors(expected: Mapping, dataset: str) -> list[float]:
    return sorted({f for (d, f, _m) in expected if d == dataset})


def _bar_or_missing(
    ax, x: float, mean: float, std: float, width: float, colour, **bar_kwargs
) -> None:
    """One bar (in %) with its seed std, or a vertical "missing" marker: never a silent gap."""
    if not np.isfinite(mean):
        ax.text(x, 2, "missing", rotation=90, ha="center", va="bottom", fontsize=5.5, color=colour)
        return
    ax.bar(
        x,
        mean * 100,
        width,
        color=colour,
        yerr=std * 100 if np.isfinite(std) else None,
        error_kw={"elinewidth": 0.6, "capsize": 1.5},
        **bar_kwargs,
    )


def _seed_stats(values: pd.Series) -> tuple[float, float, int]:
    values = values.dropna()
    if values.empty:
        return float("nan"), float("nan"), 0
    std = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
    return float(values.mean()), std, len(values)


def heatmap(
    board: pd.DataFrame,
    dataset: str,
    methods: Sequence[str],
    expected: Mapping,
    metric: str = "miou",
) -> Figure:
    """Methods x scenarios, mean over seeds (%), one panel per imbalance factor."""
    part, scenarios, missing_of = dataset_view(board, dataset)
    factors = _factors(expected, dataset)
    grids, partial = [], []
    for factor in factors:
        grid = np.full((len(methods), len(scenarios)), np.nan)
        short = np.zeros_like(grid, dtype=bool)
        for i, method in enumerate(methods):
            for j, scenario in enumerate(scenarios):
                sel = part[
                    (part["imbalance"] == factor)
                    & (part["method"] == method)
                    & (part["scenario"] == scenario)
                ]
                mean, _std, n = _seed_stats(sel[metric])
                grid[i, j] = mean * 100
                short[i, j] = 0 < n < expected.get((dataset, factor, method), 0)
        grids.append(grid)
        partial.append(short)
    finite = np.concatenate([g[np.isfinite(g)] for g in grids]) if grids else np.array([])
    vmin, vmax = (finite.min(), finite.max()) if finite.size else (0.0, 100.0)
    if vmax - vmin < 1:
        vmin, vmax = vmin - 0.5, vmax + 0.5
    panel_w = 0.62 * len(scenarios) + 0.2
    label_w = CHAR_WIDTH * max(len(m) for m in methods) + 0.3
    width = min(DOUBLE, label_w + panel_w * len(factors) + 0.7)
    width = max(width, SINGLE)
    column = (width - label_w - 0.7) / (len(factors) * max(1, len(scenarios)))
    fig = new_figure(width, 0.36 * len(methods) + 1.05)
    axes = fig.subplots(1, len(factors), squeeze=False, sharey=True)[0]
    extra = max(scenario_ticks(ax, scenarios, missing_of, column) for ax in axes)
    fig.set_figheight(fig.get_figheight() + extra)
    image = None
    for ax, factor, grid, short in zip(axes, factors, grids, partial, strict=True):
        image = ax.imshow(grid, cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto")
        for i in range(len(methods)):
            for j in range(len(scenarios)):
                value = grid[i, j]
                if not np.isfinite(value):
                    ax.add_patch(
                        Rectangle(
                            (j - 0.5, i - 0.5),
                            1,
                            1,
                            facecolor=MISSING_FACE,
                            hatch="///",
                            edgecolor="#999999",
                            linewidth=0,
                        )
                    )
                    ax.text(j, i, "missing", ha="center", va="center", fontsize=6)
                    continue
                shade = (value - vmin) / (vmax - vmin)
                ax.text(
                    j,
                    i,
                    f"{value:.1f}{'†' if short[i, j] else ''}",
                    ha="center",
                    va="center",
                    fontsize=6.5,
                    color="black" if shade > 0.55 else "white",
                )
        ax.set_yticks(range(len(methods)))
        ax.set_yticklabels(methods)
        ax.tick_params(length=0)
        ax.set_title(f"imbalance ×{factor:g}")
        ax.set_xlabel("modalities present at test time")
    if image is not None:
        bar = fig.colorbar(image, ax=list(axes), shrink=0.9, pad=0.02)
        bar.set_label(f"{split_name(board)} {SCORE_METRICS[metric]} (%)")
    note = "; † = fewer seeds than the grid" if any(p.any() for p in partial) else ""
    fig.suptitle(
        f"{dataset}: {split_name(board)} {SCORE_METRICS[metric]}, mean over seeds{note}",
        fontsize=8,
    )
    return fig


def class_iou_bars(
    board: pd.DataFrame,
    dataset: str,
    methods: Sequence[str],
    expected: Mapping,
    imbalance: float | None = None,
) -> Figure:
    """Per-class IoU (mean ± std over seeds), one panel per scenario, bars coloured by method;
    class names carry their frequency tier (H/B/T)."""
    part = board[board["dataset"] == dataset]
    factors = _factors(expected, dataset)
    factor = factors[0] if imbalance is None else imbalance
    part = part[part["imbalance"] == factor]
    scenarios = scenario_order(board[board["dataset"] == dataset])
    missing_of = dict(zip(board["scenario"], board["missing"], strict=False))
    classes = [c.removeprefix("iou_") for c in board.columns if c.startswith("iou_")]
    classes = [
        c for c in classes if board.loc[board["dataset"] == dataset, f"iou_{c}"].notna().any()
    ]
    tier_of = _tier_letters(board[board["dataset"] == dataset])
    colours = method_colours(methods)
    fig = new_figure(DOUBLE, 1.25 * len(scenarios) + 0.75)
    axes = fig.subplots(len(scenarios), 1, squeeze=False, sharex=True)[:, 0]
    width = 0.8 / max(1, len(methods))
    x = np.arange(len(classes))
    for ax, scenario in zip(axes, scenarios, strict=True):
        for k, method in enumerate(methods):
            sel = part[(part["method"] == method) & (part["scenario"] == scenario)]
            offset = (k - (len(methods) - 1) / 2) * width
            for c, name in enumerate(classes):
                mean, std, _n = _seed_stats(sel[f"iou_{name}"]) if len(sel) else (np.nan,) * 3
                _bar_or_missing(ax, c + offset, mean, std, width, colours[method], edgecolor="none")
        ax.set_ylim(0, 100)
        ax.set_ylabel("IoU (%)")
        ax.set_title(f"present: {scenario} (missing: {missing_of[scenario]})", loc="left")
        ax.grid(axis="y", linewidth=0.3, alpha=0.6)
        ax.set_axisbelow(True)
    axes[-1].set_xticks(x)
    axes[-1].set_xticklabels([f"{c.replace('_', ' ')} ({tier_of.get(c, '?')})" for c in classes])
    handles = [Patch(color=colours[m], label=m) for m in methods]
    fig.legend(
        handles=handles, loc="outside lower center", ncol=min(4, len(methods)), frameon=False
    )
    fig.suptitle(
        f"{dataset}: {split_name(board)} IoU per class (mean ± std over seeds), "
        f"imbalance ×{factor:g}; "
        "tier H = head, B = body, T = tail",
        fontsize=8,
    )
    return fig


def _tier_letters(part: pd.DataFrame) -> dict[str, str]:
    if part.empty:
        return {}
    first = part.iloc[0]
    out = {}
    for tier in ("head", "body", "tail"):
        for name in str(first[f"tier_{tier}"]).split("|"):
            if name:
                out[name] = tier[0].upper()
    return out


def imbalance_curves(
    board: pd.DataFrame,
    dataset: str,
    methods: Sequence[str],
    expected: Mapping,
    metric: str = "miou_tail",
) -> Figure:
    """`metric` versus the imbalance factor (log axis), one panel per scenario."""
    part, scenarios, missing_of = dataset_view(board, dataset)
    factors = _factors(expected, dataset)
    colours = method_colours(methods)
    cols = min(len(scenarios), 4)
    rows = math.ceil(len(scenarios) / cols)
    width = DOUBLE if cols > 1 else SINGLE
    fig = new_figure(width, 1.9 * rows + 0.6)
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True).ravel()
    for ax in axes[len(scenarios) :]:
        ax.set_visible(False)
    for ax, scenario in zip(axes, scenarios, strict=False):
        notes = []
        log_x = len(factors) > 1 and max(factors) / min(factors) >= 5
        for k, method in enumerate(methods):
            dodge = (k - (len(methods) - 1) / 2) * 0.04  # overlapping error bars stay visible
            means, stds, xs = [], [], []
            for factor in factors:
                sel = part[
                    (part["imbalance"] == factor)
                    & (part["method"] == method)
                    & (part["scenario"] == scenario)
                ]
                mean, std, _n = _seed_stats(sel[metric])
                if not np.isfinite(mean):
                    notes.append(f"missing: {method} ×{factor:g}")
                    continue
                xs.append(factor * (1 + dodge) if log_x else factor + dodge)
                means.append(mean * 100)
                stds.append(std * 100 if np.isfinite(std) else 0.0)
            if xs:
                ax.errorbar(
                    xs,
                    means,
                    yerr=stds,
                    color=colours[method],
                    marker="o",
                    markersize=3,
                    linewidth=1.2,
                    capsize=2,
                    elinewidth=0.7,
                    label=method,
                )
        if log_x:
            ax.set_xscale("log")
        ax.set_xticks(factors)
        ax.set_xticklabels([f"×{f:g}" for f in factors])
        ax.minorticks_off()
        ax.set_xlabel("imbalance factor (tail labels kept: 1/F)")
        ax.set_title(f"present: {scenario} (missing: {missing_of[scenario]})")
        ax.grid(linewidth=0.3, alpha=0.6)
        note_gaps(ax, notes)
    axes[0].set_ylabel(f"{split_name(board)} {SCORE_METRICS[metric]} (%)")
    axes[0].set_ylim(bottom=0)  # shared: set once, after every panel has autoscaled
    handles = [Line2D([], [], color=colours[m], marker="o", markersize=3, label=m) for m in methods]
    fig.legend(
        handles=handles, loc="outside lower center", ncol=min(4, len(methods)), frameon=False
    )
    fig.suptitle(
        f"{dataset}: {SCORE_METRICS[metric]} vs controlled imbalance (mean ± std over seeds)",
        fontsize=8,
    )
    return fig


def robustness_bars(
    robust: pd.DataFrame,
    dataset: str,
    methods: Sequence[str],
    expected: Mapping,
    split: str = "test",
) -> Figure:
    """Full / mean over missing scenarios / worst scenario, bars per method (mean ± std over
    seeds); columns all classes and tail tier, one row per imbalance factor; scores on
    `split` (the robustness frame does not say)."""
    part = robust[robust["dataset"] == dataset] if not robust.empty else robust
    factors = _factors(expected, dataset)
    colours = method_colours(methods)
    stats = (("full", "full"), ("mean_missing", "mean missing"), ("worst", "worst missing"))
    tiers = (("all", "all eval classes (mIoU)"), ("tail", "tail tier (mIoU)"))
    fig = new_figure(DOUBLE, 1.65 * len(factors) + 0.7)
    axes = fig.subplots(len(factors), len(tiers), squeeze=False, sharey="col")
    width = 0.8 / max(1, len(methods))
    tops = {}
    for tier, _title in tiers:  # each column (tier) gets its own scale
        highs = [0.0]
        if len(part):
            rows = part[part["tier"] == tier]
            for stat, _label in stats:
                high = rows[f"{stat}_mean"] + rows[f"{stat}_std"].fillna(0)
                highs += [float(v) for v in high if np.isfinite(v)]
        tops[tier] = min(100.0, max(2.0, 100 * max(highs) * 1.12))
    for r, factor in enumerate(factors):
        for c, (tier, tier_title) in enumerate(tiers):
            ax = axes[r, c]
            for k, method in enumerate(methods):
                rows = (
                    part[
                        (part["imbalance"] == factor)
                        & (part["method"] == method)
                        & (part["tier"] == tier)
                    ]
                    if len(part)
                    else part
                )
                offset = (k - (len(methods) - 1) / 2) * width
                for s, (stat, _label) in enumerate(stats):
                    mean = rows.iloc[0][f"{stat}_mean"] if len(rows) else np.nan
                    std = rows.iloc[0][f"{stat}_std"] if len(rows) else np.nan
                    _bar_or_missing(ax, s + offset, mean, std, width, colours[method])
            ax.set_xticks(range(len(stats)))
            ax.set_xticklabels([label for _s, label in stats])
            ax.set_ylim(0, tops[tier])
            ax.grid(axis="y", linewidth=0.3, alpha=0.6)
            ax.set_axisbelow(True)
            ax.set_title(f"{tier_title}, imbalance ×{factor:g}")
            ax.set_ylabel(f"{SPLIT_NAMES[split]} score (%)" if c == 0 else "tail-tier score (%)")
    handles = [Patch(color=colours[m], label=m) for m in methods]
    fig.legend(
        handles=handles, loc="outside lower center", ncol=min(4, len(methods)), frameon=False
    )
    fig.suptitle(f"{dataset}: robustness to missing modalities (mean ± std over seeds)", fontsize=8)
    return fig


def training_curves(
    logs: Sequence[tuple[dict, list[dict]]],
    val_records: Sequence[dict],
    dataset: str,
    methods: Sequence[str],
    selected: Mapping[str, int] | None = None,
) -> Figure:
    """Training loss and validation mIoU (all modalities) against steps; one line per run,
    colour = method, line style = imbalance factor; the selected checkpoint (`selected`, run id
    -> step, else the best validation) is starred."""
    colours = method_colours(methods)
    factors = sorted({spec["imbalance"] for spec, _ in logs if dataset_of(spec) == dataset})
    styles = {f: LINESTYLES[i % len(LINESTYLES)] for i, f in enumerate(factors)}
    fig = new_figure(DOUBLE, 2.3)
    loss_ax, val_ax = fig.subplots(1, 2)
    for spec, history in logs:
        label = label_of(spec)
        if dataset_of(spec) != dataset or label not in colours or not history:
            continue
        steps = [h["step"] for h in history]
        loss = [h.get("loss", np.nan) for h in history]
        loss_ax.plot(
            steps,
            loss,
            color=colours[label],
            linestyle=styles[spec["imbalance"]],
            linewidth=0.9,
            alpha=0.85,
            marker="." if len(steps) < 4 else None,
        )
    by_run: dict[str, list[dict]] = {}
    for rec in val_records:
        if rec["dataset"] == dataset and rec["method"] in colours:
            by_run.setdefault(rec["run_id"], []).append(rec)
    for run_id, records in by_run.items():
        records = sorted(records, key=lambda r: r["checkpoint_step"])
        first = records[0]
        colour, style = colours[first["method"]], styles.get(first["imbalance"], "-")
        steps = [r["checkpoint_step"] for r in records]
        scores = [100 * r["miou"] for r in records]
        val_ax.plot(
            steps, scores, color=colour, linestyle=style, linewidth=0.9, marker="o", markersize=2.5
        )
        best = int(np.nanargmax(scores)) if np.isfinite(scores).any() else 0
        if selected and selected.get(run_id) in steps:
            best = steps.index(selected[run_id])
        val_ax.plot(
            steps[best],
            scores[best],
            marker="*",
            markersize=6,
            color=colour,
            markeredgecolor="black",
            markeredgewidth=0.4,
            linestyle="none",
        )
    log_scale_if_spread(loss_ax)
    loss_ax.set_xlabel("training step")
    loss_ax.set_ylabel("training loss")
    loss_ax.set_title("training loss (one line per run)")
    val_ax.set_xlabel("training step")
    val_ax.set_ylabel("validation mIoU (%)")
    val_ax.set_title("validation mIoU, all modalities (★ = selected)")
    for ax in (loss_ax, val_ax):
        ax.grid(linewidth=0.3, alpha=0.6)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    handles = [Line2D([], [], color=colours[m], label=m) for m in methods]
    if len(factors) > 1:
        handles += [
            Line2D([], [], color="#555555", linestyle=styles[f], label=f"imbalance ×{f:g}")
            for f in factors
        ]
    fig.legend(
        handles=handles, loc="outside lower center", ncol=min(4, len(handles)), frameon=False
    )
    fig.suptitle(f"{dataset}: training curves", fontsize=8)
    return fig


def log_scale_if_spread(ax: Axes, ratio: float = 30.0) -> None:
    """Log y when the plotted lines are positive and span more than `ratio`: one method's loss
    on another scale (generative's pix2pix L1 weight of 100) must not flatten the rest."""
    values = np.concatenate(
        [np.asarray(line.get_ydata(), float) for line in ax.get_lines()] or [[]]
    )
    values = values[np.isfinite(values)]
    if values.size and values.min() > 0 and values.max() / values.min() > ratio:
        ax.set_yscale("log")


def cost_scatter(
    board: pd.DataFrame, dataset: str, methods: Sequence[str], metric: str = "miou"
) -> Figure:
    """Test score against training cost (TFLOPs of the whole run, log axis): one point per
    method (mean ± std over seeds), one panel per scenario; oracles drawn hollow, at the cost
    of all their per-scenario models."""
    part, scenarios, missing_of = dataset_view(board, dataset)
    part = part[part["status"] == "ok"] if "status" in part else part
    costs = cost_frame(part)
    colours = method_colours(methods)
    cols = min(len(scenarios), 4) or 1
    rows = max(1, math.ceil(len(scenarios) / cols))
    fig = new_figure(DOUBLE, 1.9 * rows + 0.5)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    drawn, hollow = set(), False
    for ax, scenario in zip(axes, scenarios, strict=False):
        for method in methods:
            sel = part[(part["method"] == method) & (part["scenario"] == scenario)]
            cost = costs.loc[costs["method"] == method, "train_tflops"].dropna()
            score, std, n = _seed_stats(sel[metric])
            if not n or cost.empty:
                continue
            oracle = "kind" in sel and (sel["kind"] == "oracle").any()
            ax.errorbar(
                cost.mean(),
                100 * score,
                yerr=100 * std if np.isfinite(std) else None,
                fmt="o",
                ms=4,
                mfc="white" if oracle else colours[method],
                mec=colours[method],
                ecolor=colours[method],
                elinewidth=0.6,
                capsize=1.5,
            )
            drawn.add(method)
            hollow |= bool(oracle)
        log_cost_axis(ax, costs["train_tflops"])
        ax.set_title(_short(scenario, missing_of[scenario]), fontsize=6.5)
        ax.grid(linewidth=0.3, alpha=0.6)
        ax.set_xlabel("training TFLOPs (run)")
        ax.set_ylabel(f"{split_name(board)} {SCORE_METRICS[metric]} (%)")
    for ax in axes[len(scenarios) :]:
        ax.set_visible(False)
    handles = [
        Line2D([], [], marker="o", linestyle="none", color=colours[m], label=m)
        for m in methods
        if m in drawn
    ]
    if hollow:
        handles.append(
            Line2D([], [], marker="o", linestyle="none", mfc="white", mec="#555555", label="oracle")
        )
    fig.legend(
        handles=handles, loc="outside lower center", ncol=min(4, len(handles)), frameon=False
    )
    fig.suptitle(f"{dataset}: score against training cost (mean ± std over seeds)", fontsize=8)
    return fig


def log_cost_axis(ax: Axes, costs: pd.Series) -> None:
    """A log x axis labelled at 1, 2 and 5 per decade only, its limits wide enough (a factor
    of 2.56 at least) that one such tick always falls inside: matplotlib's default labels
    every minor tick of a range under a decade, and they overprint each other."""
    ax.set_xscale("log")
    finite = costs[np.isfinite(costs) & (costs > 0)]
    if not finite.empty:
        ax.set_xlim(finite.min() / 1.6, finite.max() * 1.6)
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def band_line(
    ax,  # noqa: ANN001  (a matplotlib Axes)
    xs: Sequence[float],
    means: Sequence[float],
    stds: Sequence[float],
    colour: str,
    oracle: bool = False,
    label: str | None = None,
) -> None:
    """Seed means (in %) as a line with markers and a shaded ± std band.

    NaN means break the line instead of bridging a missing point; a NaN std (one seed) draws
    no band there. Oracles are dashed with hollow markers, as they are hollow in the cost
    scatter: a reference, not a competitor.
    """
    xs = np.asarray(xs, dtype=np.float64)
    means = 100 * np.asarray(means, dtype=np.float64)
    stds = 100 * np.asarray(stds, dtype=np.float64)
    ax.plot(
        xs,
        means,
        color=colour,
        linestyle="--" if oracle else "-",
        linewidth=1.1,
        marker="o",
        markersize=2.8,
        markerfacecolor="white" if oracle else colour,
        markeredgewidth=0.8,
        label=label,
    )
    band = np.isfinite(means) & np.isfinite(stds)
    if band.any():
        ax.fill_between(
            xs,
            np.where(band, means - stds, np.nan),
            np.where(band, means + stds, np.nan),
            color=colour,
            alpha=0.15,
            linewidth=0,
        )


def method_handles(
    methods: Sequence[str], colours: Mapping[str, str], oracle_methods: set[str]
) -> list[Line2D]:
    """Legend entries for `band_line` plots: one per method, oracles dashed and hollow."""
    return [
        Line2D(
            [],
            [],
            color=colours[m],
            linestyle="--" if m in oracle_methods else "-",
            marker="o",
            markersize=3,
            markerfacecolor="white" if m in oracle_methods else colours[m],
            label=f"{m} (oracle)" if m in oracle_methods else m,
        )
        for m in methods
    ]


def gap_note(
    ax,  # noqa: ANN001  (a matplotlib Axes)
    gaps: Mapping[str, Sequence[float]],
    grid: Sequence[float],
    what: str,
    unit: str = "",
) -> None:
    """Name, in the panel's corner, the points each method lacks (a line broken without a word
    would read as a plotting glitch): `missing: m (no results)` or `missing: m (severity 3, 4)`."""
    lines = []
    for method, points in gaps.items():
        if len(points) == len(grid):
            lines.append(f"missing: {method} (no results)")
        else:
            listed = ", ".join(f"{p:g}{unit}" for p in points)
            lines.append(f"missing: {method} ({what} {listed})")
    note_gaps(ax, lines)


def wrapped_title(width: float, lines: Sequence[str]) -> str:
    """A figure title of several lines, each wrapped to the figure's width: one-column figures
    otherwise cut long titles off at both edges."""
    import textwrap

    chars = max(30, int(width * 17))  # about 17 characters per inch at 8 pt
    return "\n".join(textwrap.fill(line, chars) for line in lines if line)


def legend_columns(width: float, labels: Sequence[str]) -> int:
    """Legend columns that fit the figure's width (at most four), from its longest label."""
    longest = max((len(label) for label in labels), default=1) + 5  # the line sample
    return max(1, min(4, len(labels), int(width * 19) // longest))


def framed_height(panel_rows: int, panel_height: float, title: str, legend_rows: int) -> float:
    """Figure height that leaves each panel `panel_height` inches after the title's lines and
    the legend's rows (constrained layout shrinks the panels otherwise)."""
    return panel_rows * panel_height + 0.3 + 0.14 * (title.count("\n") + 1) + 0.15 * legend_rows


def note_gaps(ax: Axes, lines: Sequence[str]) -> None:
    """Name what a panel lacks (missing runs, points) in small red text at its lower left,
    so a gap in a curve is never read as a result; nothing when nothing is missing."""
    if lines:
        ax.text(
            0.02,
            0.02,
            "\n".join(lines),
            transform=ax.transAxes,
            fontsize=5.5,
            va="bottom",
            color="#B00000",
        )
