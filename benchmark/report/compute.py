"""Compute: what a results folder cost, in the hours its runs recorded, per stage and device.

A *stage* is what one command produced: for `run`, one dataset (its report name) x training
condition x budget kind x step budget x preset (under `--budget flops` the steps the command
asked for, the baseline's, which each method's FLOP ratio scaled); for `tune`, the search.
Per stage and device, from the records of every finished run (`compute_frame`):

- `train_hours`: each run's `train_seconds` once. Its intermediate validations carry the
  seconds trained so far and the final records the whole, so a run counts its largest. An
  oracle trains one model per scenario, each a run of its own, so its models add up (as in
  the cost table, `frames.cost_frame`).
- `eval_hours`: each clean evaluation once (validation and test). One evaluation can stand in
  several records: the checkpoint several selection rules chose is evaluated once and recorded
  under each rule, and the validation that chose it is the final validation record too; an
  evaluation is (split, checkpoint step, scenario), as `tune` counts its trials'
  (`benchmark.commands.tuning.run_cost`).
- `corrupted_eval_hours`: each corrupted test evaluation once (0 where there are none); a
  record written from another fill's evaluation (`invalid_fill_from`: the same predictions,
  not evaluated again) adds nothing.

The device is the records' device as a kind: `cpu`, or `gpu` for any accelerator (`cuda:1`,
`mps`), the split `tune`'s `search_cost.csv` makes; runs spread over several GPUs by
`--workers` add up under one row. Failed and unfinished runs recorded no seconds and are not
counted. Where the results folder holds a tune folder (`<results>/tune/search_cost.csv`), the
search is a stage of its own (`tune_tallies`). These are compute seconds on the device, not the
wall time of the commands (start-up, data loading before training, and overlaps of
`--workers` are not in them).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from benchmark.report.frames import budget_of, dataset_of, is_clean, train_missing_text
from benchmark.report.render import markdown_row
from benchmark.report.tables import MISSING_CELL
from benchmark.run.store import TUNE_COST_CSV, TUNE_DIR, TUNE_PROTOCOL, StoredRun
from benchmark.system.errors import describe

log = logging.getLogger(__name__)

SECTION = "Compute"
SECTION_TEXT = (
    "What the folder cost: per stage (what one `run` or `tune` command produced) and device, "
    "the training and evaluation seconds its finished runs recorded, summed, in hours."
)
CAPTION = (
    "Hours the runs recorded (training once per run, an oracle's per-scenario models each "
    "a run; every clean validation and test evaluation and every corrupted test evaluation "
    "once), summed per stage and device (gpu = any accelerator): compute on that device, not "
    "the wall time of the commands, which adds start-up and, with --workers, overlaps runs. "
    "Failed and unfinished runs keep no records and are not counted."
)
KEYS = ["stage", "dataset", "train_missing", "budget", "steps", "preset"]
COUNTS = ["runs", "seeds", "methods"]
HOURS = ["train_hours", "eval_hours", "corrupted_eval_hours", "total_hours"]
COLUMNS = [*KEYS, "device", *COUNTS, *HOURS]
DIGITS = 3
"""Decimals of the hours (3.6 s)."""
TOTAL = "total"
"""`stage` of the last row per device: every stage on that device."""
CORRUPTED_EVALUATION = (
    "selection", "checkpoint_step", "scenario", "corruption", "severity", "invalid_fill",
)  # fmt: skip
"""What tells one corrupted test evaluation of a run from another."""
TUNE_COLUMNS = ("method", "runs", "train_seconds", "eval_seconds", "cpu_seconds", "gpu_seconds")
"""What the tune stage reads of `search_cost.csv`."""


@dataclass(frozen=True)
class RunCompute:
    """The seconds one finished run recorded, and where they belong."""

    stage: tuple
    """`KEYS` values."""
    device: str
    run_id: str
    seed: int
    method: str
    train: float
    evaluation: float
    corrupted: float
    timed: bool
    """Whether its records have seconds at all (runs made before costs were kept have not)."""


def device_kind(device: Any) -> str:
    """`cpu`, `gpu` (any accelerator: `cuda:0`, `mps`) or `unknown` (not recorded)."""
    if not isinstance(device, str) or not device:
        return "unknown"
    return "cpu" if device.startswith("cpu") else "gpu"


def _seconds(value: Any) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return 0.0
    return seconds if math.isfinite(seconds) else 0.0


def run_compute(run: StoredRun, stage: str = "run") -> RunCompute | None:
    """What a finished run recorded (None for one without records)."""
    spec = run.spec
    if spec is None or run.state != "done" or not run.records:
        return None
    clean = [r for r in run.records if is_clean(r)]
    train = max((_seconds(r.get("train_seconds")) for r in clean), default=0.0)
    evaluations: dict[tuple, float] = {}
    for rec in clean:
        key = (rec.get("split"), rec.get("checkpoint_step"), rec.get("scenario"))
        evaluations.setdefault(key, _seconds(rec.get("eval_seconds")))
    corrupted: dict[tuple, float] = {}
    for rec in run.records:
        if is_clean(rec) or rec.get("invalid_fill_from"):
            continue
        key = tuple(rec.get(k) for k in CORRUPTED_EVALUATION)
        corrupted.setdefault(key, _seconds(rec.get("eval_seconds")))
    budget, steps, preset = budget_of(spec)
    return RunCompute(
        stage=(
            stage,
            dataset_of(spec),
            train_missing_text(spec.get("train_missing")),
            budget,
            steps,
            preset,
        ),
        device=device_kind(next((r.get("device") for r in clean or run.records), None)),
        run_id=run.run_id,
        seed=int(spec["seed"]),
        method=str(spec.get("label") or spec["method"]),
        train=train,
        evaluation=sum(evaluations.values()),
        corrupted=sum(corrupted.values()),
        timed=any("train_seconds" in r or "eval_seconds" in r for r in run.records),
    )


def _hours(seconds: float) -> float:
    return round(seconds / 3600, DIGITS) if math.isfinite(seconds) else math.nan


@dataclass
class Tally:
    """Seconds, runs, seeds and methods summed over one row's runs."""

    train: float = 0.0
    evaluation: float = 0.0
    corrupted: float = 0.0
    unknown: float = 0.0
    """Seconds whose split into training and evaluation is not known (a tune method whose
    trials ran on CPU and GPU): its row's training and evaluation hours are then NaN."""
    runs: int = 0
    seeds: set = field(default_factory=set)
    methods: set = field(default_factory=set)

    def add(self, other: Tally) -> None:
        self.train += other.train
        self.evaluation += other.evaluation
        self.corrupted += other.corrupted
        self.unknown += other.unknown
        self.runs += other.runs
        self.seeds |= other.seeds
        self.methods |= other.methods

    def row(self, key: Sequence, device: str) -> dict[str, Any]:
        split = math.nan if self.unknown else 0.0
        total = self.train + self.evaluation + self.corrupted + self.unknown
        hours = [self.train + split, self.evaluation + split, self.corrupted, total]
        counts = [self.runs, len(self.seeds), len(self.methods)]
        return dict(zip(COLUMNS, [*key, device, *counts, *map(_hours, hours)], strict=True))


Tallies = dict[tuple[tuple, str], Tally]
"""(stage key, device) -> its tally."""


def _stage_order(key: tuple) -> tuple:
    """Run stages first, complete data first, steps in numeric order (a tune stage's rungs
    after)."""
    stage, dataset, condition, budget, steps, preset = key
    number = (0, steps, "") if isinstance(steps, int) else (1, 0, str(steps))
    return (stage != "run", dataset, condition != "none", condition, budget, number, preset)


def run_tallies(runs: Sequence[StoredRun], stage: str = "run") -> Tallies:
    """Each stage x device's tally of the finished runs."""
    tallies: Tallies = {}
    for item in (run_compute(r, stage) for r in runs):
        if item is None:
            continue
        mine = Tally(item.train, item.evaluation, item.corrupted, 0.0, 1, {item.seed},
                     {item.method})  # fmt: skip
        tallies.setdefault((item.stage, item.device), Tally()).add(mine)
    return tallies


def compute_frame(
    runs: Sequence[StoredRun], tune: Tallies | None = None, stage: str = "run"
) -> pd.DataFrame:
    """compute.csv: one row per stage x device (`runs` under `stage`, then the `tune` stage,
    `tune_tallies`), then a `total` row per device. Seeds and methods of a total row are the
    distinct ones over its stages; every row's hours are summed before rounding."""
    tallies = run_tallies(runs, stage)
    tallies.update(tune or {})
    rows, totals = [], {}
    for key, device in sorted(tallies, key=lambda k: (_stage_order(k[0]), k[1])):
        tally = tallies[(key, device)]
        rows.append(tally.row(key, device))
        totals.setdefault(device, Tally()).add(tally)
    for device in sorted(totals):
        rows.append(totals[device].row([TOTAL, *[""] * (len(KEYS) - 1)], device))
    return pd.DataFrame(rows, columns=COLUMNS)


def tune_tallies(folder: Path) -> tuple[Tallies, list[str]]:
    """The `tune` stage from a tune folder's `search_cost.csv` (its seconds per method summed),
    per device kind, and notes for report.md; ({}, []) where there is none.

    `search_cost.csv` splits a method's seconds into CPU and GPU only as totals: a method whose
    trials ran on both adds its seconds to both rows without a split into training and
    evaluation (NaN there), and its runs where most of its seconds were spent."""
    path = Path(folder) / TUNE_COST_CSV
    if not path.is_file():
        return {}, []
    try:
        cost = pd.read_csv(path)
        missing = [c for c in TUNE_COLUMNS if c not in cost.columns]
        if missing:
            raise ValueError(f"no column {', '.join(missing)}")
    except (OSError, ValueError) as error:  # pandas' parser errors are ValueErrors
        note = f"{path}: unreadable ({describe(error)}); the tune stage is left out of compute"
        log.warning("report: %s", note)
        return {}, [note]
    protocol = _protocol(Path(folder) / TUNE_PROTOCOL)
    rungs = protocol.get("rungs")
    key = (
        "tune",
        str(protocol.get("dataset", "")),
        train_missing_text(None),
        "steps",
        "|".join(str(s) for s in rungs) if isinstance(rungs, list) else "",
        str(protocol.get("preset", "")),
    )
    seed = protocol.get("seed")
    tallies: Tallies = {}
    for _, row in cost.iterrows():
        shares = {
            d: _seconds(row[f"{d}_seconds"])
            for d in ("cpu", "gpu")
            if _seconds(row[f"{d}_seconds"])
        }
        home = max(shares, key=lambda d: shares[d]) if shares else "cpu"
        for device in shares or {home: 0.0}:
            mine = Tally()
            if len(shares) > 1:
                mine.unknown = shares[device]
            else:
                mine.train, mine.evaluation = (
                    _seconds(row["train_seconds"]),
                    _seconds(row["eval_seconds"]),
                )
            if device == home:
                mine.runs = int(_seconds(row["runs"]))
                mine.methods = {str(row["method"])}
                mine.seeds = {seed} if seed is not None and mine.runs else set()
            tallies.setdefault((key, device), Tally()).add(mine)
    return tallies, []


def _protocol(path: Path) -> Mapping[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def compute_markdown(frame: pd.DataFrame) -> str:
    """compute.md: the same rows as a pipe table under a one-line caption."""
    lines = ["# Compute", "", CAPTION, "", markdown_row(COLUMNS)]
    lines.append(
        "|" + "|".join([":--"] * (len(KEYS) + 1) + ["--:"] * (len(COUNTS) + len(HOURS))) + "|"
    )
    for _, row in frame.iterrows():
        cells = [row[c] for c in [*KEYS, "device", *COUNTS]]
        cells += [
            f"{row[c]:.{DIGITS}f}" if math.isfinite(float(row[c])) else MISSING_CELL for c in HOURS
        ]
        lines.append(markdown_row(cells))
    return "\n".join(lines) + "\n"


def untimed_notes(runs: Sequence[StoredRun]) -> list[str]:
    """A report.md note naming finished runs whose records have no seconds (made before costs
    were kept): they count as runs with 0 hours."""
    found = [c.run_id for c in (run_compute(r) for r in runs) if c is not None and not c.timed]
    if not found:
        return []
    note = (
        f"compute: {len(found)} finished run(s) recorded no seconds (made before costs were "
        "kept), counted with 0 hours: " + ", ".join(found[:5]) + (", …" if len(found) > 5 else "")
    )
    log.warning("report: %s", note)
    return [note]


class Writer(Protocol):
    """What the section needs of `generate.ReportWriter`."""

    def csv(self, frame: pd.DataFrame, name: str, what: str, section: str = "") -> None: ...

    def text(self, relative: str, text: str, what: str, section: str = "") -> None: ...


def write_section(writer: Writer, runs: Sequence[StoredRun], root: Path) -> list[str]:
    """compute.csv and compute.md for the runs of the results folder `root` (every finished
    run, whichever selection rule the report shows) and its tune folder, if any; nothing where
    no run has finished. A tune folder's own report (`report <out>/tune`) puts its runs under
    the `tune` stage. Returns notes for report.md."""
    root = Path(root)
    own = "tune" if (root / TUNE_PROTOCOL).is_file() else "run"
    tune, notes = tune_tallies(root / TUNE_DIR) if own == "run" else ({}, [])
    frame = compute_frame(runs, tune, own)
    if frame.empty:
        log.info("report: no compute section (no finished run recorded its seconds)")
        return notes
    notes += untimed_notes(runs)
    writer.csv(
        frame,
        "compute.csv",
        "hours of training, clean evaluation and corrupted evaluation the runs recorded, per "
        "stage (dataset × training condition × budget × steps × preset of one command; the "
        "tune search) × device, with a total row per device",
        SECTION,
    )
    writer.text(
        "compute.md",
        compute_markdown(frame),
        "the same as a Markdown table, with what the hours count",
        SECTION,
    )
    return notes
