"""Rendering: report tables (`tables.TextTable`) as Markdown and booktabs LaTeX, and the
sweep's leaderboard as a terminal table."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import pandas as pd
from rich.markup import escape
from rich.table import Table

from benchmark.report.frames import (
    COMPLETE,
    clean_rows,
    scenario_order,
    train_missing_phrase,
)
from benchmark.report.tables import MISSING_CELL, Cell, TextTable
from benchmark.run.selection import SELECTION_DESCRIPTION


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


SHOWN_UNFINISHED = 4
"""Runs without results a caption names one by one (the rest are counted)."""


def _caption(part: pd.DataFrame, ok: pd.DataFrame) -> str:
    """The selection rule and the classes the means run over; where runs have no results, which
    ones and why (a table of failures alone says that no row of its rule exists)."""
    rule = ok if len(ok) else part
    selection = rule["selection"].iloc[0] if "selection" in rule and len(rule) else ""
    if len(ok):
        classes = ok["eval_classes"].iloc[0].replace("|", ", ")
        lines = [
            f"selection: {selection} — {SELECTION_DESCRIPTION.get(selection, '')}; "
            f"means over: {classes}"
        ]
    else:
        rows = f"no {selection} rows" if selection else "no rows"
        lines = [f"no results: {rows} of any run in this table"]
    lines += _unfinished_lines(part)
    return "\n".join(lines)


def _unfinished_lines(part: pd.DataFrame) -> list[str]:
    """One line per status (failed, running, missing) naming its runs: method, seed, reason."""
    if "status" not in part:
        return []
    lines = []
    bad = part[part["status"] != "ok"]
    for status, rows in bad.groupby("status", sort=False):
        key = "run_id" if "run_id" in rows else "method"
        runs = rows.drop_duplicates(key)
        named = []
        for _, row in runs.head(SHOWN_UNFINISHED).iterrows():
            error = row.get("error")
            reason = str(error).splitlines()[0][:80] if isinstance(error, str) and error else ""
            named.append(f"{row['method']} seed {row['seed']}" + (f" ({reason})" if reason else ""))
        more = len(runs) - len(named)
        lines.append(
            f"{status}: {len(runs)} run(s): {'; '.join(named)}" + (f"; {more} more" if more else "")
        )
    return lines


def wide_table(
    frame: pd.DataFrame, methods: Sequence[str], dataset: str, imbalance: float = 1.0
) -> Table:
    """Methods x scenarios, mIoU / mF1 in percent (mean±std over seeds), on clean test data.

    A cell without results shows '–'; seeds that failed or are missing are named in the cell.
    A method trained under several training conditions (`train_missing`) gets a row per
    condition, marked `(train −dsm 30%)`, so no cell averages runs of different conditions.
    """
    frame = clean_rows(frame)
    part = frame[(frame["dataset"] == dataset) & (frame["imbalance"] == imbalance)]
    ok = part[part["status"] == "ok"] if "status" in part else part
    scenarios = scenario_order(part)
    seeds = sorted(part["seed"].unique()) if len(part) else []
    table = Table(
        title=f"{dataset}{f' · imbalance ×{imbalance:g}' if imbalance != 1 else ''}: "
        f"test mIoU / mF1 (%), seeds {', '.join(map(str, seeds))}",
        caption=escape(_caption(part, ok)),
    )
    table.add_column("method", style="bold")
    for scenario in scenarios:
        missing = part.loc[part["scenario"] == scenario, "missing"].iloc[0]
        table.add_column(f"{scenario}\n(missing: {missing})", justify="right")
    conditions = (
        list(dict.fromkeys(sorted(part["train_missing"], key=lambda c: (c != COMPLETE, c))))
        if "train_missing" in part and len(part)
        else [None]
    )
    for method in methods:
        mine = part[part["method"] == method]
        own = [c for c in conditions if c is None or (mine["train_missing"] == c).any()]
        for condition in own or conditions[:1]:  # a method without any row still shows '–'
            rows, name = mine, method
            if condition is not None:
                rows = mine[mine["train_missing"] == condition]
                if len(conditions) > 1 and condition != COMPLETE:
                    name = f"{method} (train {train_missing_phrase(condition)})"
            cells = []
            for scenario in scenarios:
                sel = rows[rows["scenario"] == scenario]
                cells.append(f"{_cell(sel['miou'])} / {_cell(sel['mf1'])}{_status_note(sel)}")
            table.add_row(escape(name), *cells)
    return table


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
