"""Report tables as data: cells with their marks (bold best, significance, partial seeds),
built from the leaderboard and robustness frames. `render` turns a `TextTable` into Markdown
or LaTeX, so both show the same cells and marks.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from benchmark.report.frames import (
    COMPLETE,
    SCORE_METRICS,
    SIGNIFICANCE_METRICS,
    SPLIT_NAMES,
    TIERS,
    cost_frame,
    dataset_view,
    requested_steps,
    split_name,
    train_missing_pairs,
)
from benchmark.report.stats import summarize, test_description
from benchmark.run.selection import SELECTION_DESCRIPTION

MISSING_CELL = "–"


@dataclass
class Cell:
    """A table cell: mean ± std in percent (or a ratio), with marks; `mean` NaN = missing."""

    mean: float = float("nan")
    std: float = float("nan")
    n: int = 0
    expected: int = 0
    ci: tuple[float, float] | None = None
    scale: float = 100.0
    digits: int = 1
    bold: bool = False
    significant: bool = False
    note: str = ""
    """Short text after the value, e.g. the worst scenario's name."""
    text: str = ""
    """Shown instead of the value when set (e.g. `reference`)."""

    @property
    def missing(self) -> bool:
        return not math.isfinite(self.mean)

    @property
    def partial(self) -> bool:
        return not self.missing and self.n < self.expected


@dataclass
class TextTable:
    """Stub columns (text) + value columns (cells), rows grouped by `groups` boundaries."""

    title: str
    caption: str
    stub: list[str]
    columns: list[str]
    rows: list[tuple[list[str], list[Cell]]] = field(default_factory=list)
    group_starts: list[int] = field(default_factory=list)
    """Row indices where a new group begins (a rule in LaTeX)."""
    label: str = ""
    wide: bool = False
    markdown_note: str = "Markdown cells add the 95 % t-interval of the seed mean in brackets."
    """Caption text only true of the Markdown rendering (e.g. its CI brackets)."""
    unranked: set[int] = field(default_factory=set)
    """Rows never marked best: oracles (one model per scenario) are references, not winners."""


ORACLE_NOTE = "Oracle rows (one model trained per scenario) are references, never marked best. "


def oracles(board: pd.DataFrame) -> set[str]:
    """Method labels whose runs are oracles (`kind` = oracle)."""
    if "kind" not in board:
        return set()
    return set(board.loc[board["kind"] == "oracle", "method"])


def method_stub(method: str, oracle_methods: set[str]) -> str:
    """A method's row name: oracles say so."""
    return f"{method} (oracle)" if method in oracle_methods else method


def _bold_best(table: TextTable, better: Sequence[str | None]) -> None:
    """Bold the best mean per value column within each row group (ties all bold); rows in
    `table.unranked` (oracles) neither compete nor get bold."""
    bounds = sorted(set([0, *table.group_starts])) + [len(table.rows)]
    for start, stop in zip(bounds[:-1], bounds[1:], strict=False):
        group = [
            cells
            for index, (_, cells) in enumerate(table.rows[start:stop], start)
            if index not in table.unranked
        ]
        for col, rule in enumerate(better):
            if rule is None:
                continue
            values = [c[col].mean for c in group if not c[col].missing]
            if len(values) < 2:
                continue
            best = max(values) if rule == "max" else min(values)
            for cells in group:
                if not cells[col].missing and round(cells[col].mean, 9) == round(best, 9):
                    cells[col].bold = True


def summary_cell(values: Iterable[float], expected: int, **kwargs) -> Cell:
    summary = summarize(list(values))
    ci = (summary.ci_low, summary.ci_high)
    return Cell(summary.mean, summary.std, summary.n, expected, ci=ci, **kwargs)


def _fmt_factor(value: float) -> str:
    return f"×{value:g}"


def caption_conventions(board: pd.DataFrame, tiles: int | None = None) -> str:
    """Selection rule and evaluation conventions, one sentence each, for every caption."""
    if board.empty:
        return ""
    first = board.iloc[0]
    classes = str(first["eval_classes"]).replace("|", ", ")
    tier_text = "; ".join(
        f"{tier}: {str(first[f'tier_{tier}']).replace('|', ', ') or 'none'}" for tier in TIERS
    )
    seeds = ", ".join(str(s) for s in sorted(board["seed"].unique()))
    split = split_name(board)
    tiles_text = f" over {tiles} {split} tiles" if tiles else ""
    return (
        f"{selection_sentence(board)} {training_sentence(board)} "
        f"{split.capitalize()} split{tiles_text}; macro means over the eval classes ({classes}); "
        f"pixels labelled {int(first['ignore_index'])} are ignored; label set "
        f"{first['label_set'] or 'default'}; frequency tiers by training-pixel share "
        f"({tier_text}). "
        f"Preset {first['preset']}, {_steps_text(first)}; seeds {seeds}."
    )


def selection_sentence(board: pd.DataFrame) -> str:
    """The selection rule of a board's rows, with what it does (a board shows one rule's
    records: `frames.leaderboard`)."""
    rules = sorted({str(r) for r in board.get("selection", pd.Series(dtype=str)).dropna() if r})
    if not rules:
        return ""
    described = "; ".join(f"{r} ({SELECTION_DESCRIPTION.get(r, 'see records')})" for r in rules)
    return f"Selection: {described}."


def training_sentence(board: pd.DataFrame) -> str:
    """What the shown runs were trained on: complete data, or which share of the training
    tiles lacked which modality.

    Where a dataset's runs span several training conditions, the runs trained with a modality
    missing carry `(train −<modality> <rate>%)` in their label (`generate.distinguish`), so no
    cell averages runs of different conditions; the sentence tells how to read that mark.
    """
    values = board.get("train_missing", pd.Series(dtype=str)).dropna()
    conditions = sorted({str(v) for v in values} or {COMPLETE})
    mark = "'(train −m p%)' after a label = modality m was missing from p % of the training tiles"
    if conditions == [COMPLETE]:
        return "Training data complete (every modality on every training tile)."
    if len(conditions) == 1:
        parts = ", ".join(
            f"{name} missing from {100 * rate:g} %"
            for name, rate in train_missing_pairs(conditions[0])
        )
        return f"Training data: {parts} of the training tiles, for every run."
    if COMPLETE in conditions:
        return f"Training data complete unless the label says otherwise: {mark}."
    return f"Training data as each label says: {mark}."


def _steps_text(row: pd.Series) -> str:
    budget = row.get("budget", "steps")
    steps = requested_steps(row["steps"], budget, row.get("budget_ratio"))
    if budget == "flops":
        return (
            f"equal training FLOPs: each method's steps scaled to the baseline's FLOPs at "
            f"{steps} steps (ratios in the cost table)"
        )
    return f"{steps} steps"


def scenario_table(
    board: pd.DataFrame,
    dataset: str,
    methods: Sequence[str],
    metric: str,
    expected: Mapping[tuple[str, float, str], int],
    robust: pd.DataFrame | None = None,
    significance: pd.DataFrame | None = None,
    reference: str = "",
    conventions: str = "",
) -> TextTable:
    """Rows imbalance x method, columns scenarios (+ mean over missing scenarios)."""
    part, scenarios, missing_of = dataset_view(board, dataset)
    factors = sorted({f for (d, f, _m) in expected if d == dataset} | set(part["imbalance"]))
    columns = [
        f"{s} (−{missing_of[s]})" if missing_of[s] != "none" else f"{s} (full)" for s in scenarios
    ]
    tier_name = SCORE_METRICS[metric]
    oracle_methods = oracles(part)
    tier = {"miou": "all", "mf1": None}.get(metric, metric.removeprefix("miou_"))
    with_mean = robust is not None and tier is not None and metric.startswith("miou")
    table = TextTable(
        title=f"{dataset}: {split_name(board)} {tier_name} (%) per missing-modality scenario",
        caption="",
        stub=["imbalance", "method"],
        columns=columns + (["mean missing"] if with_mean else []),
        label=f"tab:{slug(dataset)}-{metric}",
        wide=len(columns) > 4,
    )
    sig = _significance_lookup(significance, metric)
    for factor in factors:
        table.group_starts.append(len(table.rows))
        for method in methods:
            n_expected = expected.get((dataset, factor, method), 0)
            rows = part[(part["imbalance"] == factor) & (part["method"] == method)]
            cells = []
            for scenario in scenarios:
                values = rows.loc[rows["scenario"] == scenario, metric]
                cell = summary_cell(values, n_expected)
                cell.significant = sig.get((dataset, factor, method, scenario), False)
                cells.append(cell)
            if with_mean:
                rob = robust[
                    (robust["dataset"] == dataset)
                    & (robust["imbalance"] == factor)
                    & (robust["method"] == method)
                    & (robust["tier"] == tier)
                ]
                cells.append(_rob_cell(rob, "mean_missing", n_expected))
            if method in oracle_methods:
                table.unranked.add(len(table.rows))
            table.rows.append(([_fmt_factor(factor), method_stub(method, oracle_methods)], cells))
    _bold_best(table, ["max"] * len(table.columns))
    marks = "Best per column and imbalance factor in bold. "
    if oracle_methods & set(methods):
        marks += ORACLE_NOTE
    if reference and significance is not None and metric in SIGNIFICANCE_METRICS:
        test = test_description(split=split_name(board))
        marks += f"* = differs from {reference} in the same column ({test}). "
    table.caption = (
        f"Mean ± std over seeds ({tier_name} in %, '(−x)' = modality x missing at test time). "
        f"{marks}"
        f"{MISSING_CELL} = run missing or unfinished; † = fewer seeds than the grid. "
        + ("'mean missing' = mean over the scenarios with a modality missing. " * with_mean)
        + conventions
    )
    return table


def _rob_cell(rob: pd.DataFrame, stat: str, expected: int, **kwargs) -> Cell:
    if rob.empty:
        return Cell(expected=expected, **kwargs)
    row = rob.iloc[0]
    finished, defined = int(row["n_seeds"]), int(row[f"{stat}_n"])
    cell = Cell(
        row[f"{stat}_mean"],
        row[f"{stat}_std"],
        finished,  # † marks seeds missing from the grid, not undefined summaries
        expected,
        ci=(row[f"{stat}_ci_low"], row[f"{stat}_ci_high"]),
        **kwargs,
    )
    if finished and not defined:
        cell.text = "n/a"
    elif defined < finished:
        cell.note = f"n={defined}"
    return cell


def _significance_lookup(significance: pd.DataFrame | None, metric: str) -> dict:
    if significance is None or significance.empty:
        return {}
    part = significance[significance["metric"] == metric]
    return {
        (r.dataset, r.imbalance, r.method, r.scenario): bool(r.significant)
        for r in part.itertuples()
    }


def robustness_table(
    robust: pd.DataFrame,
    dataset: str,
    methods: Sequence[str],
    expected: Mapping[tuple[str, float, str], int],
    reference: str,
    conventions: str = "",
    tier: str = "all",
    oracle_methods: set[str] | None = None,
    split: str = "test",
) -> TextTable:
    """Rows imbalance x method; full / mean missing / worst / retention / Δ vs reference of
    one tier's mIoU (`all` = every eval class) on `split` (the robustness frame does not say)."""
    part = robust[robust["dataset"] == dataset] if not robust.empty else robust
    factors = sorted({f for (d, f, _m) in expected if d == dataset})
    what = "mIoU" if tier == "all" else f"{tier}-tier mIoU"
    table = TextTable(
        title=f"{dataset}: robustness to missing modalities, {SPLIT_NAMES[split]} {what} (%)",
        caption="",
        stub=["imbalance", "method"],
        columns=["full", "mean missing", "worst (scenario)", "retention", f"Δ vs {reference}"],
        label=f"tab:{slug(dataset)}-robustness-{tier}",
        wide=True,
    )
    for factor in factors:
        table.group_starts.append(len(table.rows))
        for method in methods:
            n_expected = expected.get((dataset, factor, method), 0)
            rows = part
            if len(part):
                rows = part[
                    (part["imbalance"] == factor)
                    & (part["method"] == method)
                    & (part["tier"] == tier)
                ]
            worst = _rob_cell(rows, "worst", n_expected)
            if not worst.missing:
                worst.note = ", ".join(
                    filter(None, [str(rows.iloc[0]["worst_scenario"]), worst.note])
                )
            full = _rob_cell(rows, "full", n_expected)
            vs_ref = _rob_cell(rows, "vs_ref", n_expected)
            if method == reference and not full.missing:
                vs_ref = Cell(0.0, n=n_expected, expected=n_expected, text="reference")
            cells = [
                full,
                _rob_cell(rows, "mean_missing", n_expected),
                worst,
                _rob_cell(rows, "retention", n_expected),
                vs_ref,
            ]
            if method in (oracle_methods or set()):
                table.unranked.add(len(table.rows))
            row_name = method_stub(method, oracle_methods or set())
            table.rows.append(([_fmt_factor(factor), row_name], cells))
    _bold_best(table, ["max", "max", "max", "max", None])
    table.caption = (
        f"Per seed, then mean ± std over seeds, on the {what}: full = all modalities present; "
        "mean missing = unweighted mean over the scenarios with at least one modality missing; "
        "worst = the lowest of those (in parentheses the scenario lowest on the seed mean); "
        f"retention = mean missing / full (%); Δ vs {reference} = mean missing minus "
        f"{reference}'s, paired by seed (points; positive = more robust). Best per column and "
        f"imbalance factor in bold; {MISSING_CELL} = missing or unfinished run(s) (a seed missing "
        "any scenario gives no summary); † = fewer seeds than the grid; n/a = undefined for "
        "every seed (e.g. retention with a full score of 0), n=k = defined for k seeds only. "
        + conventions
    )
    return table


def imbalance_table(
    board: pd.DataFrame,
    dataset: str,
    methods: Sequence[str],
    expected: Mapping[tuple[str, float, str], int],
    metric: str = "miou_tail",
    conventions: str = "",
) -> TextTable:
    """Rows scenario x method, columns imbalance factors: how `metric` falls as imbalance
    grows under each missing-modality scenario."""
    part, scenarios, missing_of = dataset_view(board, dataset)
    oracle_methods = oracles(part)
    factors = sorted({f for (d, f, _m) in expected if d == dataset} | set(part["imbalance"]))
    table = TextTable(
        title=f"{dataset}: {split_name(board)} {SCORE_METRICS[metric]} (%) versus controlled "
        "imbalance",
        caption="",
        stub=["scenario", "method"],
        columns=[f"imbalance {_fmt_factor(f)}" for f in factors],
        label=f"tab:{slug(dataset)}-imbalance",
        wide=len(factors) > 4,
    )
    for scenario in scenarios:
        table.group_starts.append(len(table.rows))
        name = (
            f"{scenario} (−{missing_of[scenario]})"
            if missing_of[scenario] != "none"
            else (f"{scenario} (full)")
        )
        for method in methods:
            cells = []
            for factor in factors:
                values = part.loc[
                    (part["scenario"] == scenario)
                    & (part["method"] == method)
                    & (part["imbalance"] == factor),
                    metric,
                ]
                cells.append(summary_cell(values, expected.get((dataset, factor, method), 0)))
            if method in oracle_methods:
                table.unranked.add(len(table.rows))
            table.rows.append(([name, method_stub(method, oracle_methods)], cells))
    _bold_best(table, ["max"] * len(factors))
    table.caption = (
        f"Imbalance ×F hides the tail classes' training labels in random 16 px blocks with "
        f"probability 1 − 1/F (same blocks for every method and seed; test labels untouched). "
        f"Mean ± std over seeds; best per column and scenario in bold; {MISSING_CELL} = run "
        "missing or unfinished; † = fewer seeds than the grid. " + conventions
    )
    return table


def slug(text: str, keep: str = "") -> str:
    """`text` with every character but letters, digits and `keep` turned into '-' (for LaTeX
    labels and file names)."""
    return "".join(c if c.isalnum() or c in keep else "-" for c in text).strip("-")


COST_COLUMNS = (
    ("params_trained", "params trained (M)", 1e-6, 2),
    ("params_inference", "params at inference, full (M)", 1e-6, 2),
    ("train_gflops_per_step", "train GFLOPs / step", 1.0, 2),
    ("train_tflops", "train TFLOPs (run)", 1.0, 1),
    ("infer_gflops_per_window", "infer GFLOPs / window, full", 1.0, 3),
    ("steps", "steps", 1.0, 0),
    ("train_minutes", "train minutes", 1.0, 1),
    ("step_ms", "step ms (median)", 1.0, 0),
)
"""(leaderboard column, header, scale, digits) of the cost table."""
WALL_TIMES = ("train_minutes", "step_ms")


def cost_table(
    board: pd.DataFrame,
    dataset: str,
    methods: Sequence[str],
    expected: Mapping[tuple[str, float, str], int],
    conventions: str = "",
) -> TextTable:
    """Rows imbalance x method; what each method cost with every modality present."""
    part, _, _ = dataset_view(board, dataset)
    oracle_methods = oracles(part)
    costs = cost_frame(part)
    factors = sorted({f for (d, f, _m) in expected if d == dataset})
    table = TextTable(
        title=f"{dataset}: cost of training and inference",
        caption="",
        stub=["imbalance", "method", "kind", "budget"],
        columns=[header for _c, header, _s, _d in COST_COLUMNS],
        label=f"tab:{slug(dataset)}-cost",
        wide=True,
    )
    for factor in factors:
        table.group_starts.append(len(table.rows))
        for method in methods:
            n_expected = expected.get((dataset, factor, method), 0)
            rows = (
                costs[(costs["imbalance"] == factor) & (costs["method"] == method)]
                if len(costs)
                else costs
            )
            cells = [
                summary_cell(
                    (rows[column] * scale).tolist() if len(rows) else [],
                    n_expected,
                    scale=1.0,
                    digits=digits,
                )
                for column, _header, scale, digits in COST_COLUMNS
            ]
            for cell, (column, *_rest) in zip(cells, COST_COLUMNS, strict=True):
                if column not in WALL_TIMES:  # counts do not vary over seeds: no ± 0.00
                    cell.std, cell.ci = float("nan"), None
            kind = "oracle" if method in oracle_methods else "single-model"
            budget = _budget_text(rows)
            table.rows.append(([_fmt_factor(factor), method, kind, budget], cells))
    _bold_best(table, [None] * len(COST_COLUMNS))
    table.caption = (
        "Mean ± std over seeds, every modality present. Parameters trained = those the "
        "method's optimisers update; at inference = those of the modules that run to predict. "
        "GFLOPs counted by PyTorch's FLOP counter on real calls: a training step (mean over "
        "five steps spread over the run; forward, backward and the method's extra passes, "
        "not the optimiser's element-wise updates) and one evaluation window at batch 1. "
        "Train TFLOPs = GFLOPs per step x steps; for an oracle, parameters trained, TFLOPs and "
        "minutes add up its per-scenario models. Minutes and step ms are wall times on the "
        "run's device (validation excluded from step ms). Budget `flops` = steps scaled so the "
        f"training FLOPs equal the baseline's (ratio in brackets). {MISSING_CELL} = not "
        "recorded (runs written before costs were kept) or missing. " + conventions
    )
    return table


def _budget_text(rows: pd.DataFrame) -> str:
    if rows.empty or "budget" not in rows or rows["budget"].isna().all():
        return MISSING_CELL
    budget = str(rows["budget"].iloc[0])
    if budget == "flops":
        low, high = float(rows["budget_ratio_min"].min()), float(rows["budget_ratio_max"].max())
        span = f"x{low:.2f}" if round(low, 2) == round(high, 2) else f"x{low:.2f}–{high:.2f}"
        return f"flops ({span})"
    return budget
