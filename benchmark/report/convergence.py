"""Step budgets: validation and test mIoU against training steps, per method (convergence).

`run --steps N` trains a configuration again under another step budget. Each budget is a run of
its own (its own content-addressed directory and its own one-cycle schedule), not an
intermediate validation of a longer run, whose learning rate has not annealed yet. Where a
results directory holds one method configuration at several budgets (same label, dataset,
imbalance, training condition, budget kind and preset: everything but the steps), this module
lines the budgets up:

- `curve_frame` (`budget_curve.csv`): per cohort (dataset x imbalance x training condition x
  budget kind x preset) x method x steps x split x measure, mean / std / n over seeds of mIoU
  and the seeds. `measure` is the all-present scenario's mIoU (`all_present`) or the mean over
  every scenario the method is evaluated on (`scenario_mean`). Validation is the selected
  checkpoint's (the rule chose it on validation), test the same checkpoint's.
- `flattening_frame` (`budget_flattening.csv`): per method and measure the *flattening
  budget*, the smallest budget from which every larger budget's mean validation mIoU lies
  within δ points of the largest budget's (δ = `report --flat-delta`, default 1 point).
  Validation only: test numbers never move it. Equal to the largest budget = no flattening
  seen within the budgets trained (`flattened` false).
- `kendall_frame` (`budget_kendall.csv`): Kendall's τ-b (`scipy.stats.kendalltau`) between
  the methods' rankings at every pair of budgets, on validation and on test, with the number
  of methods ranked: the single-model methods with results at both budgets (oracles, one model
  per scenario, are references and never ranked).
- `budget_curves`: validation and test mIoU against steps (log2 axis), a line per method.

The main tables show each such configuration at one budget (`main_budgets`): the largest, or
the one `report --leaderboard-steps` names where the configuration has it; the other budgets
appear in this section only (`off_budget`).
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import astuple, dataclass, fields
from typing import Any, Protocol

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from benchmark.report import plots, render
from benchmark.report.frames import (
    COMPLETE,
    SPLIT_NAMES,
    budget_of,
    dataset_of,
    is_clean,
    label_of,
    method_kind,
    train_missing_phrase,
    train_missing_text,
)
from benchmark.report.stats import summarize
from benchmark.report.tables import MISSING_CELL, Cell, TextTable, _bold_best, slug
from benchmark.run.selection import SELECTION_DESCRIPTION
from benchmark.run.store import StoredRun
from benchmark.system.errors import BenchmarkError

log = logging.getLogger(__name__)

SECTION = "Step budgets (convergence)"
SECTION_TEXT = (
    "Methods trained at several step budgets (`run --steps`; each budget is its own run with "
    "its own learning-rate schedule): validation and test mIoU against steps, the budget at "
    "which each validation curve flattens, and Kendall's τ-b between the methods' rankings at "
    "every pair of budgets. The other tables show each method at one budget (see Notes)."
)
DEFAULT_DELTA = 1.0
"""Flattening tolerance in mIoU points (percent): a budget within it of the largest is flat."""
SPLITS = ("val", "test")
MEASURES = {
    "scenario_mean": "mean mIoU over every evaluated scenario",
    "all_present": "mIoU with every modality present",
}


@dataclass(frozen=True, order=True)
class Cohort:
    """What the methods compared at one budget share besides the steps."""

    dataset: str
    imbalance: float
    train_missing: str
    """As the leaderboard spells it: `dsm=0.3`, or `none` for complete data."""
    budget: str
    """`steps`, or `flops` (steps scaled per method to equal FLOPs)."""
    preset: str

    def text(self, dataset: bool = True) -> str:
        """A short reading, e.g. `synthetic · imbalance ×1 · complete data · quick`."""
        parts = [self.dataset] if dataset else []
        parts.append(f"imbalance ×{self.imbalance:g}")
        if self.train_missing != COMPLETE:
            parts.append(f"train {train_missing_phrase(self.train_missing)}")
        if self.budget != "steps":
            parts.append("equal FLOPs")
        parts.append(f"preset {self.preset}")
        return " · ".join(parts)


COHORT_COLUMNS = [f.name for f in fields(Cohort)]
Config = tuple[Cohort, str]
"""(cohort, method label): one method configuration, up to its step budget."""


def cohort_of(spec: Mapping[str, Any]) -> Cohort:
    """The cohort of a run spec (after `generate.distinguish`, which names dataset variants)."""
    budget, _steps, preset = budget_of(spec)
    return Cohort(
        dataset_of(spec),
        float(spec.get("imbalance", 1.0)),
        train_missing_text(spec.get("train_missing")),
        budget,
        preset,
    )


def config_of(spec: Mapping[str, Any]) -> Config:
    """(cohort, label) of a run spec: its label as requested, never qualified by a budget."""
    return cohort_of(spec), spec.get("label") or spec["method"]


def steps_of(spec: Mapping[str, Any]) -> int:
    """The step budget a run was given (under `--budget flops`, the baseline's steps)."""
    return budget_of(spec)[1]


def raw_config_of(spec: Mapping[str, Any]) -> tuple:
    """`config_of` before `generate.distinguish` has named the dataset variants: the dataset
    with its options."""
    cohort, label = config_of(spec)
    options = tuple(tuple(pair) for pair in spec.get("dataset_options", ()))
    return (spec["dataset"], options, *astuple(cohort)[1:], label)


def budget_families(
    specs: Iterable[Mapping[str, Any]], key: Callable[[Mapping[str, Any]], Any] = config_of
) -> dict[Any, list[int]]:
    """Configuration (`key` of a spec) -> its budgets, ascending, for those trained at more
    than one budget."""
    found: dict[Any, set[int]] = {}
    for spec in specs:
        found.setdefault(key(spec), set()).add(steps_of(spec))
    return {config: sorted(steps) for config, steps in found.items() if len(steps) > 1}


def main_budgets(
    specs: Iterable[Mapping[str, Any]],
    steps: int | None = None,
    key: Callable[[Mapping[str, Any]], Any] = config_of,
) -> dict[Any, int]:
    """Configuration -> the budget the main tables show, for those trained at several budgets:
    `steps` where the configuration has it, else its largest."""
    return {
        config: steps if steps in budgets else budgets[-1]
        for config, budgets in budget_families(specs, key).items()
    }


def check_options(steps: int | None = None, delta: float = DEFAULT_DELTA) -> None:
    """Refuse a non-positive `--leaderboard-steps` or a negative or non-finite `--flat-delta`
    in one line, before anything is written."""
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise BenchmarkError(
            f"report: --leaderboard-steps {steps} is not a step count (expected an integer ≥ 1)"
        )
    if not math.isfinite(delta) or delta < 0:
        raise BenchmarkError(
            f"report: --flat-delta {delta} is not a tolerance (expected mIoU points ≥ 0)"
        )


def off_budget(runs: Sequence[StoredRun], steps: int | None = None) -> set[str]:
    """Ids of the runs the main tables leave out: a configuration trained at several budgets
    enters them at one (`main_budgets`); every budget enters the budget section.

    Budgets come from every run's spec (finished or not), so the chosen budget is the grid's:
    a still-running largest budget shows as missing rather than the next one taking its place.
    Works on specs before `generate.distinguish` (which then names only the shown runs apart).
    """
    check_options(steps)
    specs = [r.spec for r in runs if r.spec is not None]
    chosen = main_budgets(specs, steps, raw_config_of)
    return {
        r.run_id
        for r in runs
        if r.spec is not None
        and raw_config_of(r.spec) in chosen
        and steps_of(r.spec) != chosen[raw_config_of(r.spec)]
    }


def unused_options(steps: int | None = None, delta: float | None = None) -> list[str]:
    """report.md notes (and log warnings) for budget options given to a report without a
    budget section: with no configuration trained at several budgets, `--leaderboard-steps`
    and `--flat-delta` change nothing, and the reader is told so rather than left to think
    they did."""
    given = [f"--leaderboard-steps {steps}"] if steps is not None else []
    given += [f"--flat-delta {delta:g}"] if delta is not None else []
    if not given:
        return []
    note = (
        f"`{'` and `'.join(given)}` changed nothing: no configuration was trained at several "
        "step budgets (`run --steps`), so there is no budget to choose and no budget section."
    )
    log.warning(note.replace("`", ""))
    return [note]


def budget_notes(runs: Sequence[StoredRun], steps: int | None = None) -> list[str]:
    """report.md notes: which budget the main tables show for the configurations trained at
    several, and where a requested `--leaderboard-steps` was not trained."""
    specs = [r.spec for r in runs if r.spec is not None]
    families = budget_families(specs)
    if not families:
        return []
    chosen = main_budgets(specs, steps)
    rule = (
        f"the budget `--leaderboard-steps` names ({steps})"
        if steps is not None
        else "their largest budget (`report --leaderboard-steps N` picks another)"
    )
    shown = ", ".join(str(s) for s in sorted(set(chosen.values())))
    notes = [
        f"Methods trained at several step budgets enter the main tables at {rule}: {shown} "
        f"steps, their labels unqualified; every budget is in the '{SECTION}' section."
    ]
    if steps is not None:
        lacking = sorted(
            f"{label} ({cohort.dataset})"
            for (cohort, label), budgets in families.items()
            if steps not in budgets
        )
        if lacking:
            notes.append(
                f"Not trained at {steps} steps, shown at their largest budget instead: "
                + ", ".join(lacking)
            )
    return notes


def selected_records(run: StoredRun, selection: str) -> dict[str, list[dict]]:
    """Split -> the clean records of the checkpoint `selection` chose: its test records, and
    its validation records (the selected ones, else the intermediate validation at that step:
    the same weights on the same tiles)."""
    test = [
        r
        for r in run.records
        if r["split"] == "test" and r["selection"] == selection and is_clean(r)
    ]
    if not test:
        return {}
    step = test[0]["checkpoint_step"]
    val = [
        r
        for r in run.records
        if r["split"] == "val" and r["selection"] == selection and is_clean(r)
    ]
    if not val:
        val = [
            r
            for r in run.records
            if r["split"] == "val"
            and not r["selection"]
            and r["checkpoint_step"] == step
            and is_clean(r)
        ]
    return {"val": val, "test": test}


def seed_frame(runs: Sequence[StoredRun], selection: str) -> pd.DataFrame:
    """One row per configuration x steps x seed x split x measure: the run's mIoU (an oracle's
    scenarios come from its per-scenario runs of the same seed).

    The scenario mean of a split that lacks some of the other split's scenarios is NaN (runs
    made before every scenario was validated have all-present validations only): a mean over
    other scenarios would not be the same measure.
    """
    rows = []
    for run in runs:
        if run.spec is None or run.state != "done":
            continue
        cohort, method = config_of(run.spec)
        for split, records in selected_records(run, selection).items():
            for rec in records:
                rows.append(
                    {
                        **dict(zip(COHORT_COLUMNS, astuple(cohort), strict=True)),
                        "method": method,
                        "steps": steps_of(run.spec),
                        "seed": int(rec["seed"]),
                        "split": split,
                        "scenario": rec["scenario"],
                        "missing": rec["missing"],
                        "kind": rec.get("kind") or method_kind(rec["method_name"]),
                        "miou": float(rec["miou"]),
                    }
                )
    keys = [*COHORT_COLUMNS, "method", "steps", "seed", "split"]
    columns = [*keys, "kind", "measure", "miou", "n_scenarios"]
    if not rows:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(rows)
    frame = frame.groupby([*keys, "scenario", "missing"], as_index=False).agg(
        miou=("miou", "mean"), kind=("kind", "first")
    )
    out = []
    both = frame.groupby(keys[:-1])["scenario"].agg(lambda names: frozenset(names))
    for key, part in frame.groupby(keys, sort=False):
        base = dict(zip(keys, key, strict=True))
        kind = "oracle" if (part["kind"] == "oracle").any() else str(part["kind"].iloc[0])
        full = part.loc[part["missing"] == "none", "miou"]
        n = len(part)
        whole = set(part["scenario"]) == both[key[:-1]]
        mean = part["miou"].mean() if whole else math.nan
        out.append(base | {"kind": kind, "measure": "scenario_mean", "miou": mean,
                           "n_scenarios": n})  # fmt: skip
        out.append(base | {"kind": kind, "measure": "all_present",
                           "miou": float(full.iloc[0]) if len(full) else math.nan,
                           "n_scenarios": 1})  # fmt: skip
    return pd.DataFrame(out, columns=columns)


def curve_frame(
    seeds: pd.DataFrame, expected: Mapping[tuple[Config, int], int] | None = None
) -> pd.DataFrame:
    """budget_curve.csv: mean / std / n over seeds per configuration x steps x split x
    measure, with the seeds averaged (`0|1|2`) and `n_expected`, the seeds the grid asks for
    (`expected`: (configuration, steps) -> seeds; else the seeds found). A budget of the grid
    without a finished run gets a row with NaN mean and n 0: missing, never dropped."""
    keys = [*COHORT_COLUMNS, "method", "steps", "split", "measure"]
    rows = []
    found = set()
    for key, part in seeds.groupby(keys, sort=True):
        summary = summarize(part["miou"].tolist())
        finite = part[np.isfinite(part["miou"].astype(float))]
        config = (Cohort(*key[: len(COHORT_COLUMNS)]), key[len(COHORT_COLUMNS)])
        steps = int(key[len(COHORT_COLUMNS) + 1])
        found.add((config, steps))
        rows.append(
            dict(zip(keys, key, strict=True))
            | {
                "kind": part["kind"].iloc[0],
                "miou_mean": summary.mean,
                "miou_std": summary.std,
                "n_seeds": summary.n,
                "n_expected": (expected or {}).get((config, steps), summary.n),
                "seeds": "|".join(str(s) for s in sorted(finite["seed"].unique())),
                "n_scenarios": int(part["n_scenarios"].max()),
            }
        )
    for (config, steps), n in (expected or {}).items():
        if (config, steps) in found:
            continue
        cohort, method = config
        for split, measure in itertools.product(SPLITS, MEASURES):
            rows.append(
                dict(zip(COHORT_COLUMNS, astuple(cohort), strict=True))
                | {"method": method, "steps": steps, "split": split, "measure": measure,
                   "kind": "", "miou_mean": math.nan, "miou_std": math.nan, "n_seeds": 0,
                   "n_expected": n, "seeds": "", "n_scenarios": 0}
            )  # fmt: skip
    columns = [*keys, "kind", "miou_mean", "miou_std", "n_seeds", "n_expected", "seeds",
               "n_scenarios"]  # fmt: skip
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


def flattening_budget(curve: Mapping[int, float], delta: float) -> int | None:
    """The smallest budget from which every larger budget's score lies within `delta` points
    of the largest budget's (scores in [0, 1], `delta` in points); None without a score.

    Every larger budget must stay within, not only the first: a curve that dips and recovers
    is flat only after its dip.
    """
    points = sorted((s, v) for s, v in curve.items() if math.isfinite(v))
    if not points:
        return None
    last = points[-1][1]
    flat = points[-1][0]
    for steps, value in reversed(points):
        if abs(100 * (value - last)) > delta:
            break
        flat = steps
    return flat


def flattening_frame(curves: pd.DataFrame, delta: float = DEFAULT_DELTA) -> pd.DataFrame:
    """budget_flattening.csv: per configuration and measure the flattening budget of the mean
    validation mIoU, with validation and test at it and at the largest budget. Test values are
    reported, never used to choose."""
    check_options(delta=delta)
    keys = [*COHORT_COLUMNS, "method", "measure"]
    rows = []
    for key, part in curves.groupby(keys, sort=True):
        mean = {
            split: dict(zip(rows_.steps, rows_.miou_mean, strict=True))
            for split, rows_ in part.groupby("split")
        }
        val, test = mean.get("val", {}), mean.get("test", {})
        flat = flattening_budget(val, delta)
        finite = sorted(s for s, v in val.items() if math.isfinite(v))
        largest = finite[-1] if finite else None
        nan = math.nan
        rows.append(
            dict(zip(keys, key, strict=True))
            | {
                "kind": part["kind"].iloc[0],
                "budgets": "|".join(str(s) for s in sorted(set(part["steps"]))),
                "delta_points": delta,
                "flat_steps": flat if flat is not None else -1,
                "largest_steps": largest if largest is not None else -1,
                "flattened": flat is not None and flat < largest,
                "val_at_flat": val.get(flat, nan),
                "val_at_largest": val.get(largest, nan),
                "test_at_flat": test.get(flat, nan),
                "test_at_largest": test.get(largest, nan),
            }
        )
    columns = [*keys, "kind", "budgets", "delta_points", "flat_steps", "largest_steps",
               "flattened", "val_at_flat", "val_at_largest", "test_at_flat",
               "test_at_largest"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def _points(delta: float) -> str:
    return f"{delta:g} mIoU point" + ("" if delta == 1 else "s")


def kendall_tau(first: Sequence[float], second: Sequence[float]) -> tuple[float, float]:
    """Kendall's τ-b and its two-sided p between two score lists (ties count half; NaN when
    fewer than two methods or a list is constant)."""
    from scipy.stats import kendalltau

    if len(first) < 2:
        return math.nan, math.nan
    result = kendalltau(first, second, variant="b")
    return float(result.statistic), float(result.pvalue)


def kendall_frame(curves: pd.DataFrame) -> pd.DataFrame:
    """budget_kendall.csv: τ-b between the methods' mean mIoU at every pair of budgets of a
    cohort, per split and measure; the single-model methods with results at both budgets."""
    rows = []
    ranked = curves[curves["kind"] != "oracle"]
    for key, part in ranked.groupby([*COHORT_COLUMNS, "measure", "split"], sort=True):
        table = part.pivot_table(index="method", columns="steps", values="miou_mean")
        for low, high in itertools.combinations(sorted(table.columns), 2):
            both = table[[low, high]].dropna()
            tau, p_value = kendall_tau(both[low].tolist(), both[high].tolist())
            rows.append(
                dict(zip([*COHORT_COLUMNS, "measure", "split"], key, strict=True))
                | {
                    "steps_a": int(low),
                    "steps_b": int(high),
                    "tau_b": tau,
                    "p_value": p_value,
                    "n_methods": len(both),
                    "methods": "|".join(both.index),
                }
            )
    columns = [*COHORT_COLUMNS, "measure", "split", "steps_a", "steps_b", "tau_b", "p_value",
               "n_methods", "methods"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


@dataclass
class BudgetFrames:
    """What the section's CSVs, tables and figures are drawn from."""

    curves: pd.DataFrame
    flattening: pd.DataFrame
    kendall: pd.DataFrame


def budget_frames(
    runs: Sequence[StoredRun],
    selection: str,
    delta: float = DEFAULT_DELTA,
    grid: Iterable[Mapping[str, Any]] | None = None,
) -> BudgetFrames | None:
    """The section's frames from the finished runs of a results directory (at every budget),
    for the configurations the `grid` (every run's spec, finished or not; default: the runs')
    has at more than one budget; None when there is none."""
    grid = [r.spec for r in runs if r.spec is not None] if grid is None else list(grid)
    families = budget_families(grid)
    if not families:
        return None
    seeds: dict[tuple[Config, int], set] = {}
    for spec in grid:
        if config_of(spec) in families:
            seeds.setdefault((config_of(spec), steps_of(spec)), set()).add(spec.get("seed"))
    mine = [r for r in runs if r.spec is not None and config_of(r.spec) in families]
    expected = {key: len(found) for key, found in seeds.items()}
    curves = curve_frame(seed_frame(mine, selection), expected)
    return BudgetFrames(curves, flattening_frame(curves, delta), kendall_frame(curves))


def curve_table(
    built: BudgetFrames, dataset: str, measure: str, order: Sequence[str], delta: float
) -> TextTable:
    """Rows cohort x method, columns val and test mIoU per budget, then the flattening
    budget; best per column and cohort in bold (oracles never)."""
    part = built.curves[(built.curves["dataset"] == dataset) & (built.curves["measure"] == measure)]
    flats = built.flattening[
        (built.flattening["dataset"] == dataset) & (built.flattening["measure"] == measure)
    ]
    budgets = sorted(set(part["steps"]))
    cohorts = sorted({Cohort(*k) for k in part[COHORT_COLUMNS].itertuples(index=False)})
    several = len(cohorts) > 1
    table = TextTable(
        title=f"{dataset}: {MEASURES[measure]} (%) against the step budget",
        caption="",
        stub=(["setting"] if several else []) + ["method"],
        columns=[f"{s} {b}" for b in budgets for s in SPLITS] + ["flat at"],
        label=f"tab:{slug(dataset)}-budget-{slug(measure)}",
        wide=len(budgets) > 2,
    )
    for cohort in cohorts:
        mine = part[_in_cohort(part, cohort)]
        flat_rows = flats[_in_cohort(flats, cohort)]
        table.group_starts.append(len(table.rows))
        for method in _ordered(set(mine["method"]), order):
            rows = mine[mine["method"] == method]
            cells = []
            for steps in budgets:
                for split in SPLITS:
                    row = rows[(rows["steps"] == steps) & (rows["split"] == split)]
                    if row.empty:
                        cells.append(Cell(text="n/t"))
                        continue
                    first = row.iloc[0]
                    cells.append(
                        Cell(
                            float(first["miou_mean"]),
                            float(first["miou_std"]),
                            int(first["n_seeds"]),
                            int(first["n_expected"]),
                        )
                    )
            flat = flat_rows[flat_rows["method"] == method]
            cells.append(Cell(text=_flat_text(flat.iloc[0]) if len(flat) else MISSING_CELL))
            oracle = (rows["kind"] == "oracle").any()
            if oracle:
                table.unranked.add(len(table.rows))
            name = f"{method} (oracle)" if oracle else method
            table.rows.append(([cohort.text(dataset=False)] * several + [name], cells))
    _bold_best(table, ["max"] * (2 * len(budgets)) + [None])
    table.caption = (
        f"Mean ± std over seeds of {MEASURES[measure]}, at the checkpoint the selection rule "
        "chose on validation, for each step budget (a run of its own per budget, with its own "
        "schedule); val = validation split, test = test split. 'flat at' = the smallest "
        f"budget from which every larger budget's validation mIoU lies within {_points(delta)} "
        "of the largest budget's (validation only; '(not flat)' = only the largest budget "
        "is within). Best per column in bold; oracles never. – = run missing or unfinished "
        "(for the scenario mean also: validated on fewer scenarios than tested, as runs "
        "recorded before every scenario was validated are); † = "
        "fewer seeds than the grid; n/t = not trained at this budget."
    )
    table.markdown_note = ""
    return table


def _flat_text(row: pd.Series) -> str:
    if int(row["flat_steps"]) < 0:
        return MISSING_CELL
    return f"{int(row['flat_steps'])}" + ("" if bool(row["flattened"]) else " (not flat)")


def kendall_table(built: BudgetFrames, dataset: str) -> TextTable:
    """Rows cohort x budget pair, columns τ-b on validation and test per measure, and the
    number of methods ranked."""
    part = built.kendall[built.kendall["dataset"] == dataset]
    cohorts = sorted({Cohort(*k) for k in part[COHORT_COLUMNS].itertuples(index=False)})
    several = len(cohorts) > 1
    columns = [(m, s) for m in MEASURES for s in SPLITS]
    short = {"scenario_mean": "scenario mean", "all_present": "all present"}
    table = TextTable(
        title=f"{dataset}: Kendall's τ-b between the rankings at two step budgets",
        caption="",
        stub=(["setting"] if several else []) + ["budgets"],
        columns=[f"{s} ({short[m]})" for m, s in columns] + ["methods"],
        label=f"tab:{slug(dataset)}-budget-kendall",
        wide=True,
    )
    for cohort in cohorts:
        mine = part[_in_cohort(part, cohort)]
        table.group_starts.append(len(table.rows))
        pairs = sorted(set(zip(mine["steps_a"], mine["steps_b"], strict=True)))
        for low, high in pairs:
            here = mine[(mine["steps_a"] == low) & (mine["steps_b"] == high)]
            cells = []
            for measure, split in columns:
                row = here[(here["measure"] == measure) & (here["split"] == split)]
                tau = float(row["tau_b"].iloc[0]) if len(row) else math.nan
                cells.append(Cell(text=f"{tau:+.2f}" if math.isfinite(tau) else MISSING_CELL))
            counts = sorted(set(here["n_methods"]))
            cells.append(Cell(text="/".join(str(n) for n in counts)))
            stub = [cohort.text(dataset=False)] * several + [f"{low} vs {high}"]
            table.rows.append((stub, cells))
    table.caption = (
        "Kendall's τ-b (scipy.stats.kendalltau; ties count half) between the single-model "
        "methods' mean mIoU at the two budgets, on the validation and on the test split, for "
        "the scenario mean and the all-present scenario: +1 = the same order, −1 = reversed, "
        "– = fewer than two methods or a constant ranking. 'methods' = how many were ranked "
        "(present at both budgets; oracles are references and never ranked)."
    )
    table.markdown_note = ""
    return table


def _in_cohort(frame: pd.DataFrame, cohort: Cohort) -> pd.Series:
    mask = pd.Series(True, index=frame.index)
    for name, value in zip(COHORT_COLUMNS, astuple(cohort), strict=True):
        mask &= frame[name] == value
    return mask


def _ordered(methods: Iterable[str], order: Sequence[str]) -> list[str]:
    rank = {m: i for i, m in enumerate(order)}
    return sorted(methods, key=lambda m: (rank.get(m, len(rank)), m))


def budget_curves(
    built: BudgetFrames, cohort: Cohort, order: Sequence[str], delta: float
) -> Figure:
    """Validation and test mIoU against steps (log2), one column per split, one row per
    measure, a line per method (mean ± std over seeds); a ring marks each method's flattening
    budget on its validation curve."""
    part = built.curves[_in_cohort(built.curves, cohort)]
    flats = built.flattening[_in_cohort(built.flattening, cohort)]
    methods = _ordered(set(part["method"]), order)
    oracle_methods = set(part.loc[part["kind"] == "oracle", "method"])
    colours = plots.method_colours(methods)
    budgets = sorted(set(part["steps"]))
    title = plots.wrapped_title(
        plots.DOUBLE,
        [
            f"{cohort.text()}: mIoU against the step budget",
            f"mean ± std over seeds; ring = flattening budget (validation within "
            f"{_points(delta)} of the largest budget's)",
        ],
    )
    handles = plots.method_handles(methods, colours, oracle_methods)
    ncol = plots.legend_columns(plots.DOUBLE, [h.get_label() for h in handles])
    fig = plots.new_figure(
        plots.DOUBLE, plots.framed_height(len(MEASURES), 1.7, title, math.ceil(len(handles) / ncol))
    )
    axes = fig.subplots(len(MEASURES), len(SPLITS), squeeze=False, sharex=True)
    for row, measure in enumerate(MEASURES):
        for col, split in enumerate(SPLITS):
            ax = axes[row][col]
            here = part[(part["measure"] == measure) & (part["split"] == split)]
            gaps: dict[str, list[float]] = {}
            for method in methods:
                mine = here[here["method"] == method].sort_values("steps")
                missing = mine.loc[mine["miou_mean"].isna(), "steps"]
                if len(missing):  # a budget of its grid without a result: say so
                    gaps[method] = [float(b) for b in missing]
                if mine.empty:
                    continue
                plots.band_line(
                    ax,
                    mine["steps"].tolist(),
                    mine["miou_mean"].tolist(),
                    mine["miou_std"].tolist(),
                    colours[method],
                    method in oracle_methods,
                )
                flat = flats[(flats["method"] == method) & (flats["measure"] == measure)]
                if split == "val" and len(flat) and int(flat["flat_steps"].iloc[0]) > 0:
                    at = mine[mine["steps"] == int(flat["flat_steps"].iloc[0])]
                    ax.plot(
                        at["steps"],
                        100 * at["miou_mean"],
                        marker="o",
                        markersize=7,
                        markerfacecolor="none",
                        markeredgecolor=colours[method],
                        markeredgewidth=0.9,
                        linestyle="none",
                    )
            plots.gap_note(ax, gaps, budgets, "steps")
            ax.set_xscale("log", base=2)
            ax.set_xticks(budgets)
            ax.set_xticklabels([str(b) for b in budgets])
            ax.minorticks_off()
            ax.grid(linewidth=0.3, alpha=0.6)
            ax.set_title(f"{SPLIT_NAMES[split]}: {MEASURES[measure]}")
            if row == len(MEASURES) - 1:
                ax.set_xlabel("training steps (log2)")
            if col == 0:
                ax.set_ylabel("mIoU (%)")
    fig.legend(handles=handles, loc="outside lower center", ncol=ncol, frameon=False)
    fig.suptitle(title, fontsize=8)
    return fig


class Writer(Protocol):
    """What the section needs of `generate.ReportWriter`."""

    def csv(self, frame: pd.DataFrame, name: str, what: str, section: str = "") -> None: ...

    def text(self, relative: str, text: str, what: str, section: str = "") -> None: ...

    def figure(self, fig: Figure, stem: str, what: str, section: str = "") -> None: ...


def write_section(
    writer: Writer,
    runs: Sequence[StoredRun],
    selection: str,
    order: Sequence[str] = (),
    delta: float = DEFAULT_DELTA,
    grid: Iterable[Mapping[str, Any]] | None = None,
) -> bool:
    """The budget section: three CSVs, and per dataset a Markdown and a LaTeX document and a
    figure per cohort; nothing (False) when no configuration was trained at several budgets.
    `runs` are the finished runs at every budget, their records of `selection`; `order` the
    method labels in report order; `grid` every run's spec (`budget_frames`)."""
    built = budget_frames(runs, selection, delta, grid)
    if built is None:
        return False
    writer.csv(
        built.curves,
        "budget_curve.csv",
        "mean, std and n over seeds (and which seeds) of validation and test mIoU per dataset "
        "× imbalance × training condition × method × step budget × split × measure "
        "(scenario_mean = mean over every evaluated scenario, all_present = every modality)",
        SECTION,
    )
    writer.csv(
        built.flattening,
        "budget_flattening.csv",
        f"per method and measure the flattening budget: the smallest budget from which every "
        f"larger budget's mean validation mIoU is within δ = {_points(delta)} of the largest "
        "budget's (validation only), with validation and test mIoU there and at the largest",
        SECTION,
    )
    writer.csv(
        built.kendall,
        "budget_kendall.csv",
        "Kendall's τ-b (and p) between the single-model methods' rankings at every pair of "
        "budgets, per split and measure, with the number of methods ranked",
        SECTION,
    )
    rule = f"{selection} ({SELECTION_DESCRIPTION.get(selection, 'see the records')})"
    for dataset in dict.fromkeys(built.curves["dataset"]):
        made = [curve_table(built, dataset, m, order, delta) for m in MEASURES]
        made.append(kendall_table(built, dataset))
        stem = slug(dataset, keep="-_")
        markdown = [f"# {dataset}: step budgets\n", f"Model selection: {rule}.\n"]
        latex = [
            f"% {dataset}: step budgets; generated by `python run_benchmark.py report`; "
            "needs \\usepackage{booktabs}",
            f"% Model selection: {rule}.",
        ]
        writer.text(
            f"tables/{stem}_budget.md",
            "\n".join(markdown + [render.to_markdown(t) for t in made]),
            f"{dataset}: Markdown tables — validation and test mIoU per step budget with each "
            "method's flattening budget (scenario mean, all present), then Kendall's τ-b "
            "between the rankings at every pair of budgets",
            SECTION,
        )
        writer.text(
            f"tables/{stem}_budget.tex",
            "\n".join(latex + [render.to_latex(t) for t in made]),
            f"{dataset}: the same tables, booktabs LaTeX",
            SECTION,
        )
        part = built.curves[built.curves["dataset"] == dataset]
        cohorts = sorted({Cohort(*k) for k in part[COHORT_COLUMNS].itertuples(index=False)})
        for cohort in cohorts:
            suffix = cohort_suffix(cohort, cohorts)
            writer.figure(
                budget_curves(built, cohort, order, delta),
                f"{stem}_budget{suffix}",
                f"{cohort.text()}: validation and test mIoU against the step budget (log2), "
                "a line per method, ring = flattening budget",
                SECTION,
            )
    return True


def cohort_suffix(cohort: Cohort, cohorts: Sequence[Cohort]) -> str:
    """A figure name's tail naming what sets `cohort` apart from the dataset's others, e.g.
    `_x10` or `_x10_dsm-0.3` ("" when it is alone), so figure names say what they show."""
    parts = []
    for name, value in zip(COHORT_COLUMNS[1:], astuple(cohort)[1:], strict=True):
        if len({getattr(c, name) for c in cohorts}) > 1:
            text = f"x{value:g}" if name == "imbalance" else str(value)
            parts.append(slug(text, keep="."))
    return "".join(f"_{part}" for part in parts)


def family_order(runs: Sequence[StoredRun], methods: Sequence[str]) -> list[str]:
    """The configurations' labels in report order: where their main-table label (qualified by
    its budget, `generate.distinguish`) stands in `methods`."""
    rank = {m: i for i, m in enumerate(methods)}
    best: dict[str, int] = {}
    for run in runs:
        if run.spec is None:
            continue
        label = config_of(run.spec)[1]
        best[label] = min(best.get(label, len(rank)), rank.get(label_of(run.spec), len(rank)))
    return sorted(best, key=lambda m: (best[m], m))
