"""`report --html`: the report as a static web site, `<report>/site/`, that opens from disk.

Leaderboards of the field are web pages; a reader of CSV and Markdown cannot sort or filter
them. The site is plain HTML with one CSS and one JavaScript file of our own beside it (no
server, no network, no CDN), written from the frames the report already built:

    site/index.html            the leaderboard: one row per dataset × imbalance × method ×
                               training condition × budget × scenario × corruption × severity,
                               mean ± std over seeds of mIoU, mF1 and tail-tier mIoU, with the
                               tables' marks (bold best, * significant, † fewer seeds);
                               sortable by any column, filterable by every column that varies;
                               the filters live in the address (`index.html#method=stars`)
    site/figures.html          every figure of the report (its PNGs, linked, not copied)
    site/methods/<name>.html   one page per method: its card (`benchmark.core.cards`: paper,
                               policies, deviations, hyperparameters with defaults) and its
                               cost in this report (`tables.cost_table`)
    site/assets/site.css|js

Every text put into a page goes through `html.escape`.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import pandas as pd

from benchmark.core.cards import ListingTable, hparam_tables, method_card
from benchmark.core.plugins import METHODS
from benchmark.report.frames import (
    COMPLETE,
    SIGNIFICANCE_METRICS,
    SPLIT_NAMES,
    clean_rows,
    dataset_of,
    label_of,
    method_kind,
    requested_steps,
    scenario_order,
    train_missing_phrase,
    train_missing_text,
)
from benchmark.report.stats import test_description
from benchmark.report.tables import MISSING_CELL, Cell, TextTable, cost_table, slug, summary_cell
from benchmark.run.selection import SELECTION_DESCRIPTION
from benchmark.system.confine import write_target

SITE_DIR = "site"
METRICS = {"miou": "mIoU", "mf1": "mF1", "miou_tail": "tail mIoU"}
"""The leaderboard's score columns (mean ± std over seeds, in %)."""
CLEAN_LABEL = "none (clean)"


class Writer(Protocol):
    """What the site needs of `generate.ReportWriter`: where the report goes, the files it
    wrote so far (figures among them) and a way to write and list a text file."""

    out: Path
    files: list

    def text(self, relative: str, text: str, what: str, section: str = "") -> None: ...


class Results(Protocol):
    """What the site needs of `generate.Results`."""

    root: Path
    runs: list
    methods: list[str]
    expected: dict[tuple[str, float, str], int]
    selection: str
    split: str


@dataclass(frozen=True)
class Column:
    """A leaderboard column: its header, how it sorts, and whether it gets a filter."""

    key: str
    header: str
    numeric: bool = False
    filter: bool = False


COLUMNS = (
    Column("dataset", "dataset", filter=True),
    Column("method", "method", filter=True),
    Column("kind", "kind", filter=True),
    Column("imbalance", "imbalance", numeric=True, filter=True),
    Column("train_missing", "training data missing", filter=True),
    Column("budget", "budget", filter=True),
    Column("scenario", "scenario (present, −missing)", filter=True),
    Column("corruption", "corruption", filter=True),
    Column("severity", "severity", numeric=True, filter=True),
    *(Column(metric, f"{name} (%)", numeric=True) for metric, name in METRICS.items()),
    Column("seeds", "seeds", numeric=True),
)
"""The leaderboard's columns, in order; a filter shows only where its column varies."""


def write_site(
    writer: Writer,
    board: pd.DataFrame,
    significance: pd.DataFrame,
    results: Results,
    reference: str,
) -> None:
    """Write the site under `writer.out/site/` (each page listed in report.md)."""
    site = writer.out / SITE_DIR
    for folder in (site / "assets", site / "methods"):
        write_target(folder).mkdir(parents=True, exist_ok=True)
    rows = leaderboard_rows(board, significance, results)
    families = method_families(board, results)
    split = SPLIT_NAMES[results.split]
    nav = Nav(list(families))
    writer.text(
        f"{SITE_DIR}/index.html",
        index_page(rows, results, reference, nav, data_files(writer)),
        f"web leaderboard (open from disk, no server): {split} scores over seeds, sortable "
        "and filterable, with the tables' marks; a page per method and the figures beside it",
    )
    writer.text(
        f"{SITE_DIR}/figures.html",
        figures_page(writer, nav),
        "web leaderboard: every figure of this report",
    )
    for name, labels in families.items():
        writer.text(
            f"{SITE_DIR}/methods/{page_name(name)}",
            method_page(name, labels, board, results, nav),
            f"web leaderboard: {name}'s card (paper, policies, deviations, hyperparameters) and "
            "cost",
        )
    writer.text(f"{SITE_DIR}/assets/site.css", STYLE, "web leaderboard: its style sheet")
    writer.text(f"{SITE_DIR}/assets/site.js", SCRIPT, "web leaderboard: sorting and filters")


# ---------------------------------------------------------------------------- leaderboard


def budget_text(steps: Any, budget: Any, ratio: Any, preset: Any) -> str:
    """A run's budget as the leaderboard shows it: `400 steps, quick`, or under `--budget
    flops` the baseline's steps its FLOPs were matched to."""
    budget = budget if isinstance(budget, str) and budget else "steps"
    ratio = float(ratio) if _finite(ratio) else None
    steps = requested_steps(steps, budget, ratio)
    head = f"FLOPs of {steps} steps" if budget == "flops" else f"{steps} steps"
    return f"{head}, {preset}" if isinstance(preset, str) and preset else head


def scenario_text(scenario: str, missing: str) -> str:
    """A scenario as the tables' columns name it: `dsm+optical (full)`, `dsm (−optical)`."""
    return f"{scenario} (full)" if missing in ("none", "") else f"{scenario} (−{missing})"


def condition_text(train_missing: str) -> str:
    """A training condition: `complete`, or `−dsm 30%`."""
    return "complete" if train_missing == COMPLETE else train_missing_phrase(train_missing)


@dataclass
class BoardRow:
    """One leaderboard row: its texts (for the text columns and filters), its cells (scores)
    and the method whose page its label links to."""

    texts: dict[str, str]
    cells: dict[str, Cell]
    seeds: tuple[int, int]
    """(finished seeds, seeds the grid asks for)."""
    family: str
    order: tuple


KEYS = ["dataset", "imbalance", "method", "train_missing", "budget", "scenario", "corruption"]


def leaderboard_rows(
    board: pd.DataFrame, significance: pd.DataFrame, results: Results
) -> list[BoardRow]:
    """The long board's finished rows summarised over seeds, and a row of – for each clean
    scenario a grid cell has no finished run of (as the tables show it), in report order:
    dataset, imbalance, corruption, severity, scenario, method."""
    methods = {m: i for i, m in enumerate(results.methods)}
    significant = significance_marks(significance)
    rows: list[BoardRow] = []
    ok = board[board["status"] == "ok"].copy() if len(board) else board
    datasets = list(dict.fromkeys(d for d, _f, _m in results.expected))
    scenarios: dict[str, list[str]] = {}
    missing_of: dict[tuple[str, str], str] = {}
    for dataset in datasets:
        part = ok[ok["dataset"] == dataset] if len(ok) else ok
        scenarios[dataset] = scenario_order(part) if len(part) else []
        for scenario, missing in zip(
            part.get("scenario", []), part.get("missing", []), strict=True
        ):
            missing_of[(dataset, scenario)] = missing
    if len(ok):
        ok["budget"] = [
            budget_text(r.steps, r.budget, r.budget_ratio, r.preset) for r in ok.itertuples()
        ]
        ok["severity"] = ok["severity"].astype(int)
        for key, group in ok.groupby([*KEYS, "severity"], sort=False, dropna=False):
            dataset, factor, method, condition, budget, scenario, corruption, severity = key
            first = group.iloc[0]
            expected = results.expected.get((dataset, factor, method), 0)
            cells = {metric: summary_cell(group[metric], expected) for metric in METRICS}
            if corruption == "none":
                for metric in SIGNIFICANCE_METRICS:
                    cells[metric].significant = significant.get(
                        (dataset, float(factor), method, scenario, metric), False
                    )
            kind = first["kind"]
            texts = {
                "dataset": dataset,
                "method": method,
                "kind": kind if isinstance(kind, str) and kind else "unregistered",
                "imbalance": f"×{float(factor):g}",
                "train_missing": condition_text(condition),
                "budget": budget,
                "scenario": scenario_text(scenario, str(first["missing"])),
                "corruption": CLEAN_LABEL if corruption == "none" else corruption,
                "severity": str(severity),
            }
            rows.append(
                BoardRow(
                    texts,
                    cells,
                    (cells["miou"].n, expected),
                    str(first["method_name"]),
                    (float(factor), float(severity), method),
                )
            )
    rows += placeholder_rows(rows, results, scenarios, missing_of)

    def order(row: BoardRow) -> tuple:
        dataset, scenario = row.texts["dataset"], row.texts["scenario"]
        shown = [scenario_text(s, missing_of.get((dataset, s), "")) for s in scenarios[dataset]]
        factor, severity, method = row.order
        return (
            datasets.index(dataset) if dataset in datasets else len(datasets),
            factor,
            row.texts["corruption"] != CLEAN_LABEL,
            row.texts["corruption"],
            severity,
            shown.index(scenario) if scenario in shown else len(shown),
            methods.get(method, len(methods)),
            method,
        )

    rows.sort(key=order)
    mark_best(rows)
    return rows


def placeholder_rows(
    rows: Sequence[BoardRow],
    results: Results,
    scenarios: Mapping[str, list[str]],
    missing_of: Mapping[tuple[str, str], str],
) -> list[BoardRow]:
    """A row of – for each grid cell (dataset × imbalance × method) and clean scenario without
    a finished run: a run that failed or never ran is shown, never dropped."""
    have = {
        (r.texts["dataset"], r.texts["imbalance"], r.texts["method"], r.texts["scenario"])
        for r in rows
        if r.texts["corruption"] == CLEAN_LABEL
    }
    specs: dict[tuple[str, str], list] = {}
    for run in results.runs:
        if run.spec is not None:
            specs.setdefault((dataset_of(run.spec), label_of(run.spec)), []).append(run.spec)
    out = []
    for (dataset, factor, method), expected in results.expected.items():
        if (dataset, method) not in specs:
            continue
        spec = specs[(dataset, method)][0]
        own = own_scenarios(specs[(dataset, method)], scenarios[dataset])
        for scenario in own:
            text = scenario_text(scenario, missing_of.get((dataset, scenario), ""))
            if (dataset, f"×{factor:g}", method, text) in have:
                continue
            texts = {
                "dataset": dataset,
                "method": method,
                "kind": method_kind(spec["method"]) or "unregistered",
                "imbalance": f"×{factor:g}",
                "train_missing": condition_text(train_missing_text(spec.get("train_missing"))),
                "budget": budget_text(
                    spec["steps"], spec.get("budget"), spec.get("budget_ratio"), spec["preset"]
                ),
                "scenario": text,
                "corruption": CLEAN_LABEL,
                "severity": "0",
            }
            cells = {metric: Cell(expected=expected) for metric in METRICS}
            out.append(BoardRow(texts, cells, (0, expected), spec["method"], (factor, 0, method)))
    return out


def own_scenarios(specs: Sequence[Mapping[str, Any]], scenarios: Sequence[str]) -> list[str]:
    """The report's scenarios the runs of one label are evaluated on (every one, or for a
    dedicated method, one run per scenario, each run's own)."""
    own: set[str] = set()
    for spec in specs:
        if spec["method"] not in METHODS:
            return list(scenarios)
        cls = METHODS.get(spec["method"])
        own |= {str(s) for s in cls.evaluation_scenarios(spec["train_modalities"])}
    return [s for s in scenarios if s in own]


def significance_marks(significance: pd.DataFrame) -> dict[tuple, bool]:
    """(dataset, imbalance, method, scenario, metric) -> significant against the reference."""
    if significance is None or significance.empty:
        return {}
    return {
        (r.dataset, float(r.imbalance), r.method, r.scenario, r.metric): bool(r.significant)
        for r in significance.itertuples()
    }


def mark_best(rows: Sequence[BoardRow]) -> None:
    """Bold the best mean of each score among the rows that compete (not oracles) within a
    dataset × imbalance × scenario × corruption × severity, as the tables bold per column and
    imbalance factor (ties all bold; no bold with a single competitor)."""
    groups: dict[tuple, list[BoardRow]] = {}
    for row in rows:
        if row.texts["kind"] == "oracle":
            continue
        key = tuple(row.texts[k] for k in ("dataset", "imbalance", "scenario", "corruption"))
        groups.setdefault((*key, row.texts["severity"]), []).append(row)
    for group in groups.values():
        for metric in METRICS:
            values = [r.cells[metric].mean for r in group if not r.cells[metric].missing]
            if len(values) < 2:
                continue
            best = max(values)
            for row in group:
                cell = row.cells[metric]
                if not cell.missing and round(cell.mean, 9) == round(best, 9):
                    cell.bold = True


def method_families(board: pd.DataFrame, results: Results) -> dict[str, list[str]]:
    """Registered method name -> its labels in this report (variants, conditions, budgets), in
    the report's method order."""
    base = {}
    for run in results.runs:
        if run.spec is not None:
            base.setdefault(label_of(run.spec), run.spec["method"])
    if len(board):
        for label, name in zip(board["method"], board["method_name"], strict=True):
            base.setdefault(label, name)
    families: dict[str, list[str]] = {}
    for label in results.methods:
        if label in base:
            families.setdefault(base[label], []).append(label)
    return families


# ---------------------------------------------------------------------------- HTML


def esc(text: object) -> str:
    """Text as HTML (quotes too, so it is safe in an attribute)."""
    return html.escape(str(text), quote=True)


def rich(text: object) -> str:
    """Escaped text with `code` spans as <code> (the cards and help texts use backticks)."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", esc(text))


def link(url: str, text: str) -> str:
    """A link to an http(s) address; anything else stays text."""
    if re.match(r"https?://", url):
        return f'<a href="{esc(url)}">{esc(text)}</a>'
    return esc(text)


def page_name(method: str) -> str:
    """The file name of a method's page."""
    return f"{slug(method, keep='-_') or 'method'}.html"


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def cell_html(cell: Cell) -> tuple[str, str]:
    """(inner HTML, sort value) of a score cell: mean ± std with the tables' marks (bold best,
    * significant, † fewer seeds than the grid), the 95 % CI in its tooltip."""
    if cell.text:
        return esc(cell.text), ""
    if cell.missing:
        return MISSING_CELL, ""
    digits = cell.digits
    text = f"{cell.scale * cell.mean:.{digits}f}"
    if math.isfinite(cell.std):
        text += f" ± {cell.scale * cell.std:.{digits}f}"
    inner = f"<strong>{text}</strong>" if cell.bold else text
    marks = ("*" if cell.significant else "") + ("†" if cell.partial else "")
    if marks:
        inner += f'<sup class="marks">{marks}</sup>'
    if cell.note:
        inner += f' <span class="note">({esc(cell.note)})</span>'
    return inner, repr(float(cell.mean))


def cell_title(cell: Cell) -> str:
    """A score cell's tooltip: its seeds and 95 % t-interval."""
    parts = [f"{cell.n} of {cell.expected} seeds" if cell.expected else f"{cell.n} seeds"]
    if cell.ci is not None and all(math.isfinite(v) for v in cell.ci):
        low, high = (cell.scale * v for v in cell.ci)
        parts.append(f"95 % CI [{low:.{cell.digits}f}, {high:.{cell.digits}f}]")
    return "; ".join(parts)


@dataclass
class Nav:
    """The bar atop every page: the leaderboard, the figures and each method's page."""

    methods: list[str]

    def html(self, prefix: str, current: str) -> str:
        items = [("index.html", "Leaderboard"), ("figures.html", "Figures")]
        links = [
            f'<a href="{prefix}{href}"{" aria-current=page" * (current == href)}>{text}</a>'
            for href, text in items
        ]
        methods = " ".join(
            f'<a href="{prefix}methods/{esc(page_name(m))}"'
            f"{' aria-current=page' * (current == m)}>{esc(m)}</a>"
            for m in self.methods
        )
        return (
            f'<nav><span class="brand">MissBench</span> {" ".join(links)}'
            f'<span class="methods">methods: {methods}</span></nav>'
        )


def page(title: str, body: str, prefix: str = "") -> str:
    """A whole page: local style sheet and script only (no network)."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<link rel="icon" href="data:,">\n'
        f"<title>{esc(title)}</title>\n"
        f'<link rel="stylesheet" href="{prefix}assets/site.css">\n'
        f'<script src="{prefix}assets/site.js" defer></script>\n'
        f"</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def index_page(
    rows: Sequence[BoardRow],
    results: Results,
    reference: str,
    nav: Nav,
    files: Sequence[tuple[str, str]],
) -> str:
    """The leaderboard page."""
    split = SPLIT_NAMES[results.split]
    done = sum(r.state == "done" for r in results.runs)
    varying = [c for c in COLUMNS if c.filter and len({r.texts[c.key] for r in rows}) > 1]
    fixed = [
        (c.header, rows[0].texts[c.key]) for c in COLUMNS if c.filter and c not in varying and rows
    ]
    # a column with one value is said once above the table, not on every row
    shown = [c for c in COLUMNS if not c.filter or c.key == "method" or c in varying]
    filters = []
    for index, column in enumerate(shown):
        if column not in varying:
            continue
        values = list(dict.fromkeys(r.texts[column.key] for r in rows))
        if column.numeric:
            values.sort(key=lambda v: float(v.lstrip("×")))
        default = CLEAN_LABEL if column.key == "corruption" and CLEAN_LABEL in values else ""
        options = ['<option value="">all</option>'] + [
            f'<option value="{esc(v)}"{" selected" * (v == default)}>{esc(v)}</option>'
            for v in values
        ]
        filters.append(
            f'<label>{esc(column.header)} <select data-column="{index}" '
            f'data-key="{esc(column.key)}">{"".join(options)}</select></label>'
        )
    head = "".join(
        f'<th data-column="{i}" data-type="{"num" if c.numeric else "text"}">'
        f'<button type="button">{esc(c.header)}</button></th>'
        for i, c in enumerate(shown)
    )
    body = "\n".join(row_html(row, shown) for row in rows)
    selection = f"{results.selection} ({SELECTION_DESCRIPTION.get(results.selection, '')})"
    common = "; ".join(f"{esc(h)}: {esc(v)}" for h, v in fixed)
    caption = (
        f"Mean ± std over seeds of {split} scores (%) at each run's selected checkpoint; hover "
        "a score for its seeds and 95 % t-interval. <strong>Bold</strong> = best per dataset, "
        "imbalance, scenario, corruption and severity (oracles, one model per scenario, are "
        f"references, never marked best). * = differs from <code>{esc(reference)}</code> in the "
        f"same scenario on clean data ({esc(test_description(split=split))}). † = fewer seeds "
        f"than the grid. {MISSING_CELL} = run missing or unfinished."
    )
    downloads = "".join(
        f'<li><a href="../{esc(quote(rel))}">{esc(rel)}</a> — {esc(what)}</li>'
        for rel, what in files
    )
    main = f"""{nav.html("", "index.html")}
<main>
<h1>MissBench leaderboard{"" if results.split == "test" else " — validation split"}</h1>
<p class="lead">{done} finished run(s) of {len(results.runs)} in <code>{esc(results.root)}</code>.
Reference method: <code>{esc(reference)}</code>. Model selection: {esc(selection)}.</p>
{f'<p class="common">Every row: {common}.</p>' if common else ""}
<form class="filters" id="filters">{"".join(filters)}
<button type="button" id="reset">show all</button></form>
<p class="count" id="count" aria-live="polite"></p>
<div class="scroll"><table id="leaderboard">
<thead><tr>{head}</tr></thead>
<tbody>
{body}
</tbody></table></div>
<p class="caption">{caption}</p>
<h2>Data</h2>
<ul class="files">{downloads}</ul>
</main>"""
    return page("MissBench leaderboard", main)


def row_html(row: BoardRow, columns: Sequence[Column]) -> str:
    """One <tr> of `columns`: text cells, score cells with their sort values, the seeds."""
    cells = []
    for column in columns:
        if column.key in METRICS:
            cell = row.cells[column.key]
            inner, value = cell_html(cell)
            cells.append(
                f'<td class="num" data-value="{value}" title="{esc(cell_title(cell))}">{inner}</td>'
            )
        elif column.key == "seeds":
            done, expected = row.seeds
            cells.append(f'<td class="num" data-value="{done}">{done}/{expected}</td>')
        elif column.key == "method":
            href = f"methods/{page_name(row.family)}"
            cells.append(f'<td><a href="{esc(href)}">{esc(row.texts["method"])}</a></td>')
        else:
            text = row.texts[column.key]
            value = text.lstrip("×") if column.numeric else text
            cells.append(f'<td data-value="{esc(value)}">{esc(text)}</td>')
    return f"<tr>{''.join(cells)}</tr>"


def data_files(writer: Writer) -> list[tuple[str, str]]:
    """(path relative to the report, description) of the report's CSVs and index."""
    out = []
    for item in writer.files:
        path = Path(item.path)
        if path.suffix in (".csv", ".md") and path.parent == writer.out:
            out.append((path.relative_to(writer.out).as_posix(), item.what))
    return out


def figures_page(writer: Writer, nav: Nav) -> str:
    """Every PNG the report wrote, under its report.md section, its PDF linked beside it."""
    sections: dict[str, list[str]] = {}
    pdfs = {Path(f.path) for f in writer.files if Path(f.path).suffix == ".pdf"}
    for item in writer.files:
        path = Path(item.path)
        if path.suffix != ".png":
            continue
        rel = quote(path.relative_to(writer.out).as_posix())
        pdf = path.with_suffix(".pdf")
        pdf_link = (
            f' <a href="../{esc(quote(pdf.relative_to(writer.out).as_posix()))}">pdf</a>'
            if pdf in pdfs
            else ""
        )
        sections.setdefault(item.section or "Main results", []).append(
            f'<figure><a href="../{esc(rel)}"><img src="../{esc(rel)}" alt="{esc(item.what)}" '
            f'loading="lazy"></a><figcaption>{esc(item.what)}{pdf_link}</figcaption></figure>'
        )
    parts = [
        f"<section><h2>{esc(section)}</h2>{''.join(figures)}</section>"
        for section, figures in sections.items()
    ]
    body = "".join(parts) or "<p>This report has no figures.</p>"
    return page(
        "MissBench figures",
        f"{nav.html('', 'figures.html')}<main><h1>Figures</h1>{body}</main>",
    )


def listing_html(tables: Sequence[ListingTable]) -> str:
    """`list`'s (title, columns, rows) tables as HTML."""
    out = []
    for title, columns, rows in tables:
        head = "".join(f"<th>{rich(c)}</th>" for c in columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{rich(cell)}</td>" for cell in row) + "</tr>" for row in rows
        )
        out.append(
            f'<h3>{rich(title)}</h3><div class="scroll"><table class="card">'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
        )
    return "".join(out)


def text_table_html(table: TextTable) -> str:
    """A report table (`tables.TextTable`) as HTML, with the same cells and marks."""
    head = "".join(f"<th>{esc(c)}</th>" for c in [*table.stub, *table.columns])
    rows = []
    for index, (stub, cells) in enumerate(table.rows):
        group = ' class="group-start"' if index in table.group_starts and index else ""
        texts = "".join(f"<td>{esc(s)}</td>" for s in stub)
        values = "".join(
            f'<td class="num" title="{esc(cell_title(c))}">{cell_html(c)[0]}</td>' for c in cells
        )
        rows.append(f"<tr{group}>{texts}{values}</tr>")
    return (
        f'<h3>{esc(table.title)}</h3><div class="scroll"><table class="card">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
        f'<p class="caption">{esc(table.caption)}</p>'
    )


def method_page(
    name: str, labels: Sequence[str], board: pd.DataFrame, results: Results, nav: Nav
) -> str:
    """A method's page: its card, its labels in this report and what they cost."""
    parts = [f"<h1>{esc(name)}</h1>"]
    if name in METHODS:
        card = method_card(name)
        aliases = f" (alias {', '.join(esc(a) for a in card.aliases)})" if card.aliases else ""
        parts.append(f'<p class="lead">{esc(card.kind)}{aliases}. {rich(card.summary)}</p>')
        if card.doc and card.doc != card.summary:
            parts.append(f"<p>{rich(card.doc)}</p>")
        paper = card.paper
        parts.append(
            f"<h2>Paper</h2><p>{link(paper.link, paper.title)}, {esc(paper.venue)} "
            f"{esc(paper.year)}</p>"
            if paper is not None
            else "<h2>Paper</h2><p>None: not a published method.</p>"
        )
        policies = [
            ("With a modality missing at test time", card.missing_modality),
            ("With training samples lacking a modality", card.train_missing),
            ("With invalid pixels (clouds, voids)", card.invalid_pixels),
        ]
        parts.append(
            "<h2>Missing-modality policy</h2><dl>"
            + "".join(f"<dt>{esc(k)}</dt><dd>{rich(v or '—')}</dd>" for k, v in policies)
            + "</dl>"
        )
        deviations = "".join(f"<li>{rich(d)}</li>" for d in card.deviations)
        parts.append(
            "<h2>Deviations from the paper</h2>"
            + (f"<ol>{deviations}</ol>" if deviations else "<p>None declared.</p>")
        )
    else:
        parts.append(
            f'<p class="lead">{esc(name)} is not registered in this installation (its plugin is '
            "not installed): its card is unavailable; its results are below.</p>"
        )
    shown = "".join(
        f'<li><a href="../index.html#method={esc(quote(label, safe=""))}">{esc(label)}</a></li>'
        for label in labels
    )
    parts.append(f"<h2>In this report</h2><ul>{shown}</ul>")
    clean = clean_rows(board) if len(board) else board
    costs = []
    for dataset in dict.fromkeys(d for d, _f, m in results.expected if m in labels):
        costs.append(text_table_html(cost_table(clean, dataset, labels, results.expected)))
    if costs:
        parts.append("<h2>Cost</h2>" + "".join(costs))
    if name in METHODS:
        parts.append(
            "<h2>Hyperparameters</h2><p>Defaults, the values each accepts and what "
            f"<code>tune</code> searches (as <code>run_benchmark.py list {esc(name)}</code> "
            "prints them).</p>" + listing_html(hparam_tables(name))
        )
    body = f"{nav.html('../', name)}<main>{''.join(parts)}</main>"
    return page(f"MissBench: {name}", body, prefix="../")


# ---------------------------------------------------------------------------- assets

STYLE = """\
:root { --ink: #1d232a; --muted: #5b6670; --rule: #d5dbe0; --band: #f4f6f8;
  --accent: #0b5cad; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; }
body { margin: 0; color: var(--ink); background: #fff; line-height: 1.45; }
nav { position: sticky; top: 0; z-index: 2; display: flex; flex-wrap: wrap; gap: .3rem 1rem;
  align-items: baseline; padding: .55rem 1.2rem; background: #17324d; color: #fff; }
nav a { color: #d8e8f8; text-decoration: none; }
nav a[aria-current] { color: #fff; font-weight: 600; text-decoration: underline; }
nav .brand { font-weight: 700; margin-right: .6rem; }
nav .methods { display: flex; flex-wrap: wrap; gap: .2rem .7rem; font-size: .9rem; }
main { padding: .8rem 1.2rem 2rem; max-width: 110rem; }
h1 { font-size: 1.5rem; margin: .4rem 0; }
h2 { font-size: 1.2rem; margin-top: 1.6rem; border-bottom: 1px solid var(--rule); }
h3 { font-size: 1rem; margin: 1.2rem 0 .4rem; }
.lead, .common, .count, .caption { color: var(--muted); }
.caption { font-size: .88rem; max-width: 70rem; }
code { font-size: .9em; background: var(--band); padding: 0 .2em; border-radius: 3px; }
.filters { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: end;
  padding: .6rem .8rem; background: var(--band); border-radius: 6px; }
.filters label { display: flex; flex-direction: column; font-size: .8rem; color: var(--muted); }
.filters select { font: inherit; font-size: .9rem; color: var(--ink); max-width: 22rem; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: .88rem; margin-top: .6rem; }
th, td { padding: .28rem .55rem; border-bottom: 1px solid var(--rule); text-align: left;
  vertical-align: top; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
thead th { background: #e9eef3; }
th button { all: unset; cursor: pointer; font-weight: 600; }
th button:focus-visible { outline: 2px solid var(--accent); }
th[aria-sort="ascending"] button::after { content: " \\25B2"; }
th[aria-sort="descending"] button::after { content: " \\25BC"; }
tbody tr:nth-child(even) { background: #fafbfc; }
tbody tr:hover { background: #eef5fc; }
tr.group-start td { border-top: 2px solid var(--rule); }
sup.marks { color: #a4331f; font-weight: 600; }
.note { color: var(--muted); }
dt { font-weight: 600; margin-top: .5rem; }
dd { margin-left: 1.2rem; }
table.card td:first-child { white-space: nowrap; }
figure { margin: 1rem 0 2rem; }
figure img { max-width: min(100%, 60rem); height: auto; border: 1px solid var(--rule); }
figcaption { color: var(--muted); font-size: .9rem; max-width: 70rem; }
a { color: var(--accent); }
"""
"""The site's style sheet (ours, written beside the pages)."""

SCRIPT = """\
// MissBench leaderboard: sort by a column header, filter by the selects; the filters live in
// the address after '#', so a link (a method page's) can open the board filtered.
"use strict";
(function () {
  const table = document.getElementById("leaderboard");
  if (!table) return;
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  const selects = Array.from(document.querySelectorAll("#filters select"));
  const count = document.getElementById("count");

  function applyFilters() {
    let shown = 0;
    for (const row of rows) {
      const keep = selects.every(
        (s) => s.value === "" || row.cells[Number(s.dataset.column)].textContent === s.value
      );
      row.hidden = !keep;
      if (keep) shown += 1;
    }
    count.textContent = "Showing " + shown + " of " + rows.length + " rows";
  }

  function writeHash() {
    const params = new URLSearchParams();
    for (const s of selects) if (s.value !== s.dataset.initial) params.set(s.dataset.key, s.value);
    const hash = params.toString();
    try {
      history.replaceState(null, "", hash ? "#" + hash : location.pathname);
    } catch (error) {
      // a browser that refuses to rewrite a file: address keeps the filters on the page only
    }
  }

  function readHash() {
    const params = new URLSearchParams(location.hash.replace(/^#/, ""));
    for (const s of selects) {
      const wanted = params.has(s.dataset.key) ? params.get(s.dataset.key) : s.dataset.initial;
      if (wanted === "" || Array.from(s.options).some((o) => o.value === wanted)) s.value = wanted;
    }
  }

  function sortBy(header) {
    const column = Number(header.dataset.column);
    const numeric = header.dataset.type === "num";
    const ascending = header.getAttribute("aria-sort") !== "ascending";
    for (const th of table.tHead.rows[0].cells) th.removeAttribute("aria-sort");
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    const keyed = rows.map((row, index) => {
      const cell = row.cells[column];
      const raw = cell.dataset.value !== undefined ? cell.dataset.value : cell.textContent;
      return { row, index, raw, value: numeric ? parseFloat(raw) : raw };
    });
    keyed.sort((a, b) => {
      const aMissing = a.raw === "" || (numeric && Number.isNaN(a.value));
      const bMissing = b.raw === "" || (numeric && Number.isNaN(b.value));
      if (aMissing || bMissing) {
        return aMissing === bMissing ? a.index - b.index : aMissing ? 1 : -1;  // missing last
      }
      let order = numeric
        ? a.value - b.value
        : a.value.localeCompare(b.value, undefined, { numeric: true });
      if (!ascending) order = -order;
      return order || a.index - b.index;
    });
    for (const item of keyed) body.appendChild(item.row);
  }

  for (const th of table.tHead.rows[0].cells) {
    th.querySelector("button").addEventListener("click", () => sortBy(th));
  }
  for (const s of selects) {
    s.addEventListener("change", () => {
      applyFilters();
      writeHash();
    });
  }
  document.getElementById("reset").addEventListener("click", () => {
    for (const s of selects) s.value = "";
    applyFilters();
    writeHash();
  });
  for (const s of selects) s.dataset.initial = s.value;  // the page's defaults
  readHash();
  applyFilters();
  window.addEventListener("hashchange", () => {
    readHash();
    applyFilters();
  });
})();
"""
"""The leaderboard's script (ours, written beside the pages): sorting and filters."""
