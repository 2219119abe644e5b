"""Frames: the long leaderboard and the summaries derived from it, as pure functions of the
runs' records (`benchmark.run.store`). Rendering them is `render`'s job, tables are `tables`'.

`leaderboard` is the one builder of the long table, for both a sweep's `leaderboard.csv` and
the report's.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.core.plugins import METHODS
from benchmark.core.records import CLEAN, MEAN_FILL, SELECTION_FULL_VAL, invalid_fill_of
from benchmark.core.scenarios import Scenario
from benchmark.corrupt.tile import fill_matters
from benchmark.report.stats import (
    BOOTSTRAP_RESAMPLES,
    PairedResult,
    paired_bootstrap,
    summarize,
    test_description,
)
from benchmark.run.store import StoredRun
from benchmark.system.io import atomic_write_text

log = logging.getLogger(__name__)

BASE_COLUMNS = [
    "dataset",
    "method",
    "kind",
    "imbalance",
    "train_missing",
    "scenario",
    "missing",
    "n_present",
    "corruption",
    "severity",
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
COST_COLUMNS = [
    "params_trained",
    "params_inference",
    "train_gflops_per_step",
    "infer_gflops_per_window",
    "train_seconds",
    "step_ms",
    "budget",
    "budget_ratio",
]
"""What a run cost (`benchmark.run.cost`); empty for records written before costs were kept."""
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


SCORE_METRICS = {
    "miou": "mIoU",
    "mf1": "mF1",
    "miou_head": "head-tier mIoU",
    "miou_body": "body-tier mIoU",
    "miou_tail": "tail-tier mIoU",
}
SIGNIFICANCE_METRICS = ("miou", "miou_tail")
UNFINISHED_STATUS = {"failed": "failed", "busy": "running"}
"""Leaderboard `status` of a run without results, by store state (otherwise `missing`)."""
COMPLETE = "none"
"""`train_missing` of a run trained on complete data, as the leaderboard shows it."""
SPLIT_NAMES = {"test": "test", "val": "validation"}
"""The splits a report's leaderboard can show (`report --split`), as its captions name them."""


def split_of(board: pd.DataFrame) -> str:
    """The split a board's rows were evaluated on (`test` unless every row is on `val`): every
    table and figure names it, so a validation report never reads as a test one."""
    if "split" not in board or board.empty:
        return "test"
    splits = set(board["split"].dropna())
    return "val" if splits == {"val"} else "test"


def split_name(board: pd.DataFrame) -> str:
    """`split_of(board)` as captions spell it: `test` or `validation`."""
    return SPLIT_NAMES[split_of(board)]


def train_missing_pairs(value: str | Sequence | None) -> tuple[tuple[str, float], ...]:
    """(modality, rate) pairs, sorted by modality, of a record's `train_missing` text
    (`dsm=0.3,sar=0.5`; "" or `none` for complete data) or a spec's list of pairs.

    Records and specs spell the same condition in two forms; reading both into one canonical
    form means a run is never told apart from itself (or merged with another) by spelling.
    """
    if value is None or (isinstance(value, str) and value.strip() in ("", COMPLETE)):
        return ()
    if isinstance(value, str):
        pairs = []
        for part in value.split(","):
            name, _, rate = part.partition("=")
            pairs.append((name.strip(), float(rate)))
    else:
        pairs = [(str(name), float(rate)) for name, rate in value]
    return tuple(sorted(pairs))


def train_missing_text(value: str | Sequence | None) -> str:
    """Canonical `train_missing` for the leaderboard: `dsm=0.3,sar=0.5`, or `none`."""
    pairs = train_missing_pairs(value)
    return ",".join(f"{name}={rate:g}" for name, rate in pairs) if pairs else COMPLETE


def train_missing_phrase(value: str | Sequence | None) -> str:
    """Short reading of a training condition for labels: `−dsm 30%, −sar 50%` ("" if complete)."""
    return ", ".join(f"−{name} {100 * rate:g}%" for name, rate in train_missing_pairs(value))


def is_clean(record: Mapping[str, Any]) -> bool:
    """Whether an evaluation record is on clean test data (records before corruptions were
    evaluated have no `corruption` key and are all clean)."""
    return record.get("corruption", CLEAN) == CLEAN


MEAN_FILL_SUFFIX = " (mean fill)"
"""Appended to a corruption's name on the board for its evaluations with every method's invalid
pixels mean-filled (`--invalid-fill mean`), so the report shows them beside each method's own
handling (the plain name) as a corruption of their own."""


def corruption_label(record: Mapping[str, Any]) -> str:
    """A record's `corruption` as the board names it: the corruption's name, with
    `MEAN_FILL_SUFFIX` where its invalid pixels were mean-filled for every method
    (`invalid_fill_of`; a corruption that marks no pixel invalid is the same either way)."""
    name = record.get("corruption", CLEAN)
    if name != CLEAN and invalid_fill_of(record) == MEAN_FILL and fill_matters(name):
        return name + MEAN_FILL_SUFFIX
    return name


def fill_variant_of(label: str) -> str | None:
    """The corruption a `MEAN_FILL_SUFFIX` label is the mean-fill variant of, else None."""
    return label.removesuffix(MEAN_FILL_SUFFIX) if label.endswith(MEAN_FILL_SUFFIX) else None


def clean_rows(board: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard rows on clean test data: what every table but the corruption report
    shows, so that adding corrupted evaluations changes none of them."""
    if "corruption" not in board:
        return board
    return board[board["corruption"] == CLEAN]


def label_of(spec: Mapping[str, Any]) -> str:
    """A run's method label in reports (`generate.distinguish` may have qualified it)."""
    return spec.get("_report_label") or spec.get("label") or spec["method"]


def requested_steps(steps: float, budget: str | None, ratio: float | None) -> int:
    """The step budget a run was given: its steps, or under `--budget flops` the baseline's
    steps its FLOP-matched steps were scaled from."""
    if budget == "flops" and ratio:
        return int(round(float(steps) / float(ratio)))
    return int(steps)


def budget_of(spec: Mapping[str, Any]) -> tuple[str, int, str]:
    """(budget, requested steps, preset) of a run: what its runs must share to be averaged."""
    budget = spec.get("budget", "steps")
    steps = requested_steps(spec["steps"], budget, spec.get("budget_ratio"))
    return budget, steps, spec.get("preset", "")


def dataset_of(spec: Mapping[str, Any]) -> str:
    """A run's dataset name in reports (qualified by its options where runs differ in them):
    a folder dataset's is its card's `name` (`RunSpec.dataset_name`)."""
    return spec.get("_report_dataset") or spec.get("dataset_name") or spec["dataset"]


@dataclass(frozen=True)
class BoardEntry:
    """One run as a leaderboard shows it: under which method and dataset names."""

    label: str
    """Method label, e.g. `baseline[lr=0.0003]` (the report may qualify it, see `distinguish`)."""
    dataset: str
    spec: Mapping[str, Any]
    """The run spec in its JSON form."""
    run: StoredRun


def leaderboard(
    entries: Sequence[BoardEntry],
    reported: Mapping[str, Sequence[str]] | None = None,
    modalities: Mapping[str, Sequence[str]] | None = None,
    selection: str = SELECTION_FULL_VAL,
    split: str = "test",
) -> pd.DataFrame:
    """Tidy long table: one row per dataset x method x imbalance x training condition x
    scenario x corruption x severity x seed (`split`, default test, at the checkpoint the
    `selection` rule chose: one rule's rows only); per-class IoU/F1 as `iou_<class>` /
    `f1_<class>`, tier means as `miou_<tier>` / `mf1_<tier>`. Clean data has `corruption` none
    and `severity` 0; complete training data `train_missing` none.

    With `reported` (dataset -> scenarios, and `modalities`, dataset -> its modalities: a
    sweep's board), only those scenarios are kept and every run without results (of that rule)
    gets rows for them with `status` failed / running / missing and empty metrics, after the
    finished runs' rows. Without, every finished record of the rule enters (the report's
    board).
    """
    records = []
    for entry in entries:
        for rec in entry.run.records:
            if rec["selection"] != selection:
                continue
            if reported is None or rec["scenario"] in reported[entry.dataset]:
                records.append(dict(rec, method=entry.label, dataset=entry.dataset))
    board = record_frame(records, split)
    if reported is None:
        return board
    placeholders = [
        row
        for entry in entries
        if not selected_by(entry.run, selection)
        for row in unfinished_rows(
            entry, reported[entry.dataset], modalities[entry.dataset], selection
        )
    ]
    if placeholders:
        board = pd.concat([board, pd.DataFrame(placeholders)], ignore_index=True)
    return board


def selected_by(run: StoredRun, selection: str) -> bool:
    """Whether a run is finished with records of the `selection` rule (one finished before
    every rule was recorded has only its own rule's)."""
    return run.state == "done" and any(r["selection"] == selection for r in run.records)


def record_frame(records: Iterable[dict], split: str = "test") -> pd.DataFrame:
    """The leaderboard rows of evaluation records: the selected checkpoint's, on `split`."""
    rows = []
    for rec in records:
        if rec["split"] != split or not rec["selection"]:
            continue
        row = {
            key: rec[key] for key in BASE_COLUMNS + COST_COLUMNS + TRAILING_COLUMNS if key in rec
        }
        row.setdefault("kind", method_kind(rec["method_name"]))
        # records written before these keys existed are clean evaluations of complete data
        row["train_missing"] = train_missing_text(rec.get("train_missing"))
        row["corruption"] = corruption_label(rec)
        row["severity"] = int(rec.get("severity", 0))
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
        return pd.DataFrame(columns=BASE_COLUMNS + COST_COLUMNS + TRAILING_COLUMNS)
    frame = pd.DataFrame(rows)
    for column in COST_COLUMNS:  # records written before costs were kept
        if column not in frame:
            frame[column] = np.nan
    class_columns = [c for c in frame.columns if c.startswith(("iou_", "f1_"))]
    class_columns = sorted(
        class_columns, key=lambda c: (not c.startswith("iou_"), list(frame.columns).index(c))
    )
    return frame[BASE_COLUMNS + class_columns + COST_COLUMNS + TRAILING_COLUMNS]


def method_kind(name: str) -> str:
    """`single-model` or `oracle` for a registered method name ("" when it is not registered)."""
    return METHODS.get(name).kind() if name in METHODS else ""


def unfinished_rows(
    entry: BoardEntry,
    scenarios: Sequence[str],
    modalities: Sequence[str],
    selection: str = SELECTION_FULL_VAL,
) -> list[dict[str, Any]]:
    """Leaderboard rows for a run without results (of the `selection` rule): shown as
    failed/running/missing, never dropped (only its own scenario for a dedicated method)."""
    spec, run = entry.spec, entry.run
    status = UNFINISHED_STATUS.get(run.state, "missing")
    error = {"failed": run.detail, "busy": "running in another launcher"}.get(run.state, "")
    own = {
        str(s) for s in METHODS.get(spec["method"]).evaluation_scenarios(spec["train_modalities"])
    }
    rows = []
    for scenario in (s for s in scenarios if s in own):
        parsed = Scenario.parse(scenario)
        rows.append(
            {
                "dataset": entry.dataset,
                "method": entry.label,
                "kind": method_kind(spec["method"]),
                "imbalance": spec["imbalance"],
                "train_missing": train_missing_text(spec.get("train_missing")),
                "scenario": scenario,
                "missing": parsed.missing_label(modalities),
                "n_present": len(parsed.present),
                "corruption": CLEAN,
                "severity": 0,
                "seed": spec["seed"],
                "split": "test",
                "status": status,
                "error": error,
                "steps": spec["steps"],
                "budget": spec.get("budget", "steps"),
                "budget_ratio": spec.get("budget_ratio", 1.0),
                "preset": spec["preset"],
                "selection": selection,
                "method_name": spec["method"],
                "run_id": entry.run.run_id,
            }
        )
    return rows


def dataset_view(board: pd.DataFrame, dataset: str) -> tuple[pd.DataFrame, list[str], dict]:
    """One dataset's rows, its scenarios in table order, and each scenario's missing label."""
    part = board[board["dataset"] == dataset]
    missing_of = dict(zip(part["scenario"], part["missing"], strict=False))
    return part, scenario_order(part), missing_of


def cost_frame(board: pd.DataFrame) -> pd.DataFrame:
    """One row per method x imbalance x seed with the cost columns the table shows, taken from
    the full-modality scenario; an oracle's training cost is the sum over its per-scenario
    runs (what serving every scenario costs it), and its budget ratios span those runs'."""
    if board.empty or "train_gflops_per_step" not in board:
        return pd.DataFrame()
    ok = board[board["status"] == "ok"].copy()
    ok["train_tflops"] = ok["train_gflops_per_step"] * ok["steps"] / 1e3
    ok["train_minutes"] = ok["train_seconds"] / 60
    full = ok[ok["missing"] == "none"].copy()
    runs = ok.drop_duplicates("run_id")
    totals = runs.groupby(["method", "imbalance", "seed"])[
        ["train_tflops", "train_minutes", "params_trained"]
    ].sum(min_count=1)
    ratios = runs.groupby(["method", "imbalance", "seed"])["budget_ratio"].agg(["min", "max"])
    totals["budget_ratio_min"], totals["budget_ratio_max"] = ratios["min"], ratios["max"]
    for column in totals.columns:
        summed = full.set_index(["method", "imbalance", "seed"]).index.map(totals[column])
        full[column] = summed.to_numpy()
    return full


def scenario_order(frame: pd.DataFrame) -> list[str]:
    """Full-modality scenario first, then by decreasing number of present modalities."""
    pairs = frame[["scenario", "n_present"]].drop_duplicates()
    pairs = pairs.sort_values(["n_present", "scenario"], ascending=[False, True])
    return list(pairs["scenario"])


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    atomic_write_text(path, frame.to_csv(index=False, float_format="%.6f"))


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
    records: Sequence[dict], methods: Sequence[str], reference: str, split: str = "test"
) -> pd.DataFrame:
    """Paired bootstrap (benchmark.report.stats) of every method against `reference`, per dataset x
    imbalance x scenario, on mIoU and tail-tier mIoU, from the selected clean records of `split`
    (validation records keep per-tile confusions too)."""
    index = records_by_seed(records, ("dataset", "imbalance", "method", "scenario"), split=split)
    rows = []
    for (dataset, factor, method, scenario), by_seed in index.items():
        if method == reference:
            continue
        ref = index.get((dataset, factor, reference, scenario))
        if not ref:
            continue
        for metric, result in paired_comparison(by_seed, ref):
            rows.append(
                {
                    "dataset": dataset,
                    "imbalance": factor,
                    "method": method,
                    "reference": reference,
                    "scenario": scenario,
                    "metric": metric,
                    **result.columns(),
                    "test": test_description(split=SPLIT_NAMES[split]),
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


def records_by_seed(
    records: Iterable[dict], keys: Sequence[str], clean: bool = True, split: str = "test"
) -> dict[tuple, dict[int, dict]]:
    """The selected clean records of `split` (with `clean=False` the corrupted ones too: put
    `corruption` (as the board names it, `corruption_label`) and `severity` in `keys` then),
    indexed by the values of `keys`, then by seed (the first record of a seed wins, as in the
    leaderboard)."""
    index: dict[tuple, dict[int, dict]] = {}
    for rec in records:
        if rec["split"] != split or not rec["selection"] or (clean and not is_clean(rec)):
            continue
        values = tuple(
            corruption_label(rec)
            if k == "corruption"
            else int(rec.get(k, 0))
            if k == "severity"
            else rec[k]
            for k in keys
        )
        index.setdefault(values, {}).setdefault(rec["seed"], rec)
    return index


def paired_comparison(
    by_seed: Mapping[int, dict],
    ref: Mapping[int, dict],
    metrics: Sequence[str] = SIGNIFICANCE_METRICS,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> list[tuple[str, PairedResult]]:
    """Paired bootstrap of the records `by_seed` against `ref` on the seeds and test tiles both
    have, per metric (`miou`: the eval classes; `miou_tail`: the tail tier); empty when they
    share no seed or tile. A tile pairs with the tile of the same name of the same seed, on the
    same data (`paired_seeds`); where seeds saw different data, tiles are drawn per seed."""
    seeds, nested = paired_seeds(by_seed, ref)
    if not seeds:
        return []
    first = by_seed[seeds[0]]
    tiles = [t for t in first["tile_names"] if all(t in ref[s]["tile_names"] for s in seeds)]
    tiles = [t for t in tiles if all(t in by_seed[s]["tile_names"] for s in seeds)]
    if not tiles:
        return []

    def stack(recs: Mapping[int, dict]) -> np.ndarray:
        return np.asarray(
            [
                [recs[s]["tile_confusions"][recs[s]["tile_names"].index(t)] for t in tiles]
                for s in seeds
            ],
            dtype=np.float64,
        )

    a, b = stack(by_seed), stack(ref)
    classes = list(first["classes"])
    out = []
    for metric in metrics:
        names = first["eval_classes"] if metric == "miou" else first["tiers"]["tail"]
        subset = [classes.index(n) for n in names]
        if subset:
            result = paired_bootstrap(a, b, subset, resamples=resamples, nested=nested)
            out.append((metric, result))
    return out


def paired_seeds(by_seed: Mapping[int, dict], ref: Mapping[int, dict]) -> tuple[list[int], bool]:
    """The seeds both sides have on the same data, and whether the data differ between seeds.

    Tile names repeat across generated datasets (`test_00000` of `synthetic[seed=1]` is not
    that of `seed=2`), so a seed pairs only where both records name the same dataset options;
    where the seeds' options differ (`seed=run`), tile t of one seed is no relation of tile t
    of another, and the bootstrap draws each seed's tiles apart (`paired_bootstrap(nested)`).
    """
    seeds, data = [], set()
    for seed in sorted(set(by_seed) & set(ref)):
        mine, theirs = _data_of(by_seed[seed]), _data_of(ref[seed])
        if mine != theirs:
            log.warning("paired test: seed %d left out (its runs saw different data)", seed)
            continue
        seeds.append(seed)
        data.add(mine)
    return seeds, len(data) > 1


def _data_of(record: Mapping[str, Any]) -> str:
    """A record's dataset and options, as one comparable string."""
    return json.dumps([record["dataset"], record.get("dataset_options", {})], sort_keys=True)
