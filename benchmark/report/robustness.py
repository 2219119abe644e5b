"""Robustness summaries per dataset x imbalance x method x tier, from the long leaderboard.

Per seed (then mean / std / 95 % t-CI over seeds, `benchmark.report.stats.summarize`):

- `full`: score with every modality present (`missing == "none"`);
- `mean_missing`: unweighted mean over every scenario with at least one modality missing;
- `worst`: the lowest of those scenarios (`worst_scenario` names the one that is lowest for the
  seed-mean scores);
- `retention`: `mean_missing / full`;
- `drop`: `full - mean_missing`, what the method itself loses when modalities go missing;
- `vs_ref`: `mean_missing - mean_missing of the reference method` for the same seed (positive =
  more robust than the reference); NaN for the reference itself and for unpaired seeds.

Tiers: `all` uses mIoU over the evaluation classes, `head` / `body` / `tail` the tier means.
Scenario counts are discrete, so these are means, minima and ratios, never areas under a curve.
A seed that lacks any scenario of the dataset gets NaN summaries rather than a mean over fewer
scenarios.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from benchmark.report.stats import summarize

TIER_METRICS = {"all": "miou", "head": "miou_head", "body": "miou_body", "tail": "miou_tail"}
STATS = ("full", "mean_missing", "worst", "retention", "drop", "vs_ref")
KEYS = ["dataset", "imbalance", "method"]


def per_seed(board: pd.DataFrame, reference: str) -> pd.DataFrame:
    """One row per dataset x imbalance x method x seed x tier with the six statistics."""
    rows = []
    for dataset, part in board.groupby("dataset", sort=False):
        scenarios = part[["scenario", "missing"]].drop_duplicates()
        full_names = list(scenarios.loc[scenarios["missing"] == "none", "scenario"])
        missing_names = sorted(scenarios.loc[scenarios["missing"] != "none", "scenario"])
        for (imbalance, method, seed), run in part.groupby(
            ["imbalance", "method", "seed"], sort=False
        ):
            by_scenario = run.set_index("scenario")
            for tier, metric in TIER_METRICS.items():
                score = {s: _value(by_scenario, s, metric) for s in full_names + missing_names}
                full = score[full_names[0]] if full_names else float("nan")
                values = np.asarray([score[s] for s in missing_names], dtype=np.float64)
                complete = values.size > 0 and bool(np.all(np.isfinite(values)))
                mean_missing = float(values.mean()) if complete else float("nan")
                worst = float(values.min()) if complete else float("nan")
                rows.append(
                    {
                        "dataset": dataset,
                        "imbalance": imbalance,
                        "method": method,
                        "seed": seed,
                        "tier": tier,
                        "full": full,
                        "mean_missing": mean_missing,
                        "worst": worst,
                        "retention": mean_missing / full if full and np.isfinite(full) else np.nan,
                        "drop": full - mean_missing,
                    }
                )
    frame = pd.DataFrame(rows, columns=[*KEYS, "seed", "tier", *STATS[:-1]])
    ref = frame[frame["method"] == reference][["dataset", "imbalance", "seed", "tier"]].assign(
        ref_missing=frame.loc[frame["method"] == reference, "mean_missing"]
    )
    frame = frame.merge(ref, on=["dataset", "imbalance", "seed", "tier"], how="left")
    frame["vs_ref"] = np.where(
        frame["method"] == reference, np.nan, frame["mean_missing"] - frame["ref_missing"]
    )
    return frame.drop(columns="ref_missing")


def _value(by_scenario: pd.DataFrame, scenario: str, metric: str) -> float:
    if scenario not in by_scenario.index:
        return float("nan")
    value = by_scenario.loc[scenario, metric]
    if isinstance(value, pd.Series):  # duplicated records of one run: keep the first
        value = value.iloc[0]
    return float(value)


def robustness(board: pd.DataFrame, methods: Sequence[str], reference: str) -> pd.DataFrame:
    """Seed-aggregated summaries: `<stat>_mean/_std/_ci_low/_ci_high/_n`, `n_seeds`,
    `worst_scenario`; rows ordered by dataset, imbalance, `methods`, tier."""
    seeds = per_seed(board, reference)
    order = {m: i for i, m in enumerate(methods)}
    rows = []
    for (dataset, imbalance, method, tier), part in seeds.groupby([*KEYS, "tier"], sort=False):
        row = {
            "dataset": dataset,
            "imbalance": imbalance,
            "method": method,
            "tier": tier,
            "n_seeds": int(part["seed"].nunique()),
        }
        for stat in STATS:
            summary = summarize(part[stat].tolist())
            row[f"{stat}_mean"] = summary.mean
            row[f"{stat}_std"] = summary.std
            row[f"{stat}_ci_low"] = summary.ci_low
            row[f"{stat}_ci_high"] = summary.ci_high
            row[f"{stat}_n"] = summary.n
        row["worst_scenario"] = _worst_scenario(
            board, dataset, imbalance, method, TIER_METRICS[tier]
        )
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame["_m"] = frame["method"].map(lambda m: order.get(m, len(order)))
    frame["_t"] = frame["tier"].map(list(TIER_METRICS).index)
    frame = frame.sort_values(["dataset", "imbalance", "_m", "_t"], kind="stable")
    return frame.drop(columns=["_m", "_t"]).reset_index(drop=True)


def _worst_scenario(board, dataset, imbalance, method, metric) -> str:
    part = board[
        (board["dataset"] == dataset)
        & (board["imbalance"] == imbalance)
        & (board["method"] == method)
        & (board["missing"] != "none")
    ]
    means = part.groupby("scenario")[metric].mean().dropna()
    return str(means.idxmin()) if len(means) else ""
