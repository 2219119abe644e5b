"""`python run_benchmark.py report <results-dir>`: every table and figure, from records alone.

Reads `<results-dir>/runs/*/` (spec.json, records.jsonl, train_log.jsonl, the model, done;
a frozen folder's gzipped records alike, `benchmark.report.freeze`) and writes into
`<results-dir>/report/` or `--out` (never touching the runs or the sweep's own
`leaderboard.csv`):

    report.md                 index: every file below with a one-line explanation
    runs.csv                  every run directory and its status (done / incomplete / unreadable)
    leaderboard.csv           long: one row per dataset x method x imbalance x training
                              condition x scenario x corruption x severity x seed
    leaderboard_wide.csv      one row per dataset x imbalance x method x scenario: mean, std,
                              n and 95 % t-CI over seeds of mIoU, mF1 and tier mIoU
    robustness.csv            full / mean missing / worst / retention / drop / vs reference,
                              per tier, mean, std and CI over seeds
    significance.csv          paired bootstrap of each method against the reference
    findings.csv, findings.md every paired comparison within one condition, with Holm's
                              adjustment per table and a stable id to quote (`.findings`)
    tables/<dataset>.md|.tex  Markdown and booktabs LaTeX tables
    figures/<dataset>_*.png|.pdf

    where a single-model method has every scenario (`benchmark.report.failure`):
    failure.csv, failure_curve.csv  expected mIoU under random modality failure (Liao et al.),
                              tile-level random missingness, beside the uniform means
    tables/<dataset>_failure.md|.tex, figures/<dataset>_failure.png|.pdf

    where runs have corrupted test records (`benchmark.report.corruption`):
    corruption.csv            mIoU over seeds per ... x corruption x severity (0 = clean)
    corruption_error.csv      CE / mCE and relative mCE, normalised by the reference
    corruption_fill.csv       mIoU drop per severity under each method's own fill of invalid
                              pixels and under the mean fill (where both were evaluated)
    tables/<dataset>_corruption.md|.tex, figures/<dataset>_corruption[_<scenario>].png|.pdf

    where a method was trained under several training conditions (`.train_missing`):
    train_missing.csv         mIoU per condition, paired bootstrap against complete data
    tables/<dataset>_train_missing.md|.tex, figures/<dataset>_train_missing_<modality>.png|.pdf

    where a configuration was trained at several step budgets (`.convergence`, `.budget_verdicts`):
    budget_curve.csv, budget_flattening.csv, budget_kendall.csv  mIoU per budget, the budget
                              each curve flattens at, Kendall's τ between rankings
    budget_verdicts.csv, budget_verdict_summary.csv  each finding at every budget against its
                              verdict at the largest
    tables/<dataset>_budget[_verdicts].md, figures/<dataset>_budget*.png|.pdf

    where a run has finished (`benchmark.report.compute`):
    compute.csv, compute.md   hours of training and evaluation the runs recorded per stage (what
                              one command produced, a tune folder's search included) x device

Every table and figure but the corruption section uses clean test data only, so corrupted
records change none of them. `--split val` (`generate_report(split="val")`) builds the same
leaderboard, robustness, significance and training-condition tables and figures from the
validation records of the selected checkpoints instead, into `<results-dir>/report/val/`, for
checking a choice made on validation (never for results: that checkpoint was chosen on those
tiles); the sections that exist on test only are left out (`VAL_SKIPPED`).

Runs that differ in training condition are labelled apart (`distinguish`), never averaged
together. A report shows one selection rule's records (`--selection`, default full_val): every
run records every rule, so a run finished before that (which has only its own rule's) is left
out of another rule's report and listed as such.

The grid a sweep asked for is reconstructed from every run directory's spec.json (finished or
not) as the product of the datasets' methods x imbalance factors x seeds; a cell without
finished runs is shown as missing ("–" / hatched), a cell with fewer seeds than the grid is
marked "†". Nothing is dropped silently.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from benchmark.core.records import SELECTION_FULL_VAL, RunSpec
from benchmark.report import (
    budget_verdicts,
    compute,
    convergence,
    failure,
    findings,
    frames,
    plots,
    render,
    site,
    tables,
)
from benchmark.report.frames import COMPLETE, BoardEntry, budget_of, dataset_of, label_of
from benchmark.report.robustness import robustness
from benchmark.report.stats import test_description
from benchmark.run.selection import SELECTION_DESCRIPTION, SELECTIONS
from benchmark.run.store import FROZEN, RUNS, STALE_TMP_S, RunStore, StoredRun, frozen_changes
from benchmark.run.sweep import DATA_SEED, RUN_SEED
from benchmark.system.confine import write_target
from benchmark.system.errors import BenchmarkError, describe
from benchmark.system.io import (
    atomic_write_json,
    atomic_write_text,
    check_output_folder,
    remove_orphans,
)
from benchmark.system.provenance import git_commit

log = logging.getLogger(__name__)

REPORT_DIR = "report"
VAL_DIR = "val"
"""A validation report's folder inside `REPORT_DIR`: it never replaces the test report."""
CORRUPTION = "Corrupted test data"
TRAIN_MISSING = "Training with missing modalities"


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
    selection: str = SELECTION_FULL_VAL
    """The selection rule whose records the report shows."""
    lacking: list[StoredRun] = field(default_factory=list)
    """Finished runs without records of that rule (made before every rule was recorded)."""
    weights: Path | None = None
    """Where the runs' weights are, if not under `root` (a folder being frozen: its source)."""
    off_budget: list[StoredRun] = field(default_factory=list)
    """Finished runs of a configuration trained at several step budgets, at a budget the main
    tables do not show (`convergence.off_budget`); the budget section shows every budget."""
    leaderboard_steps: int | None = None
    """The budget the main tables show where there are several (None: each one's largest)."""
    split: str = "test"
    """The split the leaderboard shows (`frames.SPLIT_NAMES`): test, or val (`--split val`)."""

    @functools.cached_property
    def records(self) -> list[dict]:
        """Every record of every finished run, under the run's report names."""
        return [
            dict(rec, method=entry.label, dataset=entry.dataset)
            for entry in self.entries
            for rec in entry.run.records
        ]


def distinguish(specs: Sequence[dict], off_budget: Collection[str] = ()) -> None:
    """Name runs apart that share a label but not a budget, dataset options or training
    condition.

    Two sweeps into one results directory may train `baseline` for 200 and for 400 steps, or
    use `synthetic` with other options; averaging them as one cell would be wrong, so the label
    gets ` (<steps> steps, <preset>)` and the dataset `[<options>]` where they differ. Under
    `--budget flops` a method's runs differ in steps by design (an oracle's per-scenario models
    cost different FLOPs), so runs are told apart by the budget they were given, not the steps
    it became.

    Where a dataset's runs span more than one training condition, the runs trained with a
    modality missing get ` (train −dsm 30%)` (30 % of the training tiles lacked dsm). Complete
    data keeps the plain label, so the reference stays the reference and a dataset of one
    condition shows it in the captions, not in every row. (Selection rules need no labels: a
    report shows one rule's records.)
    `_report_family` keeps the label before the training condition: the runs the
    training-missing report draws as one line.

    Runs in `off_budget` (ids: a configuration's other step budgets, which the main tables
    leave out, `convergence.off_budget`) are not named apart by budget: the budget section
    shows them, and the runs shown keep their plain label.
    """
    by_dataset: dict[str, set] = {}
    options = data_options(specs)
    for spec, mine in zip(specs, options, strict=True):
        by_dataset.setdefault(spec.get("dataset_name") or spec["dataset"], set()).add(mine)
    for spec, mine in zip(specs, options, strict=True):
        shown = spec.get("dataset_name") or spec["dataset"]  # a folder card's name, if any
        if len(by_dataset[shown]) > 1:
            inner = ",".join(f"{k}={v}" for k, v in mine)
            spec["_report_dataset"] = f"{shown}[{inner}]"
        elif (DATA_SEED, RUN_SEED) in mine:
            spec["_report_dataset"] = f"{shown}[{DATA_SEED}={RUN_SEED}]"
    conditions: dict[str, set] = {}
    for spec in specs:
        conditions.setdefault(dataset_of(spec), set()).add(train_missing_text(spec))
    by_label: dict[tuple, set] = {}
    shown = [spec for spec in specs if spec.get("run_id") not in off_budget]
    for spec in shown:
        key = (dataset_of(spec), label_of(spec))
        by_label.setdefault(key, set()).add(budget_of(spec))
    for spec in shown:
        if len(by_label[(dataset_of(spec), label_of(spec))]) > 1:
            budget, steps, preset = budget_of(spec)
            flops = ", equal FLOPs" if budget == "flops" else ""
            spec["_report_label"] = f"{label_of(spec)} ({steps} steps{flops}, {preset})"
    for spec in specs:
        spec["_report_family"] = label_of(spec)
        if len(conditions[dataset_of(spec)]) > 1 and train_missing_text(spec) != COMPLETE:
            spec["_report_label"] = f"{label_of(spec)} (train {train_missing_phrase(spec)})"


def data_options(specs: Sequence[Mapping[str, Any]]) -> list[tuple]:
    """Each run's dataset options as the report groups them: where a dataset's runs (otherwise
    alike) were drawn from several data seeds, a run whose data seed is its training seed has
    `seed=run` (`sweep.RUN_SEED`), so that seeds 0, 1, 2 of `synthetic[seed=run]` form one
    dataset with three seeds rather than three datasets with one each."""

    def rest(spec: Mapping[str, Any]) -> tuple:
        return tuple(tuple(pair) for pair in spec["dataset_options"] if pair[0] != DATA_SEED)

    seeds: dict[tuple, set] = {}
    for spec in specs:
        given = dict(spec["dataset_options"]).get(DATA_SEED)
        seeds.setdefault((spec["dataset"], rest(spec)), set()).add(given)
    out = []
    for spec in specs:
        options = dict(spec["dataset_options"])
        varied = len(seeds[(spec["dataset"], rest(spec))]) > 1
        if varied and DATA_SEED in options and options[DATA_SEED] == spec["seed"]:
            options[DATA_SEED] = RUN_SEED
        out.append(tuple(sorted(options.items())))
    return out


def train_missing_text(spec: Mapping[str, Any]) -> str:
    """A run's training condition as the leaderboard spells it (`none` = complete data)."""
    return frames.train_missing_text(spec.get("train_missing"))


def train_missing_phrase(spec: Mapping[str, Any]) -> str:
    """A run's training condition for its label, e.g. `−dsm 30%`."""
    return frames.train_missing_phrase(spec.get("train_missing"))


def load_results(
    root: Path,
    reference: str = "baseline",
    selection: str = SELECTION_FULL_VAL,
    leaderboard_steps: int | None = None,
) -> Results:
    """Every run directory under `root/runs/`; finished runs contribute their records of the
    `selection` rule (and their intermediate validations). A configuration trained at several
    step budgets enters the main tables at one, `leaderboard_steps` where it has it, else its
    largest (`convergence.off_budget`); the others go to `Results.off_budget`."""
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
    off = convergence.off_budget(runs, leaderboard_steps)
    distinguish(specs, off)
    done, lacking = selected_runs(runs, selection)
    for run in lacking:
        log.warning(
            "report: run %s left out: no %s records (finished before every selection rule was "
            "recorded; `run --selection %s` trains it again)",
            run.run_id,
            selection,
            selection,
        )
    off_runs = [r for r in done if r.run_id in off]
    done = [r for r in done if r.run_id not in off]
    specs = [r.spec for r in runs if r.spec is not None and r.run_id not in off]
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
    return Results(
        root, runs, entries, methods, expected, logs, selection, lacking,
        off_budget=off_runs, leaderboard_steps=leaderboard_steps,
    )  # fmt: skip


def selected_runs(
    runs: Sequence[StoredRun], selection: str
) -> tuple[list[StoredRun], list[StoredRun]]:
    """The finished runs with records of `selection`, their records cut to that rule's and the
    intermediate validations; and the finished runs without such records.

    A run made before every rule was recorded, under another rule than the default, has an id
    that hashed its rule; where the run of the same spec now holds the rule's records, the old
    one is left out rather than counted twice (or listed as lacking the rule).
    """
    chosen, lacking = [], []
    for run in runs:
        if run.state != "done":
            continue
        if not frames.selected_by(run, selection):
            lacking.append(run)
            continue
        kept = [r for r in run.records if r["selection"] in ("", selection)]
        chosen.append(dataclasses.replace(run, records=kept))
    current = {run.run_id for run in chosen}

    def superseded(run: StoredRun) -> bool:
        spec = RunSpec.from_json(run.spec)
        return spec.legacy_run_id == run.run_id and spec.run_id in current

    return [r for r in chosen if not superseded(r)], [r for r in lacking if not superseded(r)]


def order_methods(label_to_method: dict[str, str], reference: str) -> list[str]:
    """Reference first, then registry order of the base method, plain names before variants."""
    from benchmark.core.plugins import METHODS

    registry = {name: i for i, name in enumerate(METHODS.names())}

    def key(label: str) -> tuple:
        base = label_to_method[label]
        return (
            label != reference,
            registry.get(base, len(registry)),
            label != base,
            _natural(label),
        )

    return sorted(label_to_method, key=key)


def _natural(label: str) -> list:
    """`label` split into text and numbers, so `(train −dsm 30%)` sorts before `100%`; the
    split alternates text and number, so two keys never compare a number with text."""
    parts = re.split(r"(\d+(?:\.\d+)?)", label)
    return [float(part) if index % 2 else part for index, part in enumerate(parts)]


@dataclass
class ReportFile:
    path: Path
    what: str
    section: str = ""
    """Heading it is listed under in report.md ("" = the main file list)."""


TRAIN_MISSING_TEXT = (
    "Methods trained with a share of the training tiles lacking a modality, against the "
    "same method trained on complete data (clean {split} data; labelled '(train −m p%)' in "
    "the other tables)."
)
SECTIONS = {
    CORRUPTION: (
        "Corrupted test inputs: each run's selected checkpoint evaluated with every corruption "
        "at severities 1-5 on the scenarios whose modalities it touches (severity 0 = clean "
        "test data). Every other table and figure of this report uses clean test data only."
    ),
    convergence.SECTION: convergence.SECTION_TEXT,
    failure.SECTION: failure.SECTION_TEXT,
    TRAIN_MISSING: TRAIN_MISSING_TEXT.format(split="test"),
    compute.SECTION: compute.SECTION_TEXT,
}
"""Report sections beyond the main file list, with the sentence that opens each."""


def build_tables(
    board: pd.DataFrame,
    robust: pd.DataFrame,
    significance: pd.DataFrame,
    results: Results,
    reference: str,
    dataset: str,
) -> list[tables.TextTable]:
    """Every table of one dataset, in report order."""
    board = frames.clean_rows(board)
    part = board[board["dataset"] == dataset]
    tiles = _n_tiles(results.records, dataset, results.split)
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
            split=results.split,
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


def _n_tiles(records: Sequence[dict], dataset: str, split: str = "test") -> int | None:
    for rec in records:
        if (
            rec["dataset"] == dataset
            and rec["split"] == split
            and rec["selection"]
            and frames.is_clean(rec)
        ):
            return len(rec["tile_names"])
    return None


def render_tables(
    built: Sequence[tables.TextTable], dataset: str, rules: Sequence[str] = ()
) -> tuple[str, str]:
    """The dataset's Markdown document and LaTeX fragment (one table environment each), headed
    by the selection rules of the runs they show (`rules`; every registered rule if empty)."""
    selection = selection_line(rules)
    markdown = [f"# {dataset}\n", f"{selection}\n"] + [render.to_markdown(t) for t in built]
    latex = [
        f"% {dataset}: generated by `python run_benchmark.py report`; "
        "needs \\usepackage{booktabs}",
        f"% {selection}",
    ] + [render.to_latex(t) for t in built]
    return "\n".join(markdown), "\n".join(latex)


def selection_line(rules: Sequence[str] = ()) -> str:
    """`Model selection: <rule> (<what it does>).` for the rules a document shows: naming rules
    no run used would leave a reader guessing which one a number comes from."""
    names = ", ".join(
        f"{k} ({SELECTION_DESCRIPTION.get(k, 'see the records')})"
        for k in (sorted(set(rules)) or SELECTION_DESCRIPTION)
    )
    return f"Model selection: {names}."


def _rules(board: pd.DataFrame) -> list[str]:
    """The selection rules of a board's finished rows."""
    if board.empty or "selection" not in board:
        return []
    return sorted({str(r) for r in board["selection"].dropna() if r})


@dataclass
class ReportFrames:
    """The frames every table and figure of a report is drawn from."""

    board: pd.DataFrame
    """The long leaderboard, corrupted test data included (`leaderboard.csv`)."""
    clean: pd.DataFrame
    """Its rows on clean test data: what every table and figure but the corruption report
    shows."""
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
        for folder in (out, out / "tables", out / "figures"):  # what killed reports left
            remove_orphans(folder, older_than_s=STALE_TMP_S)

    def csv(self, frame: pd.DataFrame, name: str, what: str, section: str = "") -> None:
        frames.write_csv(frame, self.out / name)
        self.files.append(ReportFile(self.out / name, what, section))

    def text(self, relative: str, text: str, what: str, section: str = "") -> None:
        atomic_write_text(self.out / relative, text)
        self.files.append(ReportFile(self.out / relative, what, section))

    def figure(self, fig: Figure, stem: str, what: str, section: str = "") -> None:
        for path in plots.save(fig, self.out / "figures" / stem):
            self.files.append(ReportFile(path, what, section))


def check_reference(reference: str, methods: list[str], root: Path, strict: bool) -> None:
    """A reference that is not among the methods: one line when the user named it (a typo would
    otherwise give tables without their comparisons), a warning when it is the default."""
    if reference in methods:
        return
    if strict:
        raise BenchmarkError(
            f"--reference {reference}: not among the methods of {root} ({', '.join(methods)})"
        )
    log.warning("reference %r is not among the methods (%s)", reference, methods)


def generate_report(
    root: Path,
    reference: str = "baseline",
    data_root: Path | None = None,
    qualitative: bool = True,
    selection: str = SELECTION_FULL_VAL,
    out: Path | None = None,
    overwrite: bool = False,
    weights: Path | None = None,
    leaderboard_steps: int | None = None,
    flat_delta: float | None = None,
    split: str = "test",
    html: bool = False,
    strict_reference: bool = False,
) -> list[ReportFile]:
    """Write every table, CSV, figure and `report.md` under `out` (default `root/report/`),
    from the records of the `selection` rule; returns the files. `html`: also the static web
    leaderboard, `out/site/` (`benchmark.report.site`).

    `split="val"`: the tables and figures of the selected checkpoints' validation records,
    by default into `root/report/val/`; the sections that exist on test only are left out
    (`VAL_SKIPPED`), each with a log line, and named in report.md.

    A frozen folder's committed report is rewritten only with `overwrite`; its qualitative
    grids are not redrawn (it keeps no weights) unless `weights` names the results directory
    it was frozen from. `leaderboard_steps` and `flat_delta`: the budget the main tables show
    where a method was trained at several, and the flattening tolerance in points (None:
    `convergence.DEFAULT_DELTA`; `benchmark.report.convergence`). `strict_reference`: a
    `reference` that is no method of the folder is an error (the user named it), not a warning.
    """
    SELECTIONS.get(selection)  # an unknown rule: one line listing the rules, before writing
    check_split(split)
    delta_given = flat_delta is not None
    flat_delta = convergence.DEFAULT_DELTA if flat_delta is None else flat_delta
    convergence.check_options(leaderboard_steps, flat_delta)
    out = report_target(Path(root), out, overwrite, split)
    check_output_folder(out, "report folder")  # one line before any work, not a traceback
    results = load_results(root, reference, selection, leaderboard_steps)
    results.weights, results.split = weights, split
    check_reference(reference, results.methods, root, strict_reference)
    writer = ReportWriter(out)
    built = build_frames(results, reference)
    write_frames(writer, built, results, reference)
    notes = frozen_notes(Path(root)) if weights is None else []
    test = split == "test"
    qualitative = qualitative and not notes and test
    notes += damaged_notes(results.runs)
    if not test:
        notes += split_notes(results)
    for dataset in dict.fromkeys(d for d, _f, _m in results.expected):
        write_tables(writer, built, results, reference, dataset)
        write_figures(writer, built, results, dataset)
        if qualitative:
            notes += write_qualitative(writer, results, dataset, data_root)
    if test:
        notes += write_corruption(writer, built, results, reference)
    write_train_missing(writer, built, results)
    if test:
        notes += write_test_sections(
            writer, built, results, reference, leaderboard_steps, flat_delta, delta_given
        )
    provenance = {
        "results_dir": str(root),
        "reference": reference,
        "runs": len(results.runs),
        "runs_done": sum(r.state == "done" for r in results.runs),
        "records": len(results.records),
        "methods": results.methods,
        "selection": sorted(set(built.clean["selection"])) if len(built.clean) else [],
        "train_missing": sorted(set(built.clean["train_missing"])) if len(built.clean) else [],
        "corruptions": sorted(set(built.board["corruption"]) - {frames.CLEAN})
        if len(built.board)
        else [],
        "significance_test": test_description(split=frames.SPLIT_NAMES[split]),
        "report_commit": git_commit(),
    }
    if not test:  # a test report's provenance reads as before
        provenance = {"split": split, **provenance}
    atomic_write_json(writer.out / "provenance.json", provenance)
    writer.files.append(
        ReportFile(writer.out / "provenance.json", "what this report was built from")
    )
    if html:
        site.write_site(writer, built.board, built.significance, results, reference)
    index = report_markdown(results, writer.files, writer.out, reference, notes)
    atomic_write_text(writer.out / "report.md", index)
    return [ReportFile(writer.out / "report.md", "this index"), *writer.files]


def write_test_sections(
    writer: ReportWriter,
    built: ReportFrames,
    results: Results,
    reference: str,
    leaderboard_steps: int | None,
    flat_delta: float,
    delta_given: bool = False,
) -> list[str]:
    """The sections a validation report leaves out (`VAL_SKIPPED`) after the training-missing
    one: failure model, findings, step budgets, compute. Returns notes for report.md (`delta_given`:
    whether `flat_delta` was asked for, so that a report without budgets says it was unused)."""
    notes: list[str] = []
    versus = findings.counterparts(findings.arms(e.spec for e in results.entries), reference)
    failure_data = failure.write_section(
        writer,
        built.clean,
        results,
        versus,
        render=lambda made, title, part: render_tables(made, title, _rules(part)),
        conventions=lambda part, dataset: tables.caption_conventions(
            part, _n_tiles(results.records, dataset)
        ),
    )
    findings.write(writer, results, reference, failure_data)
    budget_runs = [e.run for e in results.entries] + results.off_budget
    order = convergence.family_order(results.runs, results.methods)
    grid = [r.spec for r in results.runs if r.spec is not None]
    if convergence.write_section(writer, budget_runs, results.selection, order, flat_delta, grid):
        budget_verdicts.write_section(writer, budget_runs, results.methods, reference, grid)
        notes += convergence.budget_notes(results.runs, leaderboard_steps)
    else:
        notes += convergence.unused_options(leaderboard_steps, flat_delta if delta_given else None)
    notes += compute.write_section(writer, results.runs, results.root)
    return notes


VAL_SKIPPED = {
    "qualitative grid": "it draws one test tile",
    "corrupted test data": "corruptions are evaluated on test data only",
    "failure model": "Liao et al.'s metrics are defined on the test split",
    "findings": "findings.md holds the test-split statements the READMEs quote",
    "step budgets": "that section shows validation and test side by side already; see the "
    "test report",
    "compute": "what the runs cost is the same whichever split a report shows; see the test report",
}
"""The sections a validation report leaves out, and why (a log line each, one note in
report.md)."""


def check_split(split: str) -> None:
    """One line naming the splits a report can show, before anything is written."""
    if split not in frames.SPLIT_NAMES:
        raise BenchmarkError(
            f"report: unknown split {split!r}; expected one of {', '.join(frames.SPLIT_NAMES)}"
        )


def split_notes(results: Results) -> list[str]:
    """Notes of a validation report: the sections left out, and the finished runs without
    validation records of their selected checkpoint (shown as missing, never dropped)."""
    for section, why in VAL_SKIPPED.items():
        log.info("report --split %s: %s left out (%s)", results.split, section, why)
    notes = [
        "left out of a validation report (test only): "
        + "; ".join(f"{section} ({why})" for section, why in VAL_SKIPPED.items())
    ]
    lacking = [
        e.run.run_id
        for e in results.entries
        if not any(
            r["split"] == results.split and r["selection"] == results.selection
            for r in e.run.records
        )
    ]
    if lacking:
        notes.append(
            f"{len(lacking)} finished run(s) have no {frames.SPLIT_NAMES[results.split]} "
            "records of their selected checkpoint (shown as missing): "
            + ", ".join(lacking[:5])
            + (", …" if len(lacking) > 5 else "")
        )
        log.warning("report: %s", notes[-1])
    return notes


FROZEN_QUALITATIVE = (
    "qualitative grids not redrawn: a frozen folder keeps no weights (the grid committed with "
    "it, figures/<dataset>_qualitative.png, was drawn from them when it was frozen)"
)


def frozen_notes(root: Path) -> list[str]:
    """A frozen folder's notes for report.md: its qualitative grids are not redrawn, and run
    files changed since it was frozen are named ([] for any other results directory)."""
    if not (root / FROZEN).exists():
        return []
    log.info("report: %s", FROZEN_QUALITATIVE)
    notes = [FROZEN_QUALITATIVE]
    changed = frozen_changes(root)
    if changed:
        notes.append(
            f"{len(changed)} run file(s) differ from what was frozen ({FROZEN}): "
            + ", ".join(changed[:5])
            + (", …" if len(changed) > 5 else "")
        )
        log.warning("report: %s", notes[-1])
    return notes


def damaged_notes(runs: Sequence[StoredRun]) -> list[str]:
    """report.md's note naming the record files with lines kept out as damaged
    (`StoredRun.damaged`: skipped where they stand, never rewritten by a report, or set aside
    in `.damaged` files by `run`); [] when there are none."""
    found = [f"{RUNS}/{run.run_id}/{what}" for run in runs for what in run.damaged]
    if not found:
        return []
    note = (
        f"{len(found)} record file(s) with lines kept out as damaged (every intact record is "
        "used; `run … --corruptions` sets damaged corrupted lines aside in "
        "corrupted.jsonl.damaged and evaluates them again): "
        + "; ".join(found[:5])
        + ("; …" if len(found) > 5 else "")
    )
    log.warning("report: %s", note)
    return [note]


def report_target(root: Path, out: Path | None, overwrite: bool, split: str = "test") -> Path:
    """Where the report goes (`out`, default `root/report`, a validation report's
    `root/report/val`), refused before anything is written where it would replace a frozen
    folder's committed report (test or validation) without `overwrite`, or land among the runs
    (which would read it as a damaged run)."""
    default = root / REPORT_DIR if split == "test" else root / REPORT_DIR / VAL_DIR
    out = Path(out) if out is not None else default
    resolved, runs = out.resolve(), (root / RUNS).resolve()
    if resolved == runs or runs in resolved.parents:
        raise BenchmarkError(f"report --out {out}: inside {root / RUNS}; choose another folder")
    report = out.parent if out.name == VAL_DIR else out
    frozen = (report.parent / FROZEN).exists() and report.name == REPORT_DIR
    if frozen and out.exists() and not overwrite:
        raise BenchmarkError(
            f"report: {out} is the committed report of a frozen folder ({out.parent / FROZEN}); "
            "write elsewhere with --out DIR, or pass --overwrite to regenerate it in place"
        )
    return out


def build_frames(results: Results, reference: str) -> ReportFrames:
    """The leaderboard and everything derived from it (from its clean rows: corrupted test data
    has its own report, `benchmark.report.corruption`)."""
    split = results.split
    board = frames.leaderboard(results.entries, selection=results.selection, split=split)
    clean = frames.clean_rows(board)
    robust = robustness(clean, results.methods, reference) if len(clean) else pd.DataFrame()
    significance = frames.significance_frame(results.records, results.methods, reference, split)
    wide = frames.wide_frame(clean, results.methods, results.expected)
    return ReportFrames(board, clean, robust, significance, wide)


def write_frames(
    writer: ReportWriter, built: ReportFrames, results: Results, reference: str
) -> None:
    """The report's CSVs."""
    split = frames.SPLIT_NAMES[results.split]
    writer.csv(_runs_frame(results), "runs.csv", "every run directory and its status")
    writer.csv(
        built.board,
        "leaderboard.csv",
        "long table: one row per dataset × method × imbalance × training condition × "
        f"scenario × corruption × severity × seed ({split} split, selected checkpoint), "
        f"per-class and per-tier scores; `corruption` none = clean {split} data, "
        "`train_missing` none = complete training data",
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
        "CI and p per dataset × imbalance × scenario, on mIoU and tail-tier mIoU"
        + ("" if results.split == "test" else f" (seeds × {split} tiles)"),
    )


def write_tables(
    writer: ReportWriter, built: ReportFrames, results: Results, reference: str, dataset: str
) -> None:
    """One dataset's tables, as Markdown and as LaTeX."""
    made = build_tables(built.clean, built.robust, built.significance, results, reference, dataset)
    part = built.clean[built.clean["dataset"] == dataset]
    markdown, latex = render_tables(made, dataset, _rules(part))
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
    val_records = full_validations(results.records)
    stem = tables.slug(dataset, keep="-_")
    for kind, (fig, what) in _figures(
        built.clean, built.robust, results, dataset, val_records
    ).items():
        writer.figure(fig, f"{stem}_{kind}", f"{dataset}: {what}")


def full_validations(records: Sequence[dict]) -> list[dict]:
    """Each run's intermediate validations with every modality it trains on (its
    most-present scenario): the training figure's curve, whichever rule selected."""
    validations = [
        r for r in records if r["split"] == "val" and not r["selection"] and frames.is_clean(r)
    ]
    full: dict[str, int] = {}
    for rec in validations:
        full[rec["run_id"]] = max(full.get(rec["run_id"], 0), rec["n_present"])
    return [r for r in validations if r["n_present"] == full[r["run_id"]]]


def write_corruption(
    writer: ReportWriter, built: ReportFrames, results: Results, reference: str
) -> list[str]:
    """The corrupted-test-data section: CSVs, and per dataset with corrupted evaluations its
    severity and corruption-error tables and a severity figure per scenario (nothing when no
    run has corrupted records). Returns notes for report.md."""
    from benchmark.report import corruption

    if not corruption.has_corruptions(built.board):
        return []
    methods, expected = corruption.studied_methods(built.board, results.methods), results.expected
    severity = corruption.severity_frame(built.board, methods, expected)
    errors = corruption.error_frame(built.board, methods, expected, reference)
    writer.csv(
        severity,
        "corruption.csv",
        "mean, std, n and 95 % t-CI over seeds of test mIoU per dataset × imbalance × method × "
        "scenario × corruption × severity (severity 0 = clean, repeated under each corruption; "
        "n = 0 = not evaluated)",
        CORRUPTION,
    )
    normalised = set(errors["normalised_by"]) - {""} if len(errors) else set()
    writer.csv(
        errors,
        "corruption_error.csv",
        "corruption error per dataset × imbalance × scenario × method × corruption (CE, "
        "relative CE; row `mean` = mCE, relative mCE), "
        + (
            f"normalised by {reference} as ImageNet-C's mCE (its mCE = 100)"
            if normalised
            else f"unnormalised ({reference} has no corrupted records)"
        ),
        CORRUPTION,
    )
    fills = corruption.fill_frame(built.board, methods, expected)
    if len(fills):
        writer.csv(
            fills,
            "corruption_fill.csv",
            "per dataset × imbalance × method × scenario × corruption evaluated with both fills "
            "× severity × fill (own / mean): mean, std, n over seeds of the test mIoU drop from "
            "clean, each method's own handling of invalid pixels beside the mean fill",
            CORRUPTION,
        )
    notes = []
    for dataset in dict.fromkeys(d for d, _f, _m in expected):
        if not corruption.has_corruptions(built.board, dataset):
            continue
        part = built.board[built.board["dataset"] == dataset]
        clean = frames.clean_rows(part)
        conventions = tables.caption_conventions(clean, _n_tiles(results.records, dataset))
        grid = corruption.grid_of(part, expected, dataset)
        made = [
            corruption.severity_table(built.board, dataset, s, methods, expected, conventions)
            for s in grid.scenarios
            if grid.applicable[s]
        ]
        made.append(
            corruption.error_table(
                errors, dataset, methods, expected, reference, tables.oracles(clean), conventions
            )
        )
        fill = corruption.fill_table(built.board, dataset, methods, expected, conventions)
        made += [fill] if fill is not None else []
        markdown, latex = render_tables(made, f"{dataset}: corrupted test data", _rules(clean))
        stem = tables.slug(dataset, keep="-_")
        writer.text(
            f"tables/{stem}_corruption.md",
            markdown,
            f"{dataset}: Markdown tables — test mIoU per corruption × severity for each scenario, "
            "then the corruption error (CE, mCE, relative mCE) per scenario"
            + (
                ", then each method's drop under its own fill against the mean fill"
                * (fill is not None)
            ),
            CORRUPTION,
        )
        writer.text(
            f"tables/{stem}_corruption.tex",
            latex,
            f"{dataset}: the same tables, booktabs LaTeX",
            CORRUPTION,
        )
        if reference not in set(corruption.corrupted(part)["method"]):
            notes.append(
                f"{dataset}: corruption errors not normalised ({reference} has no corrupted "
                "records)"
            )
        for scenario in grid.scenarios:
            if not grid.applicable[scenario]:
                continue
            full = grid.missing_of[scenario] == "none"
            suffix = "" if full else f"_{tables.slug(scenario, keep='-_')}"
            writer.figure(
                corruption.severity_curves(built.board, dataset, scenario, methods, expected),
                f"{stem}_corruption{suffix}",
                f"{dataset}: test mIoU against corruption severity (0 = clean), one panel per "
                f"corruption, present: {scenario}"
                + (" (all modalities)" if full else f" (missing: {grid.missing_of[scenario]})"),
                CORRUPTION,
            )
    return notes


def write_train_missing(writer: ReportWriter, built: ReportFrames, results: Results) -> None:
    """The training-missing section, where some method was trained under several training
    conditions: a CSV, and per such dataset a table and a figure per modality varied."""
    from benchmark.report import train_missing

    conditions = {
        label_of(s): train_missing.Condition(
            s.get("_report_family", label_of(s)), train_missing_text(s)
        )
        for s in (r.spec for r in results.runs)
        if s is not None
    }
    datasets = [
        d
        for d in dict.fromkeys(d for d, _f, _m in results.expected)
        if train_missing.has_conditions(conditions, d, results.expected)
    ]
    if not datasets:
        return
    split = frames.SPLIT_NAMES[results.split]
    frame = train_missing.condition_frame(
        built.clean, results.records, results.methods, results.expected, conditions
    )
    writer.csv(
        frame,
        "train_missing.csv",
        f"mean, std, n and 95 % t-CI over seeds of clean {split} mIoU per dataset × imbalance "
        "× method × training condition × scenario, with the paired bootstrap against the same "
        "method trained on complete data",
        TRAIN_MISSING,
    )
    for dataset in datasets:
        part = built.clean[built.clean["dataset"] == dataset]
        tiles = _n_tiles(results.records, dataset, results.split)
        conventions = tables.caption_conventions(part, tiles)
        table = train_missing.condition_table(
            frame, built.clean, dataset, results.methods, conventions
        )
        markdown, latex = render_tables(
            [table], f"{dataset}: training with missing modalities", _rules(part)
        )
        stem = tables.slug(dataset, keep="-_")
        writer.text(
            f"tables/{stem}_train_missing.md",
            markdown,
            f"{dataset}: Markdown table — {split} mIoU per training condition and scenario",
            TRAIN_MISSING,
        )
        writer.text(
            f"tables/{stem}_train_missing.tex",
            latex,
            f"{dataset}: the same table, booktabs LaTeX",
            TRAIN_MISSING,
        )
        for modality in train_missing.varied_modalities(frame, dataset):
            writer.figure(
                train_missing.rate_curves(frame, built.clean, dataset, modality, results.methods),
                f"{stem}_train_missing_{tables.slug(modality, keep='-_')}",
                f"{dataset}: {split} mIoU against the share of training tiles without "
                f"{modality} (0 = complete data), one panel per scenario",
                TRAIN_MISSING,
            )


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
    split = frames.SPLIT_NAMES[results.split]
    figures = {
        "heatmap": (
            plots.heatmap(board, dataset, methods, expected),
            f"heatmap of {split} mIoU (mean over seeds), methods × scenarios, one panel per "
            "imbalance factor; hatched = missing run",
        ),
        "class_iou": (
            plots.class_iou_bars(board, dataset, methods, expected),
            f"per-class {split} IoU per scenario (lowest imbalance factor), which classes a "
            "method loses when a modality goes missing; tier in parentheses",
        ),
        "robustness": (
            plots.robustness_bars(robust, dataset, methods, expected, results.split),
            "full vs mean-over-missing vs worst-scenario mIoU, all classes and tail tier, "
            "per imbalance factor",
        ),
        "training": (
            plots.training_curves(
                results.train_logs, val_records, dataset, methods, _selected_steps(results)
            ),
            "training loss and validation mIoU (all modalities) per run; star = selected "
            "checkpoint",
        ),
    }
    if "train_gflops_per_step" in board and board["train_gflops_per_step"].notna().any():
        figures["cost"] = (
            plots.cost_scatter(board, dataset, methods),
            f"{split} mIoU against training TFLOPs of the run, one point per method and one "
            "panel per scenario; oracles hollow",
        )
    if len({f for (d, f, _m) in expected if d == dataset}) > 1:
        figures["imbalance"] = (
            plots.imbalance_curves(board, dataset, methods, expected),
            "tail-tier mIoU versus the controlled-imbalance factor, per scenario",
        )
    return figures


def _selected_steps(results: Results) -> dict[str, int]:
    """Run id -> the step the report's rule chose (the training figure stars it)."""
    return {
        rec["run_id"]: rec["checkpoint_step"]
        for rec in results.records
        if rec["split"] == "test" and rec["selection"] == results.selection
    }


def _qualitative(results: Results, dataset: str, data_root: Path | None):
    from benchmark.report.qualitative import pick_runs, qualitative_grid

    if data_root is None:
        raise ValueError("no --data-root")
    store = RunStore(results.weights or results.root)
    runs = [entry.run for entry in results.entries]
    chosen = pick_runs(runs, store, dataset, results.methods, results.selection)
    return qualitative_grid(
        chosen, store, results.methods, data_root, dataset, selection=results.selection
    )


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
                "train_missing": train_missing_text(spec) if spec else "",
                "selection": "|".join(sorted({r["selection"] for r in run.records} - {""})),
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
    test = results.split == "test"
    flag = "" if test else f" --split {results.split}"
    lines = [
        "# MissBench report" + ("" if test else " — validation split"),
        "",
        *([] if test else [VAL_WARNING, ""]),
        f"Built by `python run_benchmark.py report {results.root}{flag}` from the records of "
        f"{done} finished run(s) of {len(results.runs)} under `{results.root / 'runs'}`. "
        f"Reference method: `{reference}`. {selection_line([results.selection])}",
        "",
        f"Methods (colour order in every figure): {', '.join(f'`{m}`' for m in results.methods)}.",
        f"Significance: {test_description(split=frames.SPLIT_NAMES[results.split])}.",
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
    if results.lacking:
        lines += [
            f"## Finished runs without {results.selection} records (left out)",
            "",
            "Finished before every selection rule was recorded; `python run_benchmark.py run "
            f"--selection {results.selection}` with the same settings trains them again.",
            "",
        ]
        lines += [f"- `{run.run_id}`: {label_of(run.spec)}" for run in results.lacking]
        lines.append("")
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    for section in ["", *SECTIONS]:
        mine = [f for f in files if f.section == section]
        if section and not mine:
            continue
        lines += [f"## {section or 'Files'}", ""]
        if section:
            text = SECTIONS[section]
            if section == TRAIN_MISSING:
                text = TRAIN_MISSING_TEXT.format(split=frames.SPLIT_NAMES[results.split])
            lines += [text, ""]
        lines += _file_lines(mine, out) + [""]
    return "\n".join(lines)


VAL_WARNING = (
    "**Every table and figure here is on the validation split**: the validation records of "
    "each run's selected checkpoint. That checkpoint was chosen on these tiles, so the scores "
    "are optimistic: use them to check choices made on validation (the synthetic data's "
    "calibration, hyperparameters), and the test report (`report/`) for results."
)


def _file_lines(files: Sequence[ReportFile], out: Path) -> list[str]:
    """One list item per file, a figure's PDF beside its PNG."""
    lines = []
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
    return lines
