"""`python run_benchmark.py report <results-dir>`: every table and figure, from records alone.

Reads `<results-dir>/runs/*/` (spec.json, records.jsonl, train_log.jsonl, model.pt, done) and
writes into `<results-dir>/report/` (never touching the runs or the sweep's own
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

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from benchmark import plots, reporting
from benchmark.errors import BenchmarkError
from benchmark.io import atomic_write_json, atomic_write_text, read_jsonl
from benchmark.provenance import git_commit
from benchmark.records import SELECTION_DESCRIPTION
from benchmark.robustness import robustness
from benchmark.stats import test_description
from benchmark.train import DONE, RECORDS, SPEC, TRAIN_LOG

log = logging.getLogger(__name__)

REPORT_DIR = "report"
FAILED = "failed.json"
"""Written by the harness for a run that raised or diverged (benchmark/train.py)."""


@dataclass
class RunEntry:
    run_id: str
    path: Path
    spec: dict | None
    status: str
    """`done`, `incomplete` (no `done` marker), `failed: <why>` or `unreadable: <why>`."""


@dataclass
class Results:
    root: Path
    runs: list[RunEntry]
    records: list[dict]
    methods: list[str]
    expected: dict[tuple[str, float, str], int]
    """(dataset, imbalance, method label) -> number of seeds the grid asks for."""
    train_logs: list[tuple[dict, list[dict]]] = field(default_factory=list)


def _unfinished_status(path: Path) -> str:
    """`failed: <reason>` when the run wrote `failed.json`, else `incomplete`."""
    try:
        reason = json.loads((path / FAILED).read_text(encoding="utf-8")).get("reason", "")
    except (OSError, ValueError):
        return "failed" if (path / FAILED).exists() else "incomplete"
    return f"failed: {reason}"


def _label(spec: dict) -> str:
    return spec.get("_report_label") or spec.get("label") or spec["method"]


def _dataset(spec: dict) -> str:
    return spec.get("_report_dataset") or spec["dataset"]


def distinguish(specs: Sequence[dict]) -> None:
    """Name runs apart that share a label but not a budget or dataset options.

    Two sweeps into one results directory may train `baseline` for 200 and for 400 steps, or
    use `synthetic` with other options; averaging them as one cell would be wrong, so the label
    gets ` (<steps> steps, <preset>)` and the dataset `[<options>]` where they differ.
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
        key = (_dataset(spec), _label(spec))
        by_label.setdefault(key, set()).add((spec["steps"], spec.get("preset", "")))
    for spec in specs:
        if len(by_label[(_dataset(spec), _label(spec))]) > 1:
            spec["_report_label"] = f"{_label(spec)} ({spec['steps']} steps, {spec['preset']})"


def load_results(root: Path, reference: str = "baseline") -> Results:
    """Every run directory under `root/runs/`; finished runs contribute their records."""
    root = Path(root)
    if not root.is_dir():
        raise BenchmarkError(f"report: {root} is not a directory")
    run_dirs = sorted(p for p in (root / "runs").glob("*") if p.is_dir())
    if not run_dirs:
        raise BenchmarkError(
            f"report: no runs under {root / 'runs'} (run `python run_benchmark.py --out {root}` "
            "first)"
        )
    runs, records, logs = [], [], []
    for path in run_dirs:
        try:
            spec = json.loads((path / SPEC).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            runs.append(RunEntry(path.name, path, None, f"unreadable: spec.json ({error})"))
            continue
        if not (path / DONE).exists():
            runs.append(RunEntry(path.name, path, spec, _unfinished_status(path)))
            continue
        try:
            run_records = read_jsonl(path / RECORDS)
        except (OSError, ValueError) as error:
            runs.append(RunEntry(path.name, path, spec, f"unreadable: records ({error})"))
            continue
        runs.append(RunEntry(path.name, path, spec, "done"))
        records.append(run_records)
        try:
            logs.append((spec, read_jsonl(path / TRAIN_LOG)))
        except (OSError, ValueError):
            logs.append((spec, []))
    specs = [r.spec for r in runs if r.spec is not None]
    if not specs:
        raise BenchmarkError(f"report: no readable spec.json under {root / 'runs'}")
    distinguish(specs)
    done_specs = [r.spec for r in runs if r.status == "done"]
    records = [
        dict(rec, method=_label(spec), dataset=_dataset(spec))
        for spec, run_records in zip(done_specs, records, strict=True)
        for rec in run_records
    ]
    methods = order_methods({_label(s): s["method"] for s in specs}, reference)
    expected = {}
    for dataset in dict.fromkeys(_dataset(s) for s in specs):
        mine = [s for s in specs if _dataset(s) == dataset]
        seeds = {s["seed"] for s in mine}
        labels = {_label(s) for s in mine}
        for factor in sorted({float(s["imbalance"]) for s in mine}):
            for method in methods:
                if method in labels:
                    expected[(dataset, factor, method)] = len(seeds)
    return Results(root, runs, records, methods, expected, logs)


def order_methods(label_to_method: dict[str, str], reference: str) -> list[str]:
    """Reference first, then registry order of the base method, plain names before variants."""
    from methods import METHODS

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
) -> list[reporting.TextTable]:
    """Every table of one dataset, in report order."""
    part = board[board["dataset"] == dataset]
    tiles = _n_tiles(results.records, dataset)
    conventions = reporting.caption_conventions(part, tiles)
    tables = [
        reporting.scenario_table(
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
    tables += [
        reporting.robustness_table(
            robust, dataset, results.methods, results.expected, reference, conventions, tier
        )
        for tier in ("all", "tail")
    ]
    if len({f for (d, f, _m) in results.expected if d == dataset}) > 1:
        tables.append(
            reporting.imbalance_table(
                board, dataset, results.methods, results.expected, conventions=conventions
            )
        )
    selection = ", ".join(sorted(set(part["selection"]))) or "none (no finished run)"
    for table in tables:
        table.title += f" · selection: {selection}"
    return tables


def _n_tiles(records: Sequence[dict], dataset: str) -> int | None:
    for rec in records:
        if rec["dataset"] == dataset and rec["split"] == "test" and rec["selection"]:
            return len(rec["tile_names"])
    return None


def render_tables(tables: Sequence[reporting.TextTable], dataset: str) -> tuple[str, str]:
    """The dataset's Markdown document and LaTeX fragment (one table environment each)."""
    selection = _selection_line()
    markdown = [f"# {dataset}\n", f"{selection}\n"] + [reporting.to_markdown(t) for t in tables]
    latex = [
        f"% {dataset}: generated by `python run_benchmark.py report`; "
        "needs \\usepackage{booktabs}",
        f"% {selection}",
    ] + [reporting.to_latex(t) for t in tables]
    return "\n".join(markdown), "\n".join(latex)


def _selection_line() -> str:
    names = ", ".join(f"{k} ({v})" for k, v in SELECTION_DESCRIPTION.items())
    return f"Model selection: {names}."


def generate_report(
    root: Path,
    reference: str = "baseline",
    data_root: Path | None = None,
    qualitative: bool = True,
) -> list[ReportFile]:
    """Write every table, CSV, figure and `report.md` under `root/report/`; returns the files."""
    results = load_results(root, reference)
    out = Path(root) / REPORT_DIR
    (out / "tables").mkdir(parents=True, exist_ok=True)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    if reference not in results.methods:
        log.warning("reference %r is not among the methods (%s)", reference, results.methods)
    files: list[ReportFile] = []
    board = reporting.leaderboard(results.records)
    robust = robustness(board, results.methods, reference) if len(board) else pd.DataFrame()
    significance = reporting.significance_frame(results.records, results.methods, reference)
    wide = reporting.wide_frame(board, results.methods, results.expected)

    def csv(frame: pd.DataFrame, name: str, what: str) -> None:
        reporting.write_csv(frame, out / name)
        files.append(ReportFile(out / name, what))

    csv(_runs_frame(results), "runs.csv", "every run directory and its status")
    csv(
        board,
        "leaderboard.csv",
        "long table: one row per dataset × method × imbalance × "
        "scenario × seed (test split, selected checkpoint), per-class and per-tier scores",
    )
    csv(
        wide,
        "leaderboard_wide.csv",
        "mean, std, n and 95 % t-CI over seeds per dataset × "
        "imbalance × method × scenario for mIoU, mF1 and tier mIoU (n_expected = grid seeds)",
    )
    csv(
        robust,
        "robustness.csv",
        "full / mean over missing scenarios / worst / retention / "
        f"drop / Δ vs {reference}, per tier, over seeds",
    )
    csv(
        significance,
        "significance.csv",
        f"paired bootstrap vs {reference}: difference, 95 % "
        "CI and p per dataset × imbalance × scenario, on mIoU and tail-tier mIoU",
    )

    datasets = list(dict.fromkeys(d for d, _f, _m in results.expected))
    val_records = [r for r in results.records if r["split"] == "val" and not r["selection"]]
    notes: list[str] = []
    for dataset in datasets:
        tables = build_tables(board, robust, significance, results, reference, dataset)
        markdown, latex = render_tables(tables, dataset)
        stem = _slug(dataset)
        atomic_write_text(out / "tables" / f"{stem}.md", markdown)
        atomic_write_text(out / "tables" / f"{stem}.tex", latex)
        files.append(
            ReportFile(
                out / "tables" / f"{stem}.md",
                f"{dataset}: Markdown tables "
                "(mIoU, mF1, tail mIoU per scenario; robustness of mIoU and tail mIoU; imbalance)",
            )
        )
        files.append(
            ReportFile(
                out / "tables" / f"{stem}.tex",
                f"{dataset}: the same tables, booktabs LaTeX (`\\input` them; needs booktabs)",
            )
        )
        figures = _figures(board, robust, results, dataset, val_records)
        for kind, (fig, what) in figures.items():
            for path in plots.save(fig, out / "figures" / f"{stem}_{kind}"):
                files.append(ReportFile(path, f"{dataset}: {what}"))
        if qualitative:
            try:
                fig = _qualitative(results, dataset, data_root)
            except Exception as error:  # weights or data unavailable: say so, keep the rest
                notes.append(f"{dataset}: qualitative grid skipped ({error})")
                log.warning("qualitative grid for %s skipped: %s", dataset, error)
            else:
                for path in plots.save(fig, out / "figures" / f"{stem}_qualitative"):
                    files.append(
                        ReportFile(
                            path,
                            f"{dataset}: qualitative grid — inputs, "
                            "ground truth and each method's prediction per "
                            "scenario on one test tile",
                        )
                    )
    provenance = {
        "results_dir": str(root),
        "reference": reference,
        "runs": len(results.runs),
        "runs_done": sum(r.status == "done" for r in results.runs),
        "records": len(results.records),
        "methods": results.methods,
        "selection": sorted(set(board["selection"])) if len(board) else [],
        "significance_test": test_description(),
        "report_commit": git_commit(),
    }
    atomic_write_json(out / "provenance.json", provenance)
    files.append(ReportFile(out / "provenance.json", "what this report was built from"))
    index = report_markdown(results, files, out, reference, notes)
    atomic_write_text(out / "report.md", index)
    files.insert(0, ReportFile(out / "report.md", "this index"))
    return files


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
    if len({f for (d, f, _m) in expected if d == dataset}) > 1:
        figures["imbalance"] = (
            plots.imbalance_curves(board, dataset, methods, expected),
            "tail-tier mIoU versus the controlled-imbalance factor, per scenario",
        )
    return figures


def _qualitative(results: Results, dataset: str, data_root: Path | None):
    from benchmark.qualitative import pick_runs, qualitative_grid

    if data_root is None:
        raise ValueError("no --data-root")
    runs = [(r.spec, r.path) for r in results.runs if r.status == "done"]
    chosen = pick_runs(runs, dataset, results.methods)
    return qualitative_grid(chosen, results.methods, data_root, dataset)


def _runs_frame(results: Results) -> pd.DataFrame:
    rows = []
    for run in results.runs:
        spec = run.spec or {}
        rows.append(
            {
                "run_id": run.run_id,
                "status": run.status,
                "dataset": _dataset(spec) if spec else "",
                "method": _label(spec) if spec else "",
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
    done = sum(r.status == "done" for r in results.runs)
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
    not_done = [r for r in results.runs if r.status != "done"]
    if not_done:
        lines += ["## Missing or unfinished runs (shown as – / hatched in tables and figures)", ""]
        for run in not_done:
            spec = run.spec or {}
            what = (
                f"{_label(spec)} · {_dataset(spec)} · imbalance ×{spec.get('imbalance', 1):g}"
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


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in text).strip("-")
