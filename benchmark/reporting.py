"""Tables as pure functions of evaluation records."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from rich.markup import escape
from rich.table import Table

from benchmark.io import atomic_write_text
from benchmark.records import SELECTION_DESCRIPTION
from benchmark.stats import paired_bootstrap, summarize, test_description

BASE_COLUMNS = [
    "dataset",
    "method",
    "imbalance",
    "scenario",
    "missing",
    "n_present",
    "seed",
    "split",
    "status",
    "miou",
    "mf1",
    "oa",
    "kappa",
    "miou_head",
    "miou_body",
    "miou_tail",
    "mf1_head",
    "mf1_body",
    "mf1_tail",
]
TRAILING_COLUMNS = [
    "tier_head",
    "tier_body",
    "tier_tail",
    "eval_classes",
    "label_set",
    "ignore_index",
    "selection",
    "checkpoint_step",
    "steps",
    "preset",
    "method_name",
    "run_id",
    "commit",
    "error",
]
TIERS = ("head", "body", "tail")


def leaderboard(records: Iterable[dict], split: str = "test") -> pd.DataFrame:
    """Tidy long table: one row per dataset x method x imbalance x scenario x seed.

    Only the selected checkpoint's records of `split` enter; per-class IoU/F1 become
    `iou_<class>` / `f1_<class>` columns, tier means `miou_<tier>` / `mf1_<tier>`.
    """
    rows = []
    for rec in records:
        if rec["split"] != split or not rec["selection"]:
            continue
        row = {key: rec[key] for key in BASE_COLUMNS + TRAILING_COLUMNS if key in rec}
        row["eval_classes"] = "|".join(rec["eval_classes"])
        row["status"], row["error"] = "ok", ""
        for tier in TIERS:
            row[f"miou_{tier}"] = rec["tier_miou"][tier]
            row[f"mf1_{tier}"] = rec["tier_mf1"][tier]
            row[f"tier_{tier}"] = "|".join(rec["tiers"][tier])
        for name, iou, f1 in zip(rec["classes"], rec["iou"], rec["f1"], strict=True):
            row[f"iou_{name}"] = iou
            row[f"f1_{name}"] = f1
        rows.append(row)
    if not rows:
        return pd.DataFrame(columns=BASE_COLUMNS + TRAILING_COLUMNS)
    frame = pd.DataFrame(rows)
    class_columns = [c for c in frame.columns if c.startswith(("iou_", "f1_"))]
    class_columns = sorted(
        class_columns, key=lambda c: (not c.startswith("iou_"), list(frame.columns).index(c))
    )
    return frame[BASE_COLUMNS + class_columns + TRAILING_COLUMNS]


def scenario_order(frame: pd.DataFrame) -> list[str]:
    """Full-modality scenario first, then by decreasing number of present modalities."""
    pairs = frame[["scenario", "n_present"]].drop_duplicates()
    pairs = pairs.sort_values(["n_present", "scenario"], ascending=[False, True])
    return list(pairs["scenario"])


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    atomic_write_text(path, frame.to_csv(index=False, float_format="%.6f"))


def _cell(values: pd.Series) -> str:
    values = values.dropna()
    if values.empty:
        return "–"
    mean = 100 * values.mean()
    if len(values) > 1:
        return f"{mean:.1f}±{100 * values.std(ddof=1):.1f}"
    return f"{mean:.1f}"


def _status_note(rows: pd.DataFrame) -> str:
    """'' when every seed of the cell has results, else e.g. ' [1 failed]'."""
    if "status" not in rows:
        return ""
    bad = rows.loc[rows["status"] != "ok", "status"].value_counts()
    return "".join(f" [{count} {status}]" for status, count in bad.items())


def wide_table(
    frame: pd.DataFrame, methods: Sequence[str], dataset: str, imbalance: float = 1.0
) -> Table:
    """Methods x scenarios, mIoU / mF1 in percent (mean±std over seeds).

    A cell without results shows '–'; seeds that failed or are missing are named in the cell.
    """
    part = frame[(frame["dataset"] == dataset) & (frame["imbalance"] == imbalance)]
    ok = part[part["status"] == "ok"] if "status" in part else part
    scenarios = scenario_order(part)
    selection = ok["selection"].iloc[0] if len(ok) else ""
    seeds = sorted(part["seed"].unique()) if len(part) else []
    classes = ok["eval_classes"].iloc[0].replace("|", ", ") if len(ok) else ""
    table = Table(
        title=f"{dataset}{f' · imbalance ×{imbalance:g}' if imbalance != 1 else ''}: "
        f"test mIoU / mF1 (%), seeds {', '.join(map(str, seeds))}",
        caption=f"selection: {selection} — {SELECTION_DESCRIPTION.get(selection, '')}; "
        f"means over: {classes}",
    )
    table.add_column("method", style="bold")
    for scenario in scenarios:
        missing = part.loc[part["scenario"] == scenario, "missing"].iloc[0]
        table.add_column(f"{scenario}\n(missing: {missing})", justify="right")
    for method in methods:
        cells = []
        for scenario in scenarios:
            sel = part[(part["method"] == method) & (part["scenario"] == scenario)]
            cells.append(f"{_cell(sel['miou'])} / {_cell(sel['mf1'])}{_status_note(sel)}")
        table.add_row(escape(method), *cells)
    return table


def is_missing(value: float) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


# --------------------------------------------------------------------------- report tables
# Pure functions of the long leaderboard (and, for significance, of the records' per-tile
# confusion matrices). A table is built once as `TextTable`, then rendered as Markdown or
# LaTeX, so both show the same cells, bold marks and significance marks.

MISSING_CELL = "–"
SCORE_METRICS = {
    "miou": "mIoU",
    "mf1": "mF1",
    "miou_head": "head-tier mIoU",
    "miou_body": "body-tier mIoU",
    "miou_tail": "tail-tier mIoU",
}
SIGNIFICANCE_METRICS = ("miou", "miou_tail")


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


def _fmt(cell: Cell, latex: bool, with_ci: bool) -> str:
    if cell.text:
        return latex_escape(cell.text) if latex else cell.text
    if cell.missing:
        return "--" if latex else MISSING_CELL
    pm = r"$\pm$" if latex else "±"
    text = f"{cell.scale * cell.mean:.{cell.digits}f}"
    if math.isfinite(cell.std):
        text += f" {pm} {cell.scale * cell.std:.{cell.digits}f}"
    if cell.bold:
        text = rf"\textbf{{{text}}}" if latex else f"**{text}**"
    marks = ("*" if cell.significant else "") + ("†" if cell.partial else "")
    if marks and not latex:
        marks = marks.replace("*", "\\*")  # a literal asterisk, not Markdown emphasis
    if marks:
        tex_marks = marks.replace("†", r"\dagger")
        text += f"$^{{{tex_marks}}}$" if latex else marks
    if with_ci and cell.ci is not None and all(math.isfinite(v) for v in cell.ci):
        low, high = (cell.scale * v for v in cell.ci)
        text += f" [{low:.{cell.digits}f}, {high:.{cell.digits}f}]"
    if cell.note:
        text += f" ({latex_escape(cell.note) if latex else cell.note})"
    return text


_LATEX_SYMBOLS = {
    "→": r"$\rightarrow$",
    "−": "$-$",
    "Δ": r"$\Delta$",
    "·": r"$\cdot$",
    "≤": r"$\leq$",
    "≥": r"$\geq$",
    "’": "'",
    "é": r"\'e",
}


def latex_escape(text: str) -> str:
    """Escape LaTeX specials and spell the few non-ASCII symbols of our captions in ASCII."""
    out = []
    for char in str(text):
        if char in "&%$#_{}":
            out.append("\\" + char)
        elif char == "~":
            out.append(r"\textasciitilde{}")
        elif char == "^":
            out.append(r"\textasciicircum{}")
        elif char == "\\":
            out.append(r"\textbackslash{}")
        elif char == "×":
            out.append(r"$\times$")
        elif char == "±":
            out.append(r"$\pm$")
        elif char in "–—":
            out.append("--")
        elif char == "†":
            out.append(r"$^\dagger$")
        elif char in _LATEX_SYMBOLS:
            out.append(_LATEX_SYMBOLS[char])
        else:
            out.append(char)
    return "".join(out)


def to_markdown(table: TextTable) -> str:
    """GitHub-flavoured Markdown: bold title line, the table, the caption in italics."""
    header = [*table.stub, *table.columns]
    lines = [f"**{table.title}**", ""]
    lines.append(markdown_row(header))
    lines.append("|" + "|".join([":--"] * len(table.stub) + ["--:"] * len(table.columns)) + "|")
    for stub, cells in table.rows:
        lines.append(markdown_row([*stub, *(_fmt(c, False, True) for c in cells)]))
    caption = f"{table.caption} {table.markdown_note}".strip().replace("*", "\\*")
    lines += ["", f"*{_md(caption)}*", ""]
    return "\n".join(lines)


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown_row(cells: Iterable[object]) -> str:
    """One pipe-table row, each cell escaped so that it cannot break the table."""
    return "| " + " | ".join(_md(c) for c in cells) + " |"


def to_latex(table: TextTable) -> str:
    """booktabs table (needs `\\usepackage{booktabs}`); caption above, as journals ask."""
    env = "table*" if table.wide else "table"
    spec = "l" * len(table.stub) + "r" * len(table.columns)
    lines = [
        rf"\begin{{{env}}}[t]",
        r"\centering",
        r"\footnotesize" if table.wide else r"\small",
        rf"\caption{{\textbf{{{latex_escape(table.title)}}} {latex_escape(table.caption)}}}",
    ]
    if table.label:
        lines.append(rf"\label{{{table.label}}}")
    lines += [
        r"\setlength{\tabcolsep}{3pt}" if table.wide else r"\setlength{\tabcolsep}{4pt}",
        rf"\begin{{tabular}}{{{spec}}}",
        r"\toprule",
        " & ".join(latex_escape(h) for h in [*table.stub, *table.columns]) + r" \\",
        r"\midrule",
    ]
    for index, (stub, cells) in enumerate(table.rows):
        if index in table.group_starts and index > 0:
            lines.append(r"\midrule")
        texts = [latex_escape(s) for s in stub] + [_fmt(c, True, False) for c in cells]
        lines.append(" & ".join(texts) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", rf"\end{{{env}}}", ""]
    return "\n".join(lines)


def _bold_best(table: TextTable, better: Sequence[str | None]) -> None:
    """Bold the best mean per value column within each row group (ties all bold)."""
    bounds = sorted(set([0, *table.group_starts])) + [len(table.rows)]
    for start, stop in zip(bounds[:-1], bounds[1:], strict=False):
        group = [cells for _, cells in table.rows[start:stop]]
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
    selection = str(first["selection"])
    classes = str(first["eval_classes"]).replace("|", ", ")
    tier_text = "; ".join(
        f"{tier}: {str(first[f'tier_{tier}']).replace('|', ', ') or 'none'}" for tier in TIERS
    )
    seeds = ", ".join(str(s) for s in sorted(board["seed"].unique()))
    tiles_text = f" over {tiles} test tiles" if tiles else ""
    return (
        f"Selection: {selection} ({SELECTION_DESCRIPTION.get(selection, 'see records')}). "
        f"Test split{tiles_text}; macro means over the eval classes ({classes}); "
        f"pixels labelled {int(first['ignore_index'])} are ignored; label set "
        f"{first['label_set'] or 'default'}; frequency tiers by training-pixel share "
        f"({tier_text}). "
        f"Preset {first['preset']}, {int(first['steps'])} steps; seeds {seeds}."
    )


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
    part = board[board["dataset"] == dataset]
    scenarios = scenario_order(part)
    missing_of = dict(zip(part["scenario"], part["missing"], strict=False))
    factors = sorted({f for (d, f, _m) in expected if d == dataset} | set(part["imbalance"]))
    columns = [
        f"{s} (−{missing_of[s]})" if missing_of[s] != "none" else f"{s} (full)" for s in scenarios
    ]
    tier_name = SCORE_METRICS[metric]
    tier = {"miou": "all", "mf1": None}.get(metric, metric.removeprefix("miou_"))
    with_mean = robust is not None and tier is not None and metric.startswith("miou")
    table = TextTable(
        title=f"{dataset}: test {tier_name} (%) per missing-modality scenario",
        caption="",
        stub=["imbalance", "method"],
        columns=columns + (["mean missing"] if with_mean else []),
        label=f"tab:{_slug(dataset)}-{metric}",
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
            table.rows.append(([_fmt_factor(factor), method], cells))
    _bold_best(table, ["max"] * len(table.columns))
    marks = "Best per column and imbalance factor in bold. "
    if reference and significance is not None and metric in SIGNIFICANCE_METRICS:
        marks += f"* = differs from {reference} in the same column ({test_description()}). "
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
) -> TextTable:
    """Rows imbalance x method; full / mean missing / worst / retention / Δ vs reference of
    one tier's mIoU (`all` = every eval class)."""
    part = robust[robust["dataset"] == dataset] if not robust.empty else robust
    factors = sorted({f for (d, f, _m) in expected if d == dataset})
    what = "mIoU" if tier == "all" else f"{tier}-tier mIoU"
    table = TextTable(
        title=f"{dataset}: robustness to missing modalities, test {what} (%)",
        caption="",
        stub=["imbalance", "method"],
        columns=["full", "mean missing", "worst (scenario)", "retention", f"Δ vs {reference}"],
        label=f"tab:{_slug(dataset)}-robustness-{tier}",
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
            table.rows.append(([_fmt_factor(factor), method], cells))
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
    part = board[board["dataset"] == dataset]
    factors = sorted({f for (d, f, _m) in expected if d == dataset} | set(part["imbalance"]))
    scenarios = scenario_order(part)
    missing_of = dict(zip(part["scenario"], part["missing"], strict=False))
    table = TextTable(
        title=f"{dataset}: test {SCORE_METRICS[metric]} (%) versus controlled imbalance",
        caption="",
        stub=["scenario", "method"],
        columns=[f"imbalance {_fmt_factor(f)}" for f in factors],
        label=f"tab:{_slug(dataset)}-imbalance",
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
            table.rows.append(([name, method], cells))
    _bold_best(table, ["max"] * len(factors))
    table.caption = (
        f"Imbalance ×F hides the tail classes' training labels in random 16 px blocks with "
        f"probability 1 − 1/F (same blocks for every method and seed; test labels untouched). "
        f"Mean ± std over seeds; best per column and scenario in bold; {MISSING_CELL} = run "
        "missing or unfinished; † = fewer seeds than the grid. " + conventions
    )
    return table


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text).strip("-")


def wide_frame(board: pd.DataFrame, methods: Sequence[str], expected: Mapping) -> pd.DataFrame:
    """leaderboard_wide.csv: one row per dataset x imbalance x method x scenario, with mean /
    std / n / 95 % t-CI over seeds of every score metric (NaN = missing; `n_expected` from the
    run grid)."""
    rows = []
    for dataset in dict.fromkeys(d for d, _f, _m in expected):
        part = board[board["dataset"] == dataset]
        factors = sorted({f for (d, f, _m) in expected if d == dataset})
        for factor in factors:
            for method in methods:
                if (dataset, factor, method) not in expected:
                    continue
                for scenario in scenario_order(part) or [""]:
                    sel = part[
                        (part["imbalance"] == factor)
                        & (part["method"] == method)
                        & (part["scenario"] == scenario)
                    ]
                    miss = part.loc[part["scenario"] == scenario, "missing"]
                    row = {
                        "dataset": dataset,
                        "imbalance": factor,
                        "method": method,
                        "scenario": scenario,
                        "missing": miss.iloc[0] if len(miss) else "",
                        "n_expected": expected[(dataset, factor, method)],
                    }
                    for metric in SCORE_METRICS:
                        summary = summarize(sel[metric].tolist() if len(sel) else [])
                        row[f"{metric}_mean"] = summary.mean
                        row[f"{metric}_std"] = summary.std
                        row[f"{metric}_n"] = summary.n
                        row[f"{metric}_ci_low"] = summary.ci_low
                        row[f"{metric}_ci_high"] = summary.ci_high
                    rows.append(row)
    return pd.DataFrame(rows)


def significance_frame(
    records: Sequence[dict], methods: Sequence[str], reference: str
) -> pd.DataFrame:
    """Paired bootstrap (benchmark.stats) of every method against `reference`, per dataset x
    imbalance x scenario, on mIoU and tail-tier mIoU, from the selected test records."""
    selected = [r for r in records if r["split"] == "test" and r["selection"]]
    index: dict[tuple, dict[int, dict]] = {}
    for rec in selected:
        key = (rec["dataset"], rec["imbalance"], rec["method"], rec["scenario"])
        index.setdefault(key, {}).setdefault(rec["seed"], rec)
    rows = []
    for (dataset, factor, method, scenario), by_seed in index.items():
        if method == reference:
            continue
        ref = index.get((dataset, factor, reference, scenario))
        if not ref:
            continue
        seeds = sorted(set(by_seed) & set(ref))
        if not seeds:
            continue
        first = by_seed[seeds[0]]
        tiles = [t for t in first["tile_names"] if all(t in ref[s]["tile_names"] for s in seeds)]
        tiles = [t for t in tiles if all(t in by_seed[s]["tile_names"] for s in seeds)]
        if not tiles:
            continue

        def stack(recs, tiles=tiles, seeds=seeds):
            return np.asarray(
                [
                    [recs[s]["tile_confusions"][recs[s]["tile_names"].index(t)] for t in tiles]
                    for s in seeds
                ],
                dtype=np.float64,
            )

        a, b = stack(by_seed), stack(ref)
        classes = list(first["classes"])
        for metric in SIGNIFICANCE_METRICS:
            names = first["eval_classes"] if metric == "miou" else first["tiers"]["tail"]
            subset = [classes.index(n) for n in names]
            if not subset:
                continue
            result = paired_bootstrap(a, b, subset)
            rows.append(
                {
                    "dataset": dataset,
                    "imbalance": factor,
                    "method": method,
                    "reference": reference,
                    "scenario": scenario,
                    "metric": metric,
                    "diff": result.diff,
                    "ci_low": result.ci_low,
                    "ci_high": result.ci_high,
                    "p_value": result.p_value,
                    "significant": result.significant,
                    "n_seeds": result.n_seeds,
                    "n_tiles": result.n_tiles,
                    "test": test_description(),
                }
            )
    columns = [
        "dataset", "imbalance", "method", "reference", "scenario", "metric", "diff", "ci_low",
        "ci_high", "p_value", "significant", "n_seeds", "n_tiles", "test",
    ]  # fmt: skip
    frame = pd.DataFrame(rows, columns=columns)
    order = {m: i for i, m in enumerate(methods)}
    frame["_m"] = frame["method"].map(lambda m: order.get(m, len(order)))
    frame = frame.sort_values(["dataset", "imbalance", "_m", "scenario", "metric"], kind="stable")
    return frame.drop(columns="_m").reset_index(drop=True)
