"""Training with a modality missing: test mIoU against the share of training tiles without it.

A run's `train_missing` (spec and records) says which share of its training tiles lacked which
modality; `generate.distinguish` labels such runs `<method> (train −dsm 30%)` so that no table
averages them with the complete-data runs, and keeps the unqualified label as the run's
*family*. Where a family was trained under several conditions, this module lines them up:

- `condition_frame` (`train_missing.csv`): mean / std / n / 95 % t-CI over seeds of clean test
  mIoU per dataset x imbalance x family x condition x scenario, with the paired bootstrap
  (`frames.paired_comparison`: the same seeds and test tiles) of each condition against the
  family's complete-data runs;
- `condition_table`: families x conditions per scenario, * where the bootstrap says the
  condition differs from complete data;
- `rate_curves`: for each modality varied alone, mIoU against its missing rate (0 = complete),
  one panel per scenario, a line per family.

Only clean test data enters (corrupted evaluations have their own report); a validation report
(`report --split val`) lines up the validation records of the selected checkpoints alike.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from benchmark.report import plots
from benchmark.report.frames import (
    COMPLETE,
    SCORE_METRICS,
    clean_rows,
    paired_comparison,
    records_by_seed,
    scenario_order,
    split_name,
    split_of,
    train_missing_pairs,
    train_missing_phrase,
)
from benchmark.report.stats import NO_COMPARISON, summarize, test_description
from benchmark.report.tables import (
    MISSING_CELL,
    ORACLE_NOTE,
    TextTable,
    _bold_best,
    method_stub,
    oracles,
    slug,
    summary_cell,
)

log = logging.getLogger(__name__)

METRIC = "miou"
Expected = Mapping[tuple[str, float, str], int]


@dataclass(frozen=True)
class Condition:
    """A run label's family (its label without the training condition) and condition."""

    family: str
    train_missing: str
    """As the leaderboard spells it: `dsm=0.3`, or `none` for complete data."""


def condition_key(text: str) -> tuple:
    """Sort order of conditions: complete data first, then by modalities and rates."""
    pairs = train_missing_pairs(text)
    return (len(pairs), pairs)


def condition_name(text: str) -> str:
    """Column header of a condition: `complete` or `−dsm 30%`."""
    return "complete" if text == COMPLETE else train_missing_phrase(text)


def families(
    conditions: Mapping[str, Condition], dataset: str, expected: Expected
) -> dict[str, list[tuple[str, str]]]:
    """Family -> [(condition, label)] (in condition order) of one dataset, for the families
    trained under more than one condition; labels of the grid (`expected`) only."""
    out: dict[str, dict[str, str]] = {}
    for d, _f, label in expected:
        if d != dataset or label not in conditions:
            continue
        cond = conditions[label]
        out.setdefault(cond.family, {})[cond.train_missing] = label
    return {
        family: sorted(by_condition.items(), key=lambda item: condition_key(item[0]))
        for family, by_condition in out.items()
        if len(by_condition) > 1
    }


def has_conditions(conditions: Mapping[str, Condition], dataset: str, expected: Expected) -> bool:
    """Whether some method of `dataset` was trained under several training conditions."""
    return bool(families(conditions, dataset, expected))


def condition_frame(
    board: pd.DataFrame,
    records: Sequence[dict],
    methods: Sequence[str],
    expected: Expected,
    conditions: Mapping[str, Condition],
) -> pd.DataFrame:
    """train_missing.csv: per dataset x imbalance x family x condition x scenario, mIoU over
    seeds and the paired bootstrap against the family's complete-data runs."""
    board = clean_rows(board)
    keys = ("dataset", "imbalance", "method", "scenario")
    index = records_by_seed(records, keys, split=split_of(board))
    rows = []
    for dataset in dict.fromkeys(d for d, _f, _m in expected):
        lines = families(conditions, dataset, expected)
        if not lines:
            continue
        part = board[board["dataset"] == dataset]
        ok = part[part["status"] == "ok"] if "status" in part else part
        missing_of = dict(zip(part["scenario"], part["missing"], strict=False))
        factors = sorted({f for (d, f, _m) in expected if d == dataset})
        for factor in factors:
            for family in _family_order(lines, methods):
                labels = dict(lines[family])
                for scenario in scenario_order(part):
                    for condition, label in lines[family]:
                        values = ok.loc[
                            (ok["imbalance"] == factor)
                            & (ok["method"] == label)
                            & (ok["scenario"] == scenario),
                            METRIC,
                        ]
                        summary = summarize(values.tolist())
                        test = {}
                        complete = labels.get(COMPLETE)
                        if complete and condition != COMPLETE:
                            mine = index.get((dataset, factor, label, scenario), {})
                            ref = index.get((dataset, factor, complete, scenario), {})
                            test = dict(paired_comparison(mine, ref, (METRIC,)))
                        result = test.get(METRIC)
                        rows.append(
                            {
                                "dataset": dataset,
                                "imbalance": factor,
                                "method": family,
                                "label": label,
                                "train_missing": condition,
                                "scenario": scenario,
                                "missing": missing_of.get(scenario, ""),
                                "miou_mean": summary.mean,
                                "miou_std": summary.std,
                                "miou_n": summary.n,
                                "miou_ci_low": summary.ci_low,
                                "miou_ci_high": summary.ci_high,
                                "n_expected": expected.get((dataset, factor, label), 0),
                                **(result or NO_COMPARISON).columns(diff="diff_vs_complete"),
                            }
                        )
    return pd.DataFrame(rows)


def _family_order(lines: Mapping[str, list], methods: Sequence[str]) -> list[str]:
    """Families in report order: by the first of their labels in `methods`."""
    rank = {m: i for i, m in enumerate(methods)}
    return sorted(
        lines, key=lambda fam: min(rank.get(label, len(rank)) for _c, label in lines[fam])
    )


def condition_table(
    frame: pd.DataFrame,
    board: pd.DataFrame,
    dataset: str,
    methods: Sequence[str],
    conventions: str = "",
) -> TextTable:
    """Rows [imbalance x] scenario x family, columns training conditions (complete first):
    clean test mIoU (%), * = differs from the family's complete-data runs."""
    part = frame[frame["dataset"] == dataset]
    conds = sorted(dict.fromkeys(part["train_missing"]), key=condition_key)
    factors = list(dict.fromkeys(part["imbalance"]))
    several = len(factors) > 1
    lines = {fam: list(dict.fromkeys(rows["label"])) for fam, rows in part.groupby("method")}
    oracle_labels = oracles(clean_rows(board[board["dataset"] == dataset]))
    oracle_families = {fam for fam, labels in lines.items() if set(labels) & oracle_labels}
    table = TextTable(
        title=f"{dataset}: {split_name(board)} mIoU (%) by training condition (share of "
        "training tiles without a modality)",
        caption="",
        stub=(["imbalance"] if several else []) + ["scenario", "method"],
        columns=[condition_name(c) for c in conds],
        label=f"tab:{slug(dataset)}-train-missing",
        wide=len(conds) > 4,
    )
    order = _family_order({f: [(None, lab) for lab in labs] for f, labs in lines.items()}, methods)
    for factor in factors:
        for scenario in dict.fromkeys(part["scenario"]):
            here = part[(part["imbalance"] == factor) & (part["scenario"] == scenario)]
            missing = str(here["missing"].iloc[0]) if len(here) else ""
            name = f"{scenario} (full)" if missing == "none" else f"{scenario} (−{missing})"
            table.group_starts.append(len(table.rows))
            for family in order:
                rows = here[here["method"] == family]
                cells = []
                for cond in conds:
                    row = rows[rows["train_missing"] == cond]
                    if row.empty:
                        cells.append(summary_cell([], 0, text="n/t"))
                        continue
                    cell = summary_cell([], int(row["n_expected"].iloc[0]))
                    first = row.iloc[0]
                    cell.mean, cell.std, cell.n = (
                        float(first["miou_mean"]),
                        float(first["miou_std"]),
                        int(first["miou_n"]),
                    )
                    cell.ci = (float(first["miou_ci_low"]), float(first["miou_ci_high"]))
                    cell.significant = bool(first["significant"])
                    cells.append(cell)
                if family in oracle_families:
                    table.unranked.add(len(table.rows))
                stub = [name, method_stub(family, oracle_families)]
                table.rows.append(([f"×{factor:g}"] * several + stub, cells))
    _bold_best(table, ["max"] * len(conds))
    table.caption = (
        f"Mean ± std over seeds of clean {split_name(board)} mIoU (%) of each method trained "
        "under each "
        "condition: '−m p%' = modality m was missing from p % of the training tiles, complete = "
        "every modality on every tile. Best per column and scenario in bold. "
        f"* = differs from the same method trained on complete data, same scenario "
        f"({test_description(split=split_name(board))}). {ORACLE_NOTE * bool(oracle_families)}"
        f"{MISSING_CELL} = run missing or unfinished; † = fewer seeds than the grid; n/t = "
        "this method was not trained under this condition. " + conventions
    )
    return table


def varied_modalities(frame: pd.DataFrame, dataset: str) -> list[str]:
    """Modalities some family of `dataset` was trained without at more than one rate (or at
    one rate besides complete data): each gets a figure."""
    part = frame[frame["dataset"] == dataset]
    found: dict[str, set] = {}
    for cond in dict.fromkeys(part["train_missing"]):
        pairs = train_missing_pairs(cond)
        if len(pairs) == 1:
            found.setdefault(pairs[0][0], set()).add(pairs[0][1])
    return sorted(found)


def rate_curves(
    frame: pd.DataFrame,
    board: pd.DataFrame,
    dataset: str,
    modality: str,
    methods: Sequence[str],
) -> Figure:
    """Clean test mIoU against the share of training tiles without `modality` (0 = complete),
    one panel per scenario, a line per method (mean over seeds, shaded ± std); conditions
    that remove other modalities as well are in the table only. Lowest imbalance factor."""
    part = frame[frame["dataset"] == dataset]
    factor = min(part["imbalance"])
    part = part[part["imbalance"] == factor]
    rate_of = {COMPLETE: 0.0}
    for cond in dict.fromkeys(part["train_missing"]):
        pairs = train_missing_pairs(cond)
        if len(pairs) == 1 and pairs[0][0] == modality:
            rate_of[cond] = pairs[0][1]
    part = part[part["train_missing"].isin(rate_of)]
    lines = {fam: list(dict.fromkeys(rows["label"])) for fam, rows in part.groupby("method")}
    order = _family_order({f: [(None, lab) for lab in labs] for f, labs in lines.items()}, methods)
    order = [f for f in order if (part.loc[part["method"] == f, "train_missing"] != COMPLETE).any()]
    oracle_labels = oracles(clean_rows(board[board["dataset"] == dataset]))
    oracle_families = {fam for fam, labels in lines.items() if set(labels) & oracle_labels}
    colours = plots.method_colours([*methods, *(f for f in order if f not in methods)])
    scenarios = list(dict.fromkeys(part["scenario"]))
    rates = sorted(set(rate_of.values()))
    series: dict[str, dict[str, tuple[list, list, list]]] = {}
    gaps: dict[str, dict[str, list[float]]] = {}
    partial: set[str] = set()
    for scenario in scenarios:
        here = part[part["scenario"] == scenario]
        series[scenario], gaps[scenario] = {}, {}
        for family in order:
            mine = here[here["method"] == family]
            by_rate = {rate_of[r.train_missing]: r for r in mine.itertuples()}
            xs = [r for r in rates if r in by_rate]
            for r in rates:
                if r not in by_rate or not np.isfinite(by_rate[r].miou_mean):
                    gaps[scenario].setdefault(family, []).append(100 * r)
                elif by_rate[r].miou_n < by_rate[r].n_expected:
                    partial.add(f"{family} at {100 * r:g}%")
            series[scenario][family] = (
                [100 * r for r in xs],
                [by_rate[r].miou_mean for r in xs],
                [by_rate[r].miou_std for r in xs],
            )
    cols = min(len(scenarios), 4) or 1
    rows = max(1, math.ceil(len(scenarios) / cols))
    width = plots.DOUBLE if cols > 1 else plots.SINGLE
    details = ["mean ± std over seeds"]
    if len(set(frame.loc[frame["dataset"] == dataset, "imbalance"])) > 1:
        details.append(f"imbalance ×{factor:g} (the table gives every factor)")
    if partial:
        details.append(f"fewer seeds than the grid: {', '.join(sorted(partial))}")
    title = plots.wrapped_title(
        width,
        [
            f"{dataset}: {split_name(board)} mIoU against the share of training tiles without "
            f"{modality}",
            "; ".join(details),
        ],
    )
    handles = plots.method_handles(order, colours, oracle_families)
    ncol = plots.legend_columns(width, [h.get_label() for h in handles])
    fig = plots.new_figure(
        width, plots.framed_height(rows, 1.5, title, math.ceil(len(handles) / ncol))
    )
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True).ravel()
    for ax in axes[len(scenarios) :]:
        ax.set_visible(False)
    for ax, scenario in zip(axes, scenarios, strict=False):
        for family, (xs, means, stds) in series[scenario].items():
            plots.band_line(ax, xs, means, stds, colours[family], family in oracle_families)
        here = part[part["scenario"] == scenario]
        missing = str(here["missing"].iloc[0]) if len(here) else ""
        ax.set_title(f"present: {scenario} (missing: {missing})")
        ax.set_xticks([100 * r for r in rates])
        ax.set_xticklabels([f"{100 * r:g}" for r in rates])
        ax.set_xlabel(f"training tiles without {modality} (%)")
        ax.grid(linewidth=0.3, alpha=0.6)
        plots.gap_note(ax, gaps[scenario], [100 * r for r in rates], "rate", unit="%")
    for ax in axes[::cols]:
        ax.set_ylabel(f"{split_name(board)} {SCORE_METRICS[METRIC]} (%)")
    fig.legend(handles=handles, loc="outside lower center", ncol=ncol, frameon=False)
    fig.suptitle(title, fontsize=8)
    return fig
