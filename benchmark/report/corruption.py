"""Corrupted test data: how each method's test mIoU falls as a corruption of its inputs grows.

A run's corrupted evaluations are extra test records of the same selected checkpoint, one per
scenario x corruption x severity (1-5), for the scenarios where the corruption touches a
present modality; the clean record of that scenario is severity 0. From the long leaderboard
(`frames.leaderboard`, clean and corrupted rows) this module builds:

- `severity_frame`: mean / std / n / 95 % t-CI over seeds of mIoU per dataset x imbalance x
  method x scenario x corruption x severity, severity 0 (clean) repeated under every corruption
  so each corruption's curve stands alone (`corruption.csv`);
- `error_frame`: the corruption error normalised by a reference method, as ImageNet-C's mCE
  (Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common Corruptions and
  Perturbations", ICLR 2019): per seed, CE_c = sum_s (100 - mIoU_{c,s}) / E_ref,c x 100 and
  relative CE_c = sum_s (mIoU_clean - mIoU_{c,s}) / D_ref,c x 100, where E_ref,c and D_ref,c are
  the reference's same sums, averaged over its seeds (the fixed denominator ImageNet-C takes from
  AlexNet); mCE and relative mCE are the means over the scenario's corruptions
  (`corruption_error.csv`). The reference's mCE is 100 by construction; below 100 = more robust.
  Without the reference the errors are left unnormalised (mean over severities of 100 - mIoU,
  and of the drop from clean) and say so;
- `fill_frame`: for a corruption evaluated with both fills of its invalid pixels
  (`--invalid-fill own,mean`), each method's mIoU drop from clean per severity under its own
  handling and under the mean fill, side by side (`corruption_fill.csv`; the paired test of
  one against the other is `findings`' `invalid_fill` section).

Nothing is averaged over what is missing: a seed that lacks a severity of a corruption has no
CE for it, and no mCE; a cell without seeds is "–", one with fewer seeds than the grid "†".
Only the reference's seeds that have every severity enter its denominator; how many did is in
the CSV (`reference_seeds`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from benchmark.core.records import CLEAN
from benchmark.report import plots
from benchmark.report.frames import (
    MEAN_FILL_SUFFIX,
    SCORE_METRICS,
    fill_variant_of,
    scenario_order,
)
from benchmark.report.stats import summarize
from benchmark.report.tables import (
    MISSING_CELL,
    ORACLE_NOTE,
    Cell,
    TextTable,
    _bold_best,
    method_stub,
    oracles,
    slug,
    summary_cell,
)

log = logging.getLogger(__name__)

METRIC = "miou"
MEAN = "mean"
"""`corruption` of `error_frame`'s rows holding the mean over corruptions (mCE)."""

Expected = Mapping[tuple[str, float, str], int]


def corrupted(board: pd.DataFrame) -> pd.DataFrame:
    """The board's rows on corrupted test data."""
    if board.empty or "corruption" not in board:
        return board.iloc[0:0]
    return board[board["corruption"] != CLEAN]


def has_corruptions(board: pd.DataFrame, dataset: str | None = None) -> bool:
    """Whether the board (or one dataset of it) holds corrupted evaluations."""
    rows = corrupted(board)
    if dataset is not None and len(rows):
        rows = rows[rows["dataset"] == dataset]
    return bool(len(rows))


@dataclass(frozen=True)
class Grid:
    """What one dataset's corrupted evaluations cover, read from every method's rows together
    (so a severity one method lacks is a gap, not a smaller grid)."""

    corruptions: list[str]
    """In the order the records list them."""
    severities: dict[str, list[int]]
    """Corruption -> its severities (>0) evaluated for any method and scenario."""
    applicable: dict[str, list[str]]
    """Scenario -> the corruptions evaluated on it (the others touch none of its modalities)."""
    scenarios: list[str]
    missing_of: dict[str, str]
    factors: list[float]

    def all_severities(self) -> list[int]:
        return sorted({s for sev in self.severities.values() for s in sev})


def grid_of(part: pd.DataFrame, expected: Expected, dataset: str) -> Grid:
    """The corruption grid of one dataset's board rows."""
    bad = corrupted(part)
    corruptions = list(dict.fromkeys(bad["corruption"]))
    severities = {
        c: sorted({int(s) for s in bad.loc[bad["corruption"] == c, "severity"]})
        for c in corruptions
    }
    scenarios = scenario_order(part)
    applicable = {
        s: [c for c in corruptions if ((bad["scenario"] == s) & (bad["corruption"] == c)).any()]
        for s in scenarios
    }
    missing_of = dict(zip(part["scenario"], part["missing"], strict=False))
    factors = sorted({f for (d, f, _m) in expected if d == dataset} | set(part["imbalance"]))
    return Grid(corruptions, severities, applicable, scenarios, missing_of, factors)


class Scores:
    """Per-seed mIoU of one dataset's finished rows, looked up by condition."""

    def __init__(self, part: pd.DataFrame) -> None:
        ok = part[part["status"] == "ok"] if "status" in part else part
        self.index: dict[tuple, dict[int, float]] = {}
        columns = ["imbalance", "method", "scenario", "corruption", "severity", "seed", METRIC]
        for factor, method, scenario, corruption, severity, seed, value in ok[columns].itertuples(
            index=False
        ):
            key = (factor, method, scenario, corruption, int(severity))
            self.index.setdefault(key, {}).setdefault(int(seed), float(value))

    def seeds(
        self, factor: float, method: str, scenario: str, corruption: str, severity: int
    ) -> dict[int, float]:
        """Seed -> score; severity 0 is the clean record whatever the corruption."""
        if severity == 0:
            corruption = CLEAN
        return self.index.get((factor, method, scenario, corruption, severity), {})

    def all_seeds(self, factor: float, method: str, scenario: str) -> list[int]:
        """Every seed with any record of this method and scenario."""
        found = {
            seed
            for (f, m, s, _c, _v), by_seed in self.index.items()
            if (f, m, s) == (factor, method, scenario)
            for seed in by_seed
        }
        return sorted(found)

    def methods(self) -> set[str]:
        return {m for (_f, m, _s, _c, _v) in self.index}


def _severity_mean(
    scores: Scores, factor: float, method: str, scenario: str, corruption: str, sev: list[int]
) -> list[float]:
    """Per seed, the mean over the severities; NaN for a seed missing any of them."""
    out = []
    for seed in scores.all_seeds(factor, method, scenario):
        values = [scores.seeds(factor, method, scenario, corruption, s).get(seed) for s in sev]
        out.append(
            float(np.mean(values)) if sev and all(v is not None for v in values) else math.nan
        )
    return out


def studied_methods(board: pd.DataFrame, methods: Sequence[str]) -> list[str]:
    """The methods the corruption section lists: those with corrupted evaluations, and those
    with no finished run yet (shown as gaps, n = 0). A method whose runs finished without any
    corrupted evaluation (e.g. a training condition the sweep did not corrupt) was not part of
    the corruption study; listing it would fill every table with empty rows."""
    ok = board[board["status"] == "ok"] if "status" in board else board
    with_corruptions = set(corrupted(ok)["method"])
    finished = set(ok["method"])
    return [m for m in methods if m in with_corruptions or m not in finished]


def corrupted_datasets(
    board: pd.DataFrame, expected: Expected
) -> Iterator[tuple[str, pd.DataFrame, Grid, Scores, set[str]]]:
    """Per dataset with corrupted rows: its name, rows, grid, seed scores and oracle labels."""
    for dataset in dict.fromkeys(board["dataset"]):
        part = board[board["dataset"] == dataset]
        if has_corruptions(part):
            yield dataset, part, grid_of(part, expected, dataset), Scores(part), oracles(part)


def severity_frame(board: pd.DataFrame, methods: Sequence[str], expected: Expected) -> pd.DataFrame:
    """corruption.csv: one row per dataset x imbalance x method x scenario x corruption x
    severity (0 = clean) with mean, std, n and 95 % t-CI over seeds of mIoU; every cell of the
    grid is a row, a missing one with n = 0."""
    rows = []
    for cell in method_cells(board, methods, expected):
        for corruption in cell.grid.applicable[cell.scenario]:
            for severity in [0, *cell.grid.severities[corruption]]:
                values = cell.scores.seeds(
                    cell.factor, cell.method, cell.scenario, corruption, severity
                )
                summary = summarize(list(values.values()))
                rows.append(
                    {
                        **cell.key(corruption, severity),
                        "miou_mean": summary.mean,
                        "miou_std": summary.std,
                        "miou_n": summary.n,
                        "miou_ci_low": summary.ci_low,
                        "miou_ci_high": summary.ci_high,
                        "n_expected": cell.expected,
                    }
                )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class MethodCell:
    """One dataset x imbalance x method x scenario of the corruption grid: what every
    corruption table iterates over, and the key columns its rows start with."""

    dataset: str
    factor: float
    method: str
    scenario: str
    grid: Grid
    scores: Scores
    oracle: bool
    expected: int
    """Seeds the grid asked for (n_expected)."""

    def key(self, corruption: str, severity: int) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "imbalance": self.factor,
            "method": self.method,
            "kind": "oracle" if self.oracle else "single-model",
            "scenario": self.scenario,
            "missing": self.grid.missing_of[self.scenario],
            "corruption": corruption,
            "severity": severity,
        }


def method_cells(
    board: pd.DataFrame, methods: Sequence[str], expected: Expected
) -> Iterator[MethodCell]:
    """Every method (asked for or with records) x scenario of every corrupted dataset."""
    for dataset, _, grid, scores, kinds in corrupted_datasets(board, expected):
        for factor in grid.factors:
            for method in methods:
                if (dataset, factor, method) not in expected and method not in scores.methods():
                    continue
                for scenario in grid.scenarios:
                    yield MethodCell(
                        dataset,
                        factor,
                        method,
                        scenario,
                        grid,
                        scores,
                        method in kinds,
                        expected.get((dataset, factor, method), 0),
                    )


def _sums(
    scores: Scores,
    factor: float,
    method: str,
    scenario: str,
    corruption: str,
    severities: list[int],
) -> dict[int, tuple[float, float]]:
    """Per seed: (sum over severities of 1 - mIoU, sum of clean mIoU - mIoU); NaN for a seed
    without every severity (or, for the second, without its clean score)."""
    clean = scores.seeds(factor, method, scenario, CLEAN, 0)
    out = {}
    for seed in scores.all_seeds(factor, method, scenario):
        values = [
            scores.seeds(factor, method, scenario, corruption, s).get(seed) for s in severities
        ]
        if not severities or any(v is None for v in values):
            out[seed] = (math.nan, math.nan)
            continue
        error = float(sum(1.0 - v for v in values))
        drop = float(sum(clean[seed] - v for v in values)) if seed in clean else math.nan
        out[seed] = (error, drop)
    return out


def error_frame(
    board: pd.DataFrame, methods: Sequence[str], expected: Expected, reference: str
) -> pd.DataFrame:
    """corruption_error.csv: per dataset x imbalance x scenario x method x corruption, CE and
    relative CE (mean, std, n over seeds), plus a row `corruption = mean` with mCE and relative
    mCE; `normalised_by` names the reference, or is empty where it has no corrupted records."""
    rows = []
    for dataset, part, grid, scores, kinds in corrupted_datasets(board, expected):
        normalised = reference in set(corrupted(part)["method"])
        if not normalised:
            log.warning(
                "corruption errors of %s are not normalised: reference %r has no corrupted records",
                dataset,
                reference,
            )
        for factor in grid.factors:
            for scenario in grid.scenarios:
                corruptions = grid.applicable[scenario]
                if not corruptions:
                    continue
                denominators = {}
                for corruption in corruptions:
                    ref = _sums(
                        scores, factor, reference, scenario, corruption,
                        grid.severities[corruption],
                    )  # fmt: skip
                    errors = [e for e, _d in ref.values() if np.isfinite(e)]
                    drops = [d for _e, d in ref.values() if np.isfinite(d)]
                    denominators[corruption] = (
                        float(np.mean(errors)) if errors else math.nan,
                        float(np.mean(drops)) if drops else math.nan,
                        len(errors),
                    )
                for method in methods:
                    if (dataset, factor, method) not in expected and method not in scores.methods():
                        continue
                    per_seed: dict[str, dict[int, tuple[float, float]]] = {}
                    for corruption in corruptions:
                        sev = grid.severities[corruption]
                        sums = _sums(scores, factor, method, scenario, corruption, sev)
                        error_ref, drop_ref, _n = denominators[corruption]
                        per_seed[corruption] = {
                            seed: _normalise(error, drop, error_ref, drop_ref, len(sev), normalised)
                            for seed, (error, drop) in sums.items()
                        }
                    base = {
                        "dataset": dataset,
                        "imbalance": factor,
                        "scenario": scenario,
                        "missing": grid.missing_of[scenario],
                        "method": method,
                        "kind": "oracle" if method in kinds else "single-model",
                        "normalised_by": reference if normalised else "",
                        "n_expected": expected.get((dataset, factor, method), 0),
                    }
                    clean = scores.seeds(factor, method, scenario, CLEAN, 0)
                    for corruption in corruptions:
                        ce = [v[0] for v in per_seed[corruption].values()]
                        rce = [v[1] for v in per_seed[corruption].values()]
                        rows.append(
                            {
                                **base,
                                "corruption": corruption,
                                "severities": ",".join(map(str, grid.severities[corruption])),
                                "reference_seeds": denominators[corruption][2],
                                **_stats("clean", list(clean.values())),
                                **_stats("ce", ce),
                                **_stats("rce", rce),
                            }
                        )
                    seeds = sorted({s for by_seed in per_seed.values() for s in by_seed})
                    primary = {c: per_seed[c] for c in primaries(corruptions)}
                    mce = [_mean_over(primary, seed, 0) for seed in seeds]
                    rmce = [_mean_over(primary, seed, 1) for seed in seeds]
                    rows.append(
                        {
                            **base,
                            "corruption": MEAN,
                            "severities": "",
                            "reference_seeds": min(
                                (denominators[c][2] for c in primary), default=0
                            ),
                            **_stats("clean", list(clean.values())),
                            **_stats("ce", mce),
                            **_stats("rce", rmce),
                        }
                    )
    return pd.DataFrame(rows)


def fill_note(corruptions: Sequence[str]) -> str:
    """A caption's sentence on mean-fill variants, where any of `corruptions` is one."""
    if not any(fill_variant_of(c) for c in corruptions):
        return ""
    return (
        f"'{MEAN_FILL_SUFFIX.strip()}' = the pixels the corruption marks invalid set to the "
        "training mean for every method (`--invalid-fill mean`); without it, each method "
        "handles them with its own missing-modality mechanism (or, for results recorded before "
        "the choice existed, the mean fill); a corruption evaluated both ways enters the mCE "
        "once, with the methods' own handling. "
    )


def primaries(corruptions: Sequence[str]) -> list[str]:
    """The corruptions an mCE averages: each once, a mean-fill variant (`MEAN_FILL_SUFFIX`)
    only where its corruption was not evaluated with the methods' own fill."""
    return [c for c in corruptions if fill_variant_of(c) not in corruptions]


def _normalise(
    error: float, drop: float, error_ref: float, drop_ref: float, n_sev: int, normalised: bool
) -> tuple[float, float]:
    """(CE, relative CE) in %, from one seed's sums over severities.

    Normalised: by the reference's mean sums (undefined where the reference's error is 0, or
    its drop is not positive: a ratio to no degradation says nothing). Unnormalised: the mean
    over severities of 100 - mIoU and of the drop from clean, in points.
    """
    if not normalised:
        return 100 * error / n_sev, 100 * drop / n_sev
    ce = 100 * error / error_ref if error_ref > 0 else math.nan
    rce = 100 * drop / drop_ref if drop_ref > 0 else math.nan
    return ce, rce


def _mean_over(per_seed: Mapping[str, Mapping[int, tuple]], seed: int, which: int) -> float:
    """The mean over every corruption of one seed's (relative) CE; NaN if any is missing."""
    values = [by_seed.get(seed, (math.nan, math.nan))[which] for by_seed in per_seed.values()]
    return float(np.mean(values)) if values and all(np.isfinite(values)) else math.nan


def _stats(prefix: str, values: Sequence[float]) -> dict[str, float]:
    summary = summarize(values)
    return {
        f"{prefix}_mean": summary.mean,
        f"{prefix}_std": summary.std,
        f"{prefix}_n": summary.n,
    }


def _scenario_name(scenario: str, missing: str) -> str:
    return f"{scenario} (full)" if missing == "none" else f"{scenario} (−{missing})"


def severity_table(
    board: pd.DataFrame,
    dataset: str,
    scenario: str,
    methods: Sequence[str],
    expected: Expected,
    conventions: str = "",
) -> TextTable:
    """Rows [imbalance x] corruption x method, columns severity 0 (clean) .. 5 and the mean
    over severities: one scenario's test mIoU under each corruption."""
    part = board[board["dataset"] == dataset]
    grid, scores = grid_of(part, expected, dataset), Scores(part)
    oracle_methods = oracles(part)
    severities = grid.all_severities()
    several = len(grid.factors) > 1
    name = _scenario_name(scenario, grid.missing_of[scenario])
    table = TextTable(
        title=f"{dataset}: test mIoU (%) under corrupted test inputs, present: {name}",
        caption="",
        stub=(["imbalance"] if several else []) + ["corruption", "method"],
        columns=["0 (clean)", *map(str, severities), f"mean {_span(severities)}"],
        label=f"tab:{slug(dataset)}-corruption-{slug(scenario)}",
        wide=len(severities) > 4,
        markdown_note="",  # no CI brackets: seven columns of them do not fit (corruption.csv)
    )
    for factor in grid.factors:
        for corruption in grid.applicable[scenario]:
            table.group_starts.append(len(table.rows))
            own = grid.severities[corruption]
            for method in methods:
                n_expected = expected.get((dataset, factor, method), 0)
                if not n_expected and method not in scores.methods():
                    continue
                cells = []
                for severity in [0, *severities]:
                    if severity and severity not in own:
                        cells.append(Cell(text="n/e"))
                        continue
                    values = scores.seeds(factor, method, scenario, corruption, severity)
                    cells.append(summary_cell(values.values(), n_expected))
                means = _severity_mean(scores, factor, method, scenario, corruption, own)
                cells.append(summary_cell(means, n_expected))
                for cell in cells:
                    cell.ci = None
                if method in oracle_methods:
                    table.unranked.add(len(table.rows))
                stub = [corruption.replace("_", " "), method_stub(method, oracle_methods)]
                table.rows.append(([f"×{factor:g}"] * several + stub, cells))
    _bold_best(table, ["max"] * len(table.columns))
    skipped = [c for c in grid.corruptions if c not in grid.applicable[scenario]]
    table.caption = (
        "Mean ± std over seeds of test mIoU (%) with the corruption applied at each severity to "
        "the test inputs of this scenario (0 = clean data, repeated in every group; the model "
        f"is the run's selected checkpoint). 'mean {_span(severities)}' = per seed the mean "
        "over the severities, then mean ± std over seeds (a seed missing any severity gives "
        f"none). Best per column and corruption in bold. {ORACLE_NOTE * bool(oracle_methods)}"
        f"{MISSING_CELL} = not evaluated or run unfinished; † = fewer seeds than the grid; "
        "n/e = severity not evaluated for this corruption. "
        + fill_note(grid.applicable[scenario])
        + (
            f"Not evaluated here (no modality of the scenario is affected): "
            f"{', '.join(c.replace('_', ' ') for c in skipped)}. "
            if skipped
            else ""
        )
        + conventions
    )
    return table


FILLS = {"own": "", "mean": MEAN_FILL_SUFFIX}
"""`invalid_fill` -> the suffix of its rows' corruption label on the board."""


def fill_pairs(corruptions: Sequence[str]) -> list[str]:
    """The corruptions among `corruptions` evaluated with both fills: each listed with its
    mean-fill variant (`MEAN_FILL_SUFFIX`) too."""
    return [
        c for c in corruptions if fill_variant_of(c) is None and c + MEAN_FILL_SUFFIX in corruptions
    ]


def _drops(
    scores: Scores, factor: float, method: str, scenario: str, label: str, severity: int
) -> dict[int, float]:
    """Per seed with a clean score: clean mIoU - mIoU under corruption `label` at `severity`."""
    clean = scores.seeds(factor, method, scenario, CLEAN, 0)
    values = scores.seeds(factor, method, scenario, label, severity)
    return {seed: clean[seed] - value for seed, value in values.items() if seed in clean}


def _mean_drops(
    scores: Scores, factor: float, method: str, scenario: str, label: str, sev: list[int]
) -> list[float]:
    """Per seed, the mean drop over `sev`; NaN for a seed missing any severity or clean."""
    clean = scores.seeds(factor, method, scenario, CLEAN, 0)
    means = _severity_mean(scores, factor, method, scenario, label, sev)
    seeds = scores.all_seeds(factor, method, scenario)
    return [clean.get(seed, math.nan) - mean for seed, mean in zip(seeds, means, strict=True)]


def fill_frame(board: pd.DataFrame, methods: Sequence[str], expected: Expected) -> pd.DataFrame:
    """corruption_fill.csv: per dataset x imbalance x method x scenario x corruption evaluated
    with both fills x severity x fill (`own`, `mean`), mean / std / n over seeds of the mIoU
    drop from clean (clean - corrupted, a fraction) and of the corrupted mIoU; empty where no
    corruption has both fills."""
    rows = []
    for cell in method_cells(board, methods, expected):
        grid, scores = cell.grid, cell.scores
        for corruption in fill_pairs(grid.applicable[cell.scenario]):
            variant = corruption + MEAN_FILL_SUFFIX
            for severity in sorted({*grid.severities[corruption], *grid.severities[variant]}):
                for fill, suffix in FILLS.items():
                    where = (cell.factor, cell.method, cell.scenario, corruption + suffix, severity)
                    drop = summarize(list(_drops(scores, *where).values()))
                    miou = summarize(list(scores.seeds(*where).values()))
                    rows.append(
                        {
                            **cell.key(corruption, severity),
                            "fill": fill,
                            "miou_mean": miou.mean,
                            "miou_n": miou.n,
                            "drop_mean": drop.mean,
                            "drop_std": drop.std,
                            "drop_n": drop.n,
                            "n_expected": cell.expected,
                        }
                    )
    return pd.DataFrame(rows)


def fill_table(
    board: pd.DataFrame,
    dataset: str,
    methods: Sequence[str],
    expected: Expected,
    conventions: str = "",
) -> TextTable | None:
    """Rows [imbalance x] scenario x corruption x method x fill (own, mean), columns the
    severities and their mean: each method's mIoU drop from clean under its own handling of
    invalid pixels beside the mean fill, for the corruptions evaluated both ways (None if none
    was)."""
    part = board[board["dataset"] == dataset]
    grid, scores = grid_of(part, expected, dataset), Scores(part)
    pairs = {s: fill_pairs(grid.applicable[s]) for s in grid.scenarios}
    both = [c for s in grid.scenarios for c in pairs[s]]
    if not both:
        return None
    oracle_methods = oracles(part)
    severities = sorted(
        {v for c in both for v in (*grid.severities[c], *grid.severities[c + MEAN_FILL_SUFFIX])}
    )
    several = len(grid.factors) > 1
    table = TextTable(
        title=f"{dataset}: test mIoU drop (points) under each method's own fill of invalid "
        "pixels and under the mean fill",
        caption="",
        stub=(["imbalance"] if several else []) + ["scenario", "corruption", "method", "fill"],
        columns=[*map(str, severities), f"mean {_span(severities)}"],
        label=f"tab:{slug(dataset)}-corruption-fill",
        markdown_note="",
    )
    for factor in grid.factors:
        for scenario in grid.scenarios:
            name = _scenario_name(scenario, grid.missing_of[scenario])
            for corruption in pairs[scenario]:
                for method in methods:
                    n_expected = expected.get((dataset, factor, method), 0)
                    if not n_expected and method not in scores.methods():
                        continue
                    table.group_starts.append(len(table.rows))
                    for fill, suffix in FILLS.items():
                        label = corruption + suffix
                        own = grid.severities[label]
                        cells = []
                        for severity in severities:
                            if severity not in own:
                                cells.append(Cell(text="n/e"))
                                continue
                            drops = _drops(scores, factor, method, scenario, label, severity)
                            cells.append(summary_cell(drops.values(), n_expected))
                        mean = _mean_drops(scores, factor, method, scenario, label, own)
                        cells.append(summary_cell(mean, n_expected))
                        for cell in cells:
                            cell.ci = None
                        stub = [
                            name,
                            corruption.replace("_", " "),
                            method_stub(method, oracle_methods),
                            fill if fill == "own" else "mean fill",
                        ]
                        table.rows.append(([f"×{factor:g}"] * several + stub, cells))
    _bold_best(table, ["min"] * len(table.columns))
    table.caption = (
        "Mean ± std over seeds of the test mIoU drop (points: clean mIoU − corrupted mIoU of "
        "the same seed) under corruptions that mark pixels invalid, evaluated on the same "
        "trained runs both ways: 'own' = each method handles the invalid pixels with its own "
        "missing-modality mechanism (`Method.predict_partial`), 'mean fill' = they are set to "
        "the training mean for every method (`--invalid-fill mean`). Where a method's own "
        "fill is the mean fill the two rows are equal. The smaller drop of each method's pair "
        f"in bold. 'mean {_span(severities)}' = per seed the mean over the severities (a seed "
        "missing any gives none). The paired test of own against mean fill is the "
        f"`invalid_fill` section of findings.md. {MISSING_CELL} = not evaluated or run "
        "unfinished; † = fewer seeds than the grid; n/e = severity not evaluated. " + conventions
    )
    return table


def _span(severities: Sequence[int]) -> str:
    if not severities:
        return "–"
    return f"{min(severities)}–{max(severities)}" if len(severities) > 1 else str(severities[0])


def error_table(
    errors: pd.DataFrame,
    dataset: str,
    methods: Sequence[str],
    expected: Expected,
    reference: str,
    oracle_methods: set[str],
    conventions: str = "",
) -> TextTable:
    """Rows [imbalance x] scenario x method; columns clean mIoU, CE per corruption, mCE and
    relative mCE (ImageNet-C style, normalised by `reference`)."""
    part = errors[errors["dataset"] == dataset]
    corruptions = [c for c in dict.fromkeys(part["corruption"]) if c != MEAN]
    normalised = bool(len(part)) and bool(part["normalised_by"].iloc[0])
    factors = list(dict.fromkeys(part["imbalance"]))
    scenarios = list(dict.fromkeys(part["scenario"]))
    several = len(factors) > 1
    ce, mce, rmce = ("CE", "mCE", "rel. mCE") if normalised else ("E", "mE", "mean drop")
    table = TextTable(
        title=(
            f"{dataset}: corruption error"
            + (f" relative to {reference} (= 100)" if normalised else " (not normalised)")
        ),
        caption="",
        stub=(["imbalance"] if several else []) + ["scenario", "method"],
        columns=[
            "clean mIoU",
            *(f"{ce} {c.replace('_', ' ')}" for c in corruptions),
            mce,
            rmce,
        ],
        label=f"tab:{slug(dataset)}-corruption-error",
        wide=True,
    )
    for factor in factors:
        for scenario in scenarios:
            here = part[(part["imbalance"] == factor) & (part["scenario"] == scenario)]
            if here.empty:
                continue
            table.group_starts.append(len(table.rows))
            name = _scenario_name(scenario, str(here["missing"].iloc[0]))
            for method in methods:
                rows = here[here["method"] == method]
                if rows.empty:
                    continue
                n_expected = int(rows["n_expected"].iloc[0])
                cells = [_cell(rows.iloc[0], "clean", n_expected, scale=100.0)]
                for corruption in corruptions:
                    row = rows[rows["corruption"] == corruption]
                    cells.append(
                        _cell(row.iloc[0], "ce", n_expected) if len(row) else Cell(text="n/a")
                    )
                mean = rows[rows["corruption"] == MEAN].iloc[0]
                cells += [_cell(mean, "ce", n_expected), _cell(mean, "rce", n_expected)]
                if method in oracle_methods:
                    table.unranked.add(len(table.rows))
                stub = [name, method_stub(method, oracle_methods)]
                table.rows.append(([f"×{factor:g}"] * several + stub, cells))
    _bold_best(table, ["max", *(["min"] * (len(table.columns) - 1))])
    if normalised:
        how = (
            f"As ImageNet-C's mCE (Hendrycks & Dietterich, ICLR 2019): per seed, CE of a "
            f"corruption = sum over severities of (100 − mIoU) divided by {reference}'s same "
            f"sum (mean over its seeds) × 100; mCE = mean CE over the corruptions evaluated on "
            f"the scenario; rel. mCE likewise from the drop (clean mIoU − corrupted mIoU) "
            f"instead of the error, so it compares how much of its own accuracy a method loses. "
            f"{reference} scores 100 by construction (its ± std is its own seed spread); below "
            f"100 = more robust. Undefined where {reference} loses nothing (n/a or –). "
        )
    else:
        how = (
            f"The reference method {reference} has no corrupted evaluations, so errors are not "
            "normalised: E = mean over severities of (100 − mIoU), mE = its mean over the "
            "corruptions, mean drop = mean over severities and corruptions of clean mIoU − "
            "corrupted mIoU (points). "
        )
    table.caption = (
        f"Mean ± std over seeds. {how}Clean mIoU (%) on the same scenario. Lower errors bold "
        f"(higher clean mIoU bold), per scenario. {ORACLE_NOTE * bool(oracle_methods)}"
        f"{MISSING_CELL} = undefined or a seed missing a severity or corruption (never "
        "averaged over fewer); n/a = corruption not evaluated on the scenario (it touches none "
        "of its modalities); † = fewer seeds than the grid. " + fill_note(corruptions) + conventions
    )
    return table


def _cell(row: pd.Series, stat: str, expected: int, scale: float = 1.0) -> Cell:
    return Cell(
        float(row[f"{stat}_mean"]),
        float(row[f"{stat}_std"]),
        int(row[f"{stat}_n"]),
        expected,
        scale=scale,
    )


def severity_curves(
    board: pd.DataFrame,
    dataset: str,
    scenario: str,
    methods: Sequence[str],
    expected: Expected,
) -> Figure:
    """One panel per corruption evaluated on `scenario`: test mIoU against severity (0 =
    clean), a line per method (mean over seeds, shaded ± std), at the lowest imbalance factor;
    a missing point breaks its line and is named in the panel."""
    part = board[board["dataset"] == dataset]
    grid, scores = grid_of(part, expected, dataset), Scores(part)
    factor = grid.factors[0]
    oracle_methods = oracles(part)
    corruptions = grid.applicable[scenario]
    shown = [m for m in methods if (dataset, factor, m) in expected or m in scores.methods()]
    colours = plots.method_colours(methods)
    cols = min(3, max(1, len(corruptions)))
    rows = max(1, math.ceil(len(corruptions) / cols))
    width = plots.DOUBLE if cols > 1 else plots.SINGLE
    partial = {
        method
        for method in shown
        for corruption in corruptions
        for severity in [0, *grid.severities[corruption]]
        if 0
        < len(scores.seeds(factor, method, scenario, corruption, severity))
        < expected.get((dataset, factor, method), 0)
    }
    details = ["mean ± std over seeds"]
    if len(grid.factors) > 1:
        details.append(f"imbalance ×{factor:g} (the tables give every factor)")
    if partial:
        details.append(f"fewer seeds than the grid: {', '.join(sorted(partial))}")
    name = _scenario_name(scenario, grid.missing_of[scenario])
    title = plots.wrapped_title(
        width, [f"{dataset}, present: {name}: test mIoU under corrupted inputs", "; ".join(details)]
    )
    handles = plots.method_handles(shown, colours, oracle_methods)
    ncol = plots.legend_columns(width, [h.get_label() for h in handles])
    fig = plots.new_figure(
        width, plots.framed_height(rows, 1.45, title, math.ceil(len(handles) / ncol))
    )
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True).ravel()
    for ax in axes[len(corruptions) :]:
        ax.set_visible(False)
    for ax, corruption in zip(axes, corruptions, strict=False):
        severities = [0, *grid.severities[corruption]]
        gaps: dict[str, list[int]] = {}
        for method in shown:
            means, stds = [], []
            for severity in severities:
                values = scores.seeds(factor, method, scenario, corruption, severity)
                summary = summarize(list(values.values()))
                means.append(summary.mean)
                stds.append(summary.std)
                if not summary.n:
                    gaps.setdefault(method, []).append(severity)
            plots.band_line(ax, severities, means, stds, colours[method], method in oracle_methods)
        ax.set_xticks(severities)
        ax.set_xlabel("severity (0 = clean)")
        ax.set_title(corruption.replace("_", " "))
        ax.grid(linewidth=0.3, alpha=0.6)
        plots.gap_note(ax, gaps, severities, "severity")
    for ax in axes[::cols]:
        ax.set_ylabel(f"test {SCORE_METRICS[METRIC]} (%)")
    fig.legend(handles=handles, loc="outside lower center", ncol=ncol, frameon=False)
    fig.suptitle(title, fontsize=8)
    return fig
