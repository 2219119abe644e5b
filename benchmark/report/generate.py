"""`python run_benchmark.py report <results-dir>`: every table and figure, from records alone.

Reads `<results-dir>/runs/*/` (spec.json, records.jsonl, train_log.jsonl, the model, done)
and writes into `<results-dir>/report/` (never touching the runs or the sweep's own
`leaderboard.csv`):

    report.md                 index: every file below with a one-line explanation
    runs.csv                  every run directory and its status (done / incomplete / unreadable)
    leaderboard.csv           long: one row per dataset x method x imbalance x scenario x seed
    leaderboard_wide.csv      one row per dataset x imbalance x method x scenario: mean, std,
                              n and 95 % t-CI over seeds of mIoU, mF1 and tier mIoU
    robustness.csv            full / mean missing / worst / retention / drop / vs reference,
                              per tier, mean, std and CI over seeds
    significance.csv          paired bootstrap of each method against the reference
    tables/<dataset>.md|.tex  Markdown and booktabs LaTeX tables
    figures/<dataset>_*.png|.pdf

The grid a sweep asked for is reconstructed from every run directory's spec.json (finished or
not) as the product of the datasets' methods x imbalance factors x seeds; a cell without
finished runs is shown as missing ("–" / hatched), a cell with fewer seeds than the grid is
marked "†". Nothing is dropped silently.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from benchmark.core.confine import write_target
from benchmark.core.errors import BenchmarkError, describe
from benchmark.core.io import atomic_write_json, atomic_write_text
from benchmark.core.provenance import git_commit
from benchmark.core.records import SELECTION_DESCRIPTION
from benchmark.report import frames, plots, render, tables
from benchmark.report.frames import BoardEntry, budget_of, dataset_of, label_of
from benchmark.report.robustness import robustness
from benchmark.report.stats import test_description
from benchmark.run.store import RUNS, RunStore, StoredRun

log = logging.getLogger(__name__)

REPORT_DIR = "report"


@dataclass
class Results:
    """Everything a report is built from: the runs of a results directory and their records."""

    root: Path
    runs: list[StoredRun]
    entries: list[BoardEntry]
    """The finished runs, under their report names."""
    methods: list[str]
    expected: dict[tuple[str, float, str], int]
    """(dataset, imbalance, method label) -> number of seeds the grid asks for."""
    train_logs: list[tuple[dict, list[dict]]] = field(default_factory=list)

    @functools.cached_property
    def records(self) -> list[dict]:
        """Every record of every finished run, under the run's report names."""
        return [
            dict(rec, method=entry.label, dataset=entry.dataset)
            for entry in self.entries
            for rec in entry.run.records
        ]


def distinguish(specs: Sequence[dict]) -> None:
    """Name runs apart that share a label but not a budget or dataset options.

    Two sweeps into one results directory may train `baseline` for 200 and for 400 steps, or
    use `synthetic` with other options; averaging them as one cell would be wrong, so the label
    gets ` (<steps> steps, <preset>)` and the dataset `[<options>]` where they differ. Under
    `--budget flops` a method's runs differ in steps by design (an oracle's per-scenario models
    cost different FLOPs), so runs are told apart by the budget they were given, not the steps
    it became.
    """
    by_dataset: dict[str, set] = {}
    for spec in specs:
        options = tuple(tuple(pair) for pair in spec["dataset_options"])
        by_dataset.setdefault(spec["dataset"], set()).add(options)
    for spec in specs:
        if len(by_dataset[spec["dataset"]]) > 1:
            inner = ",".join(f"{k}={v}" for k, v in spec["dataset_options"])
            spec["_report_dataset"] = f"{spec['dataset']}[{inner}]"
    by_label: dict[tuple, set] = {}
    for spec in specs:
        key = (dataset_of(spec), label_of(spec))
        by_label.setdefault(key, set()).add(budget_of(spec))
    for spec in specs:
        if len(by_label[(dataset_of(spec), label_of(spec))]) > 1:
            budget, steps, preset = budget_of(spec)
            flops = ", equal FLOPs" if budget == "flops" else ""
            spec["_report_label"] = f"{label_of(spec)} ({steps} steps{flops}, {preset})"


def load_results(root: Path, reference: str = "baseline") -> Results:
    """Every run directory under `root/runs/`; finished runs contribute their records."""
    root = Path(root)
    if not root.is_dir():
        raise BenchmarkError(f"report: {root} is not a directory")
    store = RunStore(root)
    runs = store.scan()
    if not runs:
        raise BenchmarkError(
            f"report: no runs under {root / RUNS} (run `python run_benchmark.py --out {root}` "
            "first)"
        )
    if all(r.state == "unreadable" for r in runs):
        raise BenchmarkError(
            f"report: all {len(runs)} run(s) under {root / RUNS} are unreadable (damaged "
            f"records or spec.json, e.g. {runs[0].run_id}: {runs[0].status}); nothing written"
        )
    for run in runs:
        if run.state == "unreadable":
            log.warning("report: run %s left out: %s", run.run_id, run.status)
    specs = [r.spec for r in runs if r.spec is not None]
    distinguish(specs)
    done = [r for r in runs if r.state == "done"]
    entries = [BoardEntry(label_of(r.spec), dataset_of(r.spec), r.spec, r) for r in done]
    logs = [(r.spec, store.read_train_log(r.run_id)) for r in done]
    methods = order_methods({label_of(s): s["method"] for s in specs}, reference)
    expected = {}
    for dataset in dict.fromkeys(dataset_of(s) for s in specs):
        mine = [s for s in specs if dataset_of(s) == dataset]
        seeds = {s["seed"] for s in mine}
        labels = {label_of(s) for s in mine}
        for factor in sorted({float(s["imbalance"]) for s in mine}):
            for method in methods:
                if method in labels:
                    expected[(dataset, factor, method)] = len(seeds)
    return Results(root, runs, entries, methods, expected, logs)


def order_methods(label_to_method: dict[str, str], reference: str) -> list[str]:
    """Reference first, then registry order of the base method, plain names before variants."""
    from benchmark.core.plugins import METHODS

    registry = {name: i for i, name in enumerate(METHODS.names())}

    def key(label: str) -> tuple:
        base = label_to_method[label]
        return (label != reference, registry.get(base, len(registry)), label != base, label)

    return sorted(label_to_method, key=key)


@dataclass
class ReportFile:
    path: Path
    what: str


def build_tables(
    board: pd.DataFrame,
    robust: pd.DataFrame,
    significance: pd.DataFrame,
    results: Results,
    reference: str,
    dataset: str,
) -> list[tables.TextTable]:
    """Every table of one dataset, in report order."""
    part = board[board["dataset"] == dataset]
    tiles = _n_tiles(results.records, dataset)
    conventions = tables.caption_conventions(part, tiles)
    built = [
        tables.scenario_table(
            board,
            dataset,
            results.methods,
            metric,
            results.expected,
            robust,
            significance,
            reference,
            conventions,
        )
        for metric in ("miou", "mf1", "miou_tail")
    ]
    oracle_methods = tables.oracles(part)
    built += [
        tables.robustness_table(
            robust,
            dataset,
            results.methods,
            results.expected,
            reference,
            conventions,
            tier,
            oracle_methods,
        )
        for tier in ("all", "tail")
    ]
    if len({f for (d, f, _m) in results.expected if d == dataset}) > 1:
        built.append(
            tables.imbalance_table(
                board, dataset, results.methods, results.expected, conventions=conventions
            )
        )
    built.append(tables.cost_table(board, dataset, results.methods, results.expected, conventions))
    selection = ", ".join(sorted(set(part["selection"]))) or "none (no finished run)"
    for table in built:
        table.title += f" · selection: {selection}"
    return built


def _n_tiles(records: Sequence[dict], dataset: str) -> int | None:
    for rec in records:
        if rec["dataset"] == dataset and rec["split"] == "test" and rec["selection"]:
            return len(rec["tile_names"])
    return None


def render_tables(built: Sequence[tables.TextTable], dataset: str) -> tuple[str, str]:
    """The dataset's Markdown document and LaTeX fragment (one table environment each)."""
    selection = _selection_line()
    markdown = [f"# {dataset}\n", f"{selection}\n"] + [render.to_markdown(t) for t in built]
    latex = [
        f"% {dataset}: generated by `python run_benchmark.py report`; "
        "needs \\usepackage{booktabs}",
        f"% {selection}",
    ] + [render.to_latex(t) for t in built]
    return "\n".join(markdown), "\n".join(latex)


def _selection_line() -> str:
    names = ", ".join(f"{k} ({v})" for k, v in SELECTION_DESCRIPTION.items())
    return f"Model selection: {names}."


@dataclass
class ReportFrames:
    """The frames every table and figure of a report is drawn from."""

    board: pd.DataFrame
    robust: pd.DataFrame
    significance: pd.DataFrame
    wide: pd.DataFrame


class ReportWriter:
    """Writes a report's files under `out` and remembers each with its one-line description."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.files: list[ReportFile] = []
        for folder in ("tables", "figures"):
            write_target(out / folder).mkdir(parents=True, exist_ok=True)

    def csv(self, frame: pd.DataFrame, name: str, what: str) -> None:
        frames.write_csv(frame, self.out / name)
        self.files.append(ReportFile(self.out / name, what))

    def text(self, relative: str, text: str, what: str) -> None:
        atomic_write_text(self.out / relative, text)
        self.files.append(ReportFile(self.out / relative, what))

    def figure(self, fig: Figure, stem: str, what: str) -> None:
        for path in plots.save(fig, self.out / "figures" / stem):
            self.files.append(ReportFile(path, what))


def generate_report(
    root: Path,
    reference: str = "baseline",
    data_root: Path | None = None,
    qualitative: bool = True,
) -> list[ReportFile]:
    """Write every table, CSV, figure and `report.md` under `root/report/`; returns the files."""
    results = load_results(root, reference)
    if reference not in results.methods:
        log.warning("reference %r is not among the methods (%s)", reference, results.methods)
    writer = ReportWriter(Path(root) / REPORT_DIR)
    built = build_frames(results, reference)
    write_frames(writer, built, results, reference)
    notes: list[str] = []
    for dataset in dict.fromkeys(d for d, _f, _m in results.expected):
        write_tables(writer, built, results, reference, dataset)
        write_figures(writer, built, results, dataset)
        if qualitative:
            notes += write_qualitative(writer, results, dataset, data_root)
    provenance = {
        "results_dir": str(root),
        "reference": reference,
        "runs": len(results.runs),
        "runs_done": sum(r.state == "done" for r in results.runs),
        "records": len(results.records),
        "methods": results.methods,
        "selection": sorted(set(built.board["selection"])) if len(built.board) else [],
        "significance_test": test_description(),
        "report_commit": git_commit(),
    }
    atomic_write_json(writer.out / "provenance.json", provenance)
    writer.files.append(
        ReportFile(writer.out / "provenance.json", "what this report was built from")
    )
    index = report_markdown(results, writer.files, writer.out, reference, notes)
    atomic_write_text(writer.out / "report.md", index)
    return [ReportFile(writer.out / "report.md", "this index"), *writer.files]


def build_frames(results: Results, reference: str) -> ReportFrames:
    """The leaderboard and everything derived from it."""
    board = frames.leaderboard(results.entries)
    robust = robustness(board, results.methods, reference) if len(board) else pd.DataFrame()
    significance = frames.significance_frame(results.records, results.methods, reference)
    wide = frames.wide_frame(board, results.methods, results.expected)
    return ReportFrames(board, robust, significance, wide)


def write_frames(
    writer: ReportWriter, built: ReportFrames, results: Results, reference: str
) -> None:
    """The report's CSVs."""
    writer.csv(_runs_frame(results), "runs.csv", "every run directory and its status")
    writer.csv(
        built.board,
        "leaderboard.csv",
        "long table: one row per dataset × method × imbalance × "
        "scenario × seed (test split, selected checkpoint), per-class and per-tier scores",
    )
    writer.csv(
        built.wide,
        "leaderboard_wide.csv",
        "mean, std, n and 95 % t-CI over seeds per dataset × "
        "imbalance × method × scenario for mIoU, mF1 and tier mIoU (n_expected = grid seeds)",
    )
    writer.csv(
        built.robust,
        "robustness.csv",
        "full / mean over missing scenarios / worst / retention / "
        f"drop / Δ vs {reference}, per tier, over seeds",
    )
    writer.csv(
        built.significance,
        "significance.csv",
        f"paired bootstrap vs {reference}: difference, 95 % "
        "CI and p per dataset × imbalance × scenario, on mIoU and tail-tier mIoU",
    )


def write_tables(
    writer: ReportWriter, built: ReportFrames, results: Results, reference: str, dataset: str
) -> None:
    """One dataset's tables, as Markdown and as LaTeX."""
    made = build_tables(built.board, built.robust, built.significance, results, reference, dataset)
    markdown, latex = render_tables(made, dataset)
    stem = tables.slug(dataset, keep="-_")
    writer.text(
        f"tables/{stem}.md",
        markdown,
        f"{dataset}: Markdown tables "
        "(mIoU, mF1, tail mIoU per scenario; robustness of mIoU and tail mIoU; imbalance)",
    )
    writer.text(
        f"tables/{stem}.tex",
        latex,
        f"{dataset}: the same tables, booktabs LaTeX (`\\input` them; needs booktabs)",
    )


def write_figures(
    writer: ReportWriter, built: ReportFrames, results: Results, dataset: str
) -> None:
    """One dataset's figures (PNG and PDF each)."""
    val_records = [r for r in results.records if r["split"] == "val" and not r["selection"]]
    stem = tables.slug(dataset, keep="-_")
    for kind, (fig, what) in _figures(
        built.board, built.robust, results, dataset, val_records
    ).items():
        writer.figure(fig, f"{stem}_{kind}", f"{dataset}: {what}")


def write_qualitative(
    writer: ReportWriter, results: Results, dataset: str, data_root: Path | None
) -> list[str]:
    """One dataset's qualitative grid; a note instead when weights or data are unavailable."""
    try:
        fig = _qualitative(results, dataset, data_root)
    except Exception as error:  # weights or data unavailable: say so, keep the rest
        log.warning("qualitative grid for %s skipped: %s", dataset, describe(error))
        return [f"{dataset}: qualitative grid skipped ({describe(error)})"]
    writer.figure(
        fig,
        f"{tables.slug(dataset, keep='-_')}_qualitative",
        f"{dataset}: qualitative grid — inputs, ground truth and each method's prediction per "
        "scenario on one test tile",
    )
    return []


def _figures(board, robust, results: Results, dataset: str, val_records) -> dict:
    methods, expected = results.methods, results.expected
    figures = {
        "heatmap": (
            plots.heatmap(board, dataset, methods, expected),
            "heatmap of test mIoU (mean over seeds), methods × scenarios, one panel per "
            "imbalance factor; hatched = missing run",
        ),
        "class_iou": (
            plots.class_iou_bars(board, dataset, methods, expected),
            "per-class test IoU per scenario (lowest imbalance factor), which classes a method "
            "loses when a modality goes missing; tier in parentheses",
        ),
        "robustness": (
            plots.robustness_bars(robust, dataset, methods, expected),
            "full vs mean-over-missing vs worst-scenario mIoU, all classes and tail tier, "
            "per imbalance factor",
        ),
        "training": (
            plots.training_curves(results.train_logs, val_records, dataset, methods),
            "training loss and validation mIoU (all modalities) per run; star = selected "
            "checkpoint",
        ),
    }
    if "train_gflops_per_step" in board and board["train_gflops_per_step"].notna().any():
        figures["cost"] = (
            plots.cost_scatter(board, dataset, methods),
            "test mIoU against training TFLOPs of the run, one point per method and one panel "
            "per scenario; oracles hollow",
        )
    if len({f for (d, f, _m) in expected if d == dataset}) > 1:
        figures["imbalance"] = (
            plots.imbalance_curves(board, dataset, methods, expected),
            "tail-tier mIoU versus the controlled-imbalance factor, per scenario",
        )
    return figures


def _qualitative(results: Results, dataset: str, data_root: Path | None):
    from benchmark.report.qualitative import pick_runs, qualitative_grid

    if data_root is None:
        raise ValueError("no --data-root")
    store = RunStore(results.root)
    runs = [r for r in results.runs if r.state == "done"]
    chosen = pick_runs(runs, store, dataset, results.methods)
    return qualitative_grid(chosen, store, results.methods, data_root, dataset)


def _runs_frame(results: Results) -> pd.DataFrame:
    rows = []
    for run in results.runs:
        spec = run.spec or {}
        rows.append(
            {
                "run_id": run.run_id,
                "status": run.status,
                "dataset": dataset_of(spec) if spec else "",
                "method": label_of(spec) if spec else "",
                "imbalance": spec.get("imbalance", float("nan")),
                "seed": spec.get("seed", -1),
                "steps": spec.get("steps", -1),
                "preset": spec.get("preset", ""),
            }
        )
    return pd.DataFrame(rows)


def report_markdown(
    results: Results, files: Sequence[ReportFile], out: Path, reference: str, notes: list[str]
) -> str:
    done = sum(r.state == "done" for r in results.runs)
    lines = [
        "# MissBench report",
        "",
        f"Built by `python run_benchmark.py report {results.root}` from the records of "
        f"{done} finished run(s) of {len(results.runs)} under `{results.root / 'runs'}`. "
        f"Reference method: `{reference}`. {_selection_line()}",
        "",
        f"Methods (colour order in every figure): {', '.join(f'`{m}`' for m in results.methods)}.",
        f"Significance: {test_description()}.",
        "",
    ]
    not_done = [r for r in results.runs if r.state != "done"]
    if not_done:
        lines += ["## Missing or unfinished runs (shown as – / hatched in tables and figures)", ""]
        for run in not_done:
            spec = run.spec or {}
            what = (
                f"{label_of(spec)} · {dataset_of(spec)} · imbalance ×{spec.get('imbalance', 1):g}"
                f" · seed {spec.get('seed')}"
                if spec
                else "?"
            )
            lines.append(f"- `{run.run_id}`: {run.status} ({what})")
        lines.append("")
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    lines += ["## Files", ""]
    for index, item in enumerate(files):
        rel = item.path.relative_to(out)
        if (
            item.path.suffix == ".pdf"
            and index
            and files[index - 1].path == item.path.with_suffix(".png")
        ):
            continue  # listed with its PNG
        link = f"[`{rel}`]({rel})"
        pdf = item.path.with_suffix(".pdf")
        if item.path.suffix == ".png" and any(f.path == pdf for f in files):
            link += f" ([pdf]({pdf.relative_to(out)}))"
        lines.append(f"- {link} — {item.what}")
    lines.append("")
    return "\n".join(lines)
