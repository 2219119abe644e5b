"""Tables as pure functions of evaluation records."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd
from rich.table import Table

from benchmark.io import atomic_write_text
from benchmark.records import SELECTION_DESCRIPTION

BASE_COLUMNS = [
    "dataset",
    "method",
    "imbalance",
    "scenario",
    "missing",
    "n_present",
    "seed",
    "split",
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
]
TIERS = ("head", "body", "tail")


def leaderboard(records: Iterable[dict], split: str = "test") -> pd.DataFrame:
    """Tidy long table: one row per dataset x method x imbalance x scenario x seed.

    Only the selected checkpoint's records of `split` enter; per-class IoU/F1 become
    `iou_<class>` / `f1_<class>` columns, tier means `miou_<tier>` / `mf1_<tier>`.
    """
    rows = []
    for rec in records:
        if rec["split"] != split or not rec["selection"]:
            continue
        row = {key: rec[key] for key in BASE_COLUMNS + TRAILING_COLUMNS if key in rec}
        row["eval_classes"] = "|".join(rec["eval_classes"])
        for tier in TIERS:
            row[f"miou_{tier}"] = rec["tier_miou"][tier]
            row[f"mf1_{tier}"] = rec["tier_mf1"][tier]
            row[f"tier_{tier}"] = "|".join(rec["tiers"][tier])
        for name, iou, f1 in zip(rec["classes"], rec["iou"], rec["f1"], strict=True):
            row[f"iou_{name}"] = iou
            row[f"f1_{name}"] = f1
        rows.append(row)
    if not rows:
        return pd.DataFrame(columns=BASE_COLUMNS + TRAILING_COLUMNS)
    frame = pd.DataFrame(rows)
    class_columns = [c for c in frame.columns if c.startswith(("iou_", "f1_"))]
    class_columns = sorted(
        class_columns, key=lambda c: (not c.startswith("iou_"), list(frame.columns).index(c))
    )
    return frame[BASE_COLUMNS + class_columns + TRAILING_COLUMNS]


def scenario_order(frame: pd.DataFrame) -> list[str]:
    """Full-modality scenario first, then by decreasing number of present modalities."""
    pairs = frame[["scenario", "n_present"]].drop_duplicates()
    pairs = pairs.sort_values(["n_present", "scenario"], ascending=[False, True])
    return list(pairs["scenario"])


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    atomic_write_text(path, frame.to_csv(index=False, float_format="%.6f"))


def _cell(values: pd.Series) -> str:
    values = values.dropna()
    if values.empty:
        return "–"
    mean = 100 * values.mean()
    if len(values) > 1:
        return f"{mean:.1f}±{100 * values.std(ddof=1):.1f}"
    return f"{mean:.1f}"


def wide_table(
    frame: pd.DataFrame, methods: Sequence[str], dataset: str, imbalance: float = 1.0
) -> Table:
    """Methods x scenarios, mIoU / mF1 in percent (mean±std over seeds); missing cells '–'."""
    part = frame[(frame["dataset"] == dataset) & (frame["imbalance"] == imbalance)]
    scenarios = scenario_order(part)
    selection = part["selection"].iloc[0] if len(part) else ""
    seeds = sorted(part["seed"].unique()) if len(part) else []
    table = Table(
        title=f"{dataset}{f' · imbalance ×{imbalance:g}' if imbalance != 1 else ''}: "
        f"test mIoU / mF1 (%), seeds {', '.join(map(str, seeds))}",
        caption=f"selection: {selection} — {SELECTION_DESCRIPTION.get(selection, '')}; "
        f"means over: {part['eval_classes'].iloc[0].replace('|', ', ') if len(part) else ''}",
    )
    table.add_column("method", style="bold")
    for scenario in scenarios:
        missing = part.loc[part["scenario"] == scenario, "missing"].iloc[0]
        table.add_column(f"{scenario}\n(missing: {missing})", justify="right")
    for method in methods:
        cells = []
        for scenario in scenarios:
            sel = part[(part["method"] == method) & (part["scenario"] == scenario)]
            cells.append(f"{_cell(sel['miou'])} / {_cell(sel['mf1'])}")
        table.add_row(method, *cells)
    return table


def is_missing(value: float) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
