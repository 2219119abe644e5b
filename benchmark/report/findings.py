"""`findings.md` / `findings.csv`: every comparative statement a report supports, one line each.

A *finding* is one paired test: method A against method B in one scenario and condition, with
the mean difference (points), its bootstrap CI, the p-value and the Holm-adjusted p-value
within its *table* (the family of tests that is read together). READMEs quote findings by
their id (`docs/quoting.md`), so a claim names the test it rests on.

What is compared, always within one condition (never a run trained on less data against one
trained on complete data, except in the section that asks exactly that):

- `clean`: every method against the reference method trained under the same training
  condition and budget, per scenario, on mIoU and tail-tier mIoU. Table = dataset x imbalance
  x training condition x budget x metric. Where a method has both an equal-steps and an
  equal-FLOPs budget, the two verdicts are shown side by side (each keeps its own table).
- `train_missing`: every method trained with a modality missing from part of the training
  tiles against the same method on complete data, per scenario (as `train_missing.csv`).
  Table = dataset x imbalance x metric.
- `corruption`: every method against the reference under the same corruption and severity,
  per scenario, with the same fill of invalid pixels on both sides: the methods' own handling
  (`clouds`) against the reference's own, the mean fill (`clouds (mean fill)`, a corruption of
  its own on the board) against the reference's mean fill, never one fill against the other.
  Table = dataset x imbalance x training condition x budget x corruption.
- `invalid_fill`: for a corruption that marks pixels invalid and was evaluated with both
  fills (`--invalid-fill own,mean`), each method's own handling against the mean fill on the
  same trained runs (same seeds, same test tiles), per severity and scenario: does its own
  missing-modality mechanism beat the training mean? `method` is the label + `OWN_FILL_SUFFIX`,
  `versus` the label + `MEAN_FILL_SUFFIX`, `corruption` the corruption's own name. A method
  whose own fill is the mean fill (identical confusion matrices) gets a row with Δ = 0,
  verdict `same` and no p-value, so it does not count in its table's m. Table = dataset x
  imbalance x training condition x budget x corruption.
- `failure`: every single-model method against the reference on each failure-model metric
  (`benchmark.report.failure`). Table = dataset x imbalance x training condition x budget.

The tests are `stats.paired_bootstrap` (seeds and test tiles resampled jointly) with
`RESAMPLES` resamples: its smallest p-value is 2 / (R + 1), and Holm multiplies the smallest of
m p-values by m, so the report's 2,000 resamples could never reject in a table of more than 50
tests. Holm's step-down adjustment (`stats.holm`) controls the family-wise error rate of each
table at `ALPHA`. A finding's id hashes what it compares (section, dataset, imbalance,
condition, budget, corruption, severity, metric, scenario, both methods' names), not its
numbers, so it survives regenerating the report.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from benchmark.core.records import CLEAN
from benchmark.report import failure
from benchmark.report.frames import (
    COMPLETE,
    MEAN_FILL_SUFFIX,
    SCORE_METRICS,
    SIGNIFICANCE_METRICS,
    budget_of,
    dataset_of,
    fill_variant_of,
    label_of,
    method_kind,
    paired_comparison,
    records_by_seed,
    train_missing_phrase,
    train_missing_text,
)
from benchmark.report.stats import ALPHA, BOOTSTRAP_SEED, PairedResult, holm
from benchmark.report.tables import ORACLE_NOTE, method_stub

RESAMPLES = 20_000
"""Bootstrap resamples of every finding: p can reach 1e-4, so Holm can reject in a table of up
to about 500 tests."""
DESCRIPTION = (
    f"two-sided paired bootstrap, seeds and test tiles resampled jointly for both methods and "
    f"mIoU recomputed from the summed per-tile confusion matrices ({RESAMPLES:,} resamples, RNG "
    f"seed {BOOTSTRAP_SEED}; p >= 2 / (resamples + 1))"
)
SECTIONS = {
    "clean": "Clean test data: each method against the reference",
    "train_missing": "Training with a modality missing: against the same method on complete data",
    "corruption": "Corrupted test data: each method against the reference, same corruption, "
    "severity and fill of invalid pixels",
    "invalid_fill": "Invalid pixels: each method's own handling against the mean fill, same "
    "trained runs",
    "failure": "Failure model: each single-model method against the reference",
}
COLUMNS = [
    "id", "section", "table", "dataset", "imbalance", "train_missing", "budget", "steps",
    "preset", "corruption", "severity", "metric", "scenario", "method", "kind", "versus", "diff",
    "ci_low", "ci_high", "p_value", "p_holm", "table_size", "n_seeds", "n_tiles", "verdict",
]  # fmt: skip
OWN_FILL_SUFFIX = " (own fill)"
"""Appended to a method's label in the `invalid_fill` section (its `versus` carries
`frames.MEAN_FILL_SUFFIX`): one trained method under its two fills of invalid pixels."""
SAME = "same"
"""Verdict of an `invalid_fill` row whose two fills gave identical confusion matrices (the
method's own fill is the mean fill): not a test, so not counted in its table."""


@dataclass(frozen=True)
class Arm:
    """A method label as findings compare it: its name without the report's qualifiers, its
    training condition and its budget."""

    label: str
    dataset: str
    base: str
    condition: str
    budget: tuple[str, int, str]
    """(`steps` or `flops`, requested steps, preset): `frames.budget_of`."""
    kind: str = ""
    """`oracle` (one model per scenario, `frames.method_kind`) or `single-model`: an oracle is
    compared with the reference as a yardstick, never as a rival that could win."""


def arms(specs: Iterable[Mapping]) -> dict[tuple[str, str], Arm]:
    """(dataset, label) -> its arm, from run specs that went through `generate.distinguish`."""
    out = {}
    for spec in specs:
        arm = Arm(
            label_of(spec),
            dataset_of(spec),
            spec.get("label") or spec["method"],
            train_missing_text(spec.get("train_missing")),
            budget_of(spec),
            method_kind(spec["method"]),
        )
        out[(arm.dataset, arm.label)] = arm
    return out


def counterparts(found: Mapping[tuple[str, str], Arm], reference: str) -> dict[str, str]:
    """Label -> the reference's label under the same dataset, training condition and budget
    (labels without one are absent). `reference` names the reference by its label or by its
    unqualified name."""
    refs = {
        (a.dataset, a.condition, a.budget): a.label
        for a in found.values()
        if reference in (a.label, a.base)
    }
    return {
        a.label: refs[(a.dataset, a.condition, a.budget)]
        for a in found.values()
        if (a.dataset, a.condition, a.budget) in refs
    }


def finding_id(key: Sequence[object]) -> str:
    """A stable id from what a finding compares: `F` + 8 hex digits."""
    text = "|".join(str(part) for part in key)
    return "F" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]


def _row(
    section: str,
    arm: Arm,
    versus: Arm,
    factor: float,
    metric: str,
    scenario: str,
    result: PairedResult,
    corruption: str = CLEAN,
    severity: int = 0,
) -> dict:
    budget, steps, preset = arm.budget
    condition = arm.condition
    table_key = {
        "clean": (arm.dataset, factor, condition, budget, steps, preset, metric),
        "train_missing": (arm.dataset, factor, metric),
        "corruption": (arm.dataset, factor, condition, budget, steps, preset, corruption, metric),
        "invalid_fill": (arm.dataset, factor, condition, budget, steps, preset, corruption, metric),
        "failure": (arm.dataset, factor, condition, budget, steps, preset),
    }[section]
    key = (
        section,
        arm.dataset,
        f"{factor:g}",
        condition,
        budget,
        steps,
        preset,
        corruption,
        severity,
        metric,
        scenario,
        arm.base,
        versus.base,
    )
    return {
        "id": finding_id(key),
        "section": section,
        "table": "/".join(str(part) for part in (section, *table_key)),
        "dataset": arm.dataset,
        "imbalance": factor,
        "train_missing": condition,
        "budget": budget,
        "steps": steps,
        "preset": preset,
        "corruption": corruption,
        "severity": severity,
        "metric": metric,
        "scenario": scenario,
        "method": arm.label,
        "kind": arm.kind,
        "versus": versus.label,
        # `COLUMNS` leaves out the unadjusted `significant`: a finding's verdict is Holm's
        **result.columns(),
    }


def findings_frame(
    records: Sequence[dict],
    specs: Iterable[Mapping],
    methods: Sequence[str],
    reference: str,
    failure_data: failure.FailureData | None = None,
    resamples: int = RESAMPLES,
) -> pd.DataFrame:
    """findings.csv: one row per paired test of every section, with Holm's adjustment within
    its table and a verdict (`higher` / `lower` at Holm-adjusted p < ALPHA, else `n.s.`).

    `failure_data`: `failure.FailureData` of the report (the failure section is left out
    without it)."""
    found = arms(specs)
    versus = counterparts(found, reference)
    order = {m: i for i, m in enumerate(methods)}
    rows: list[dict] = []
    keys = ("dataset", "imbalance", "method", "scenario", "corruption", "severity")
    index = records_by_seed(records, keys, clean=False)
    for (dataset, factor, label, scenario, corruption, severity), mine in index.items():
        arm, ref_label = found.get((dataset, label)), versus.get(label)
        if arm is None or ref_label is None or ref_label == label:
            continue
        ref = index.get((dataset, factor, ref_label, scenario, corruption, severity))
        if not ref:
            continue
        clean = corruption == CLEAN
        metrics = SIGNIFICANCE_METRICS if clean else ("miou",)
        for metric, result in paired_comparison(mine, ref, metrics, resamples):
            section = "clean" if clean else "corruption"
            rows.append(
                _row(
                    section,
                    arm,
                    found[(dataset, ref_label)],
                    factor,
                    metric,
                    scenario,
                    result,
                    corruption,
                    severity,
                )
            )
    rows += _train_missing_rows(index, found, resamples)
    rows += _invalid_fill_rows(index, found, resamples)
    if failure_data is not None:
        rows += _failure_rows(failure_data, found, versus, resamples)
    frame = pd.DataFrame(
        rows, columns=[c for c in COLUMNS if c not in ("p_holm", "table_size", "verdict")]
    )
    if frame.empty:
        return pd.DataFrame(columns=COLUMNS)
    frame["p_holm"] = np.nan
    frame["table_size"] = 0
    for _table, part in frame.groupby("table", sort=False):
        frame.loc[part.index, "p_holm"] = holm(part["p_value"].to_numpy())
        frame.loc[part.index, "table_size"] = int(np.isfinite(part["p_value"]).sum())
    frame["verdict"] = [
        ("higher" if d > 0 else "lower") if np.isfinite(p) and p < ALPHA else "n.s."
        for d, p in zip(frame["diff"], frame["p_holm"], strict=True)
    ]
    same = (frame["section"] == "invalid_fill") & ~np.isfinite(frame["p_value"])
    same &= (frame["diff"] == 0) & (frame["ci_low"] == 0) & (frame["ci_high"] == 0)
    frame.loc[same, "verdict"] = SAME
    section_rank = {s: i for i, s in enumerate(SECTIONS)}
    frame["_s"] = frame["section"].map(section_rank)
    frame["_m"] = frame["method"].map(
        lambda m: order.get(m.removesuffix(OWN_FILL_SUFFIX), len(order))
    )
    metric_rank = {
        m: i for i, m in enumerate([*SIGNIFICANCE_METRICS, *(s.key for s in failure.STATISTICS)])
    }
    frame["_k"] = frame["metric"].map(lambda m: metric_rank.get(m, len(metric_rank)))
    frame = frame.sort_values(
        [
            "_s",
            "dataset",
            "imbalance",
            "train_missing",
            "budget",
            "corruption",
            "_k",
            "severity",
            "_m",
            "scenario",
        ],
        kind="stable",
    )
    return frame.drop(columns=["_s", "_m", "_k"])[COLUMNS].reset_index(drop=True)


def _train_missing_rows(
    index: Mapping[tuple, Mapping[int, dict]], found: Mapping[tuple[str, str], Arm], resamples: int
) -> list[dict]:
    """Each method trained with a modality missing against itself on complete data."""
    complete = {(a.dataset, a.base, a.budget): a for a in found.values() if a.condition == COMPLETE}
    rows = []
    for (dataset, factor, label, scenario, corruption, _severity), mine in index.items():
        arm = found.get((dataset, label))
        if corruption != CLEAN or arm is None or arm.condition == COMPLETE:
            continue
        ref_arm = complete.get((dataset, arm.base, arm.budget))
        ref = ref_arm and index.get((dataset, factor, ref_arm.label, scenario, CLEAN, 0))
        if not ref:
            continue
        for metric, result in paired_comparison(mine, ref, ("miou",), resamples):
            rows.append(_row("train_missing", arm, ref_arm, factor, metric, scenario, result))
    return rows


def _invalid_fill_rows(
    index: Mapping[tuple, Mapping[int, dict]], found: Mapping[tuple[str, str], Arm], resamples: int
) -> list[dict]:
    """Each method's own handling of invalid pixels against the mean fill: the same label's
    records (so the same trained runs, seed by seed) under one corruption and severity."""
    rows = []
    for (dataset, factor, label, scenario, corruption, severity), own in index.items():
        arm = found.get((dataset, label))
        if corruption == CLEAN or fill_variant_of(corruption) is not None or arm is None:
            continue
        variant = corruption + MEAN_FILL_SUFFIX
        mean = index.get((dataset, factor, label, scenario, variant, severity))
        if not mean:
            continue
        own_arm = dataclasses.replace(
            arm, label=arm.label + OWN_FILL_SUFFIX, base=arm.base + OWN_FILL_SUFFIX
        )
        mean_arm = dataclasses.replace(
            arm, label=arm.label + MEAN_FILL_SUFFIX, base=arm.base + MEAN_FILL_SUFFIX
        )
        identical = _same_predictions(own, mean)
        for metric, result in paired_comparison(own, mean, ("miou",), resamples):
            if identical:  # no test: every resample's difference is 0
                result = dataclasses.replace(
                    result, diff=0.0, ci_low=0.0, ci_high=0.0, p_value=math.nan
                )
            rows.append(
                _row(
                    "invalid_fill",
                    own_arm,
                    mean_arm,
                    factor,
                    metric,
                    scenario,
                    result,
                    corruption,
                    severity,
                )
            )
    return rows


def _same_predictions(own: Mapping[int, dict], mean: Mapping[int, dict]) -> bool:
    """Whether two fills of the same runs gave the same per-tile confusion matrices on every
    seed both have (a method whose own fill is the mean fill)."""
    seeds = set(own) & set(mean)
    return bool(seeds) and all(
        own[s]["tile_names"] == mean[s]["tile_names"]
        and own[s]["tile_confusions"] == mean[s]["tile_confusions"]
        for s in seeds
    )


def _failure_rows(
    data: failure.FailureData,
    found: Mapping[tuple[str, str], Arm],
    versus: Mapping[str, str],
    resamples: int,
) -> list[dict]:
    """Each single-model method against the reference on every failure-model metric."""
    rows = []
    for (dataset, factor, label), views in data.views.items():
        ref_label = versus.get(label)
        ref = data.views.get((dataset, factor, ref_label))
        if ref is None or ref_label == label:
            continue
        for statistic in failure.STATISTICS:
            result = failure.compare(views, ref, statistic, resamples)
            if result is not None:
                rows.append(
                    _row(
                        "failure",
                        found[(dataset, label)],
                        found[(dataset, ref_label)],
                        factor,
                        statistic.key,
                        "",
                        result,
                    )
                )
    return rows


def _points(value: float, signed: bool = False) -> str:
    if not math.isfinite(value):
        return "–"
    return f"{100 * value:+.1f}" if signed else f"{100 * value:.1f}"


def _p(value: float) -> str:
    if not math.isfinite(value):
        return "–"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _budget_name(budget: str, steps: int, preset: str) -> str:
    return (
        f"equal FLOPs ({steps} steps of the baseline, {preset})"
        if budget == "flops"
        else (f"equal steps ({steps}, {preset})")
    )


def findings_markdown(frame: pd.DataFrame, description: str) -> str:
    """findings.md: the findings of `frame` grouped by section and table; a method's verdicts
    under an equal-steps and an equal-FLOPs budget side by side where it has both."""
    lines = [
        "# Findings",
        "",
        "Every comparison the report's paired tests support, one row each. Δ = the first "
        "method minus the second, in points of the metric (mean over seeds), with its 95 % "
        f"percentile CI; p = {description}; p Holm = Holm's step-down adjustment within the "
        "table the row belongs to (m = its number of tests), which holds the family-wise "
        f"error rate of that table at {ALPHA:g}. "
        f"Verdict: higher / lower where p Holm < {ALPHA:g}, n.s. otherwise; {SAME} = a "
        "method's own fill of invalid pixels gave exactly the predictions of the mean fill "
        "(no test, not counted in m). Each id is stable "
        "(it hashes what is compared, not the numbers): quote it next to a number in a README "
        "(`docs/quoting.md`); `findings.csv` holds every value at full precision."
        + (
            f" {ORACLE_NOTE}An oracle's verdict says how far the reference is from a model "
            "trained for that scenario alone, not that a rival won." * bool(oracle_labels(frame))
        ),
        "",
    ]
    if frame.empty:
        return "\n".join(
            [
                *lines,
                "No paired comparisons: the report has no reference counterpart for any method.",
                "",
            ]
        )
    for section, title in SECTIONS.items():
        part = frame[frame["section"] == section]
        if part.empty:
            continue
        lines += [f"## {title}", ""]
        group_keys = {
            "clean": ["dataset", "imbalance", "train_missing", "metric"],
            "train_missing": ["dataset", "imbalance", "metric"],
            "corruption": ["dataset", "imbalance", "train_missing", "corruption", "metric"],
            "invalid_fill": ["dataset", "imbalance", "train_missing", "corruption", "metric"],
            "failure": ["dataset", "imbalance", "train_missing"],
        }[section]
        for key, group in part.groupby(group_keys, sort=False):
            lines += _group_lines(section, dict(zip(group_keys, key, strict=True)), group)
    return "\n".join(lines)


def _group_lines(section: str, key: Mapping, group: pd.DataFrame) -> list[str]:
    budgets = list(
        dict.fromkeys(zip(group["budget"], group["steps"], group["preset"], strict=True))
    )
    budgets.sort(key=lambda b: (b[1], b[2], b[0] != "steps"))
    heading = [str(key["dataset"]), f"imbalance ×{key['imbalance']:g}"]
    if section != "train_missing":
        condition = key["train_missing"]
        heading.append(
            "complete training data"
            if condition == COMPLETE
            else f"training {train_missing_phrase(condition)}"
        )
    if section in ("corruption", "invalid_fill"):
        heading.append(str(key["corruption"]))
    heading.append(SCORE_METRICS.get(key.get("metric", ""), "mIoU under the failure model"))
    lines = [f"### {' · '.join(heading)}", ""]
    for budget in budgets:
        mine = group[
            (group["budget"] == budget[0])
            & (group["steps"] == budget[1])
            & (group["preset"] == budget[2])
        ]
        lines.append(
            f"- {_budget_name(*budget)}: table `{mine['table'].iloc[0]}`, "
            f"m = {int(mine['table_size'].iloc[0])} tests"
        )
    lines.append("")
    what = "scenario" if section != "failure" else "metric"
    corrupted = section in ("corruption", "invalid_fill")
    stub = ["method", "vs"] + (["severity"] if corrupted else []) + [what]
    side = len(budgets) > 1
    head = list(stub)
    for budget in budgets:
        prefix = f"{_budget_name(*budget)}: " if side else ""
        head += [f"{prefix}id", "Δ", "95 % CI", "p", "p Holm", "verdict"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join([":--"] * len(stub) + ["--:"] * (len(head) - len(stub))) + "|")
    row_keys = ["method_key", "versus_key", "severity", "scenario", "metric"]
    group = group.assign(
        method_key=[_unbudgeted(m) for m in group["method"]],
        versus_key=[_unbudgeted(v) for v in group["versus"]],
    )
    oracles = oracle_labels(group, "method_key")
    for _k, rows in group.groupby(row_keys, sort=False):
        first = rows.iloc[0]
        thing = first["scenario"] if section != "failure" else first["metric"]
        cells = [method_stub(first["method_key"], oracles), first["versus_key"]]
        if corrupted:
            cells.append(str(first["severity"]))
        cells.append(str(thing))
        for budget in budgets:
            row = rows[
                (rows["budget"] == budget[0])
                & (rows["steps"] == budget[1])
                & (rows["preset"] == budget[2])
            ]
            if row.empty:
                cells += ["–"] * 6
                continue
            r = row.iloc[0]
            cells += [
                f"`{r['id']}`",
                _points(r["diff"], signed=True),
                f"[{_points(r['ci_low'], True)}, {_points(r['ci_high'], True)}]",
                _p(r["p_value"]),
                _p(r["p_holm"]),
                str(r["verdict"]),
            ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines.append("")
    return lines


def oracle_labels(frame: pd.DataFrame, column: str = "method") -> set[str]:
    """The labels in `column` of rows whose method is an oracle (a frame read from a
    `findings.csv` written before `kind` was a column has none)."""
    if "kind" not in frame:
        return set()
    return set(frame.loc[frame["kind"] == "oracle", column])


def _unbudgeted(label: str) -> str:
    """A label without the budget qualifier `generate.distinguish` adds, so that a method's
    equal-steps and equal-FLOPs rows share one line."""
    import re

    return re.sub(r" \(\d+ steps(, equal FLOPs)?, [^)]*\)", "", label)


def write(
    writer, results, reference: str, failure_data: failure.FailureData | None
) -> pd.DataFrame:  # noqa: ANN001
    """Write findings.csv and findings.md into a report (`generate.ReportWriter`, `Results`)."""
    frame = findings_frame(
        results.records,
        [entry.spec for entry in results.entries],
        results.methods,
        reference,
        failure_data,
    )
    writer.csv(
        frame,
        "findings.csv",
        "every paired comparison (method vs reference within one training condition, budget, "
        "corruption and fill; condition vs complete data; each method's own fill of invalid "
        "pixels vs the mean fill; failure-model metrics): Δ, 95 % CI, p and "
        "Holm-adjusted p within its table, with a stable id to quote",
    )
    writer.text(
        "findings.md",
        findings_markdown(frame, DESCRIPTION),
        "the same findings as readable tables (equal-steps and equal-FLOPs verdicts side by "
        "side); quote their ids in READMEs (docs/quoting.md)",
    )
    return frame
