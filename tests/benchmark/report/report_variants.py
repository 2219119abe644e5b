"""Variants of the committed report fixture (tests/data/report_fixture) for report tests:
corrupted test records added to its finished runs, and runs trained with a modality missing.

The fixture's own records predate both (they have no `corruption`, `severity` or
`train_missing` keys), so every variant also checks that old records read as clean evaluations
of complete training data.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from benchmark.core.records import RunSpec
from tests.paths import TEST_DATA

FIXTURE = TEST_DATA / "report_fixture"
GOLDEN = FIXTURE / "expected"
GOLDEN_FILES = (
    "tables/synthetic.md",
    "tables/synthetic.tex",
    "leaderboard_wide.csv",
    "robustness.csv",
    "significance.csv",
)
"""Report outputs of the fixture kept as goldens (test_reporting.py regenerates them)."""
CORRUPTIONS = {"clouds": "optical", "dsm_voids": "dsm"}
"""Corruption -> the modality it touches (a scenario without it gets no corrupted record)."""


def copy_fixture(root: Path) -> Path:
    """The fixture's runs under `root/runs`; returns `root`."""
    shutil.copytree(FIXTURE / "runs", root / "runs")
    return root


def scaled(rec: dict, factor: float, **changes: object) -> dict:
    """A copy of a test record with every score multiplied by `factor`, and its confusion
    matrices degraded alike (a share 1 - factor of each correct count moved to the next
    class), so that a bootstrap on them sees the loss too."""
    out = dict(rec, **changes)
    for key in ("miou", "mf1", "oa", "kappa"):
        out[key] = rec[key] * factor
    for key in ("iou", "f1"):
        out[key] = [v * factor for v in rec[key]]
    for key in ("tier_miou", "tier_mf1"):
        out[key] = {tier: v * factor for tier, v in rec[key].items()}
    out["confusion"] = degrade(rec["confusion"], factor)
    out["tile_confusions"] = [degrade(m, factor) for m in rec["tile_confusions"]]
    return out


def degrade(matrix: list[list[int]], factor: float) -> list[list[int]]:
    """Move round((1 - factor) x diagonal) of each class's correct pixels to the next class."""
    out = [list(row) for row in matrix]
    size = len(out)
    for k in range(size):
        moved = int(round((1 - factor) * out[k][k]))
        out[k][k] -= moved
        out[k][(k + 1) % size] += moved
    return out


def read_records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "records.jsonl").read_text().splitlines()]


def write_records(run: Path, records: list[dict]) -> None:
    (run / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def add_corruptions(
    root: Path,
    severities: tuple[int, ...] = (1, 2, 3, 4, 5),
    loss: Callable[[dict, str, int], float] | None = None,
    keep: Callable[[dict, str, int], bool] | None = None,
    fill: str | None = "own",
) -> None:
    """Add corrupted copies of every selected test record of every finished run: each
    corruption of `CORRUPTIONS` on the scenarios with its modality, at `severities`; the score
    is scaled by 1 - loss(record, corruption, severity) (default 0.08 x severity) and a
    condition is left out where `keep` says no (a gap the report must show). `fill` is their
    `invalid_fill` (None: written before the field existed); call it once per fill to add
    both (`--invalid-fill own,mean`)."""
    loss = loss or (lambda _rec, _c, severity: 0.08 * severity)
    for run in sorted((root / "runs").iterdir()):
        if not (run / "done").exists():
            continue
        records = read_records(run)
        extra = []
        for rec in records:
            if (
                rec["split"] != "test"
                or not rec["selection"]
                or rec.get("corruption", "none") != "none"
            ):
                continue  # clean test records only, so that a second call adds a second fill
            present = rec["scenario"].split("+")
            for corruption, modality in CORRUPTIONS.items():
                if modality not in present:
                    continue
                for severity in severities:
                    if keep and not keep(rec, corruption, severity):
                        continue
                    factor = 1 - loss(rec, corruption, severity)
                    changes = {"corruption": corruption, "severity": severity}
                    if fill is not None:
                        changes["invalid_fill"] = fill
                    extra.append(scaled(rec, factor, **changes))
        write_records(run, records + extra)


def add_train_missing_run(
    root: Path, label: str, imbalance: float, seed: int, missing: list, factor: float
) -> str:
    """A finished run like the fixture's `label` run (imbalance, seed) but trained with
    `missing` ([[modality, rate]]): its records are the original's scaled by `factor`, with
    `train_missing` set; returns the new run id."""
    runs = root / "runs"
    for run in sorted(runs.iterdir()):
        spec = json.loads((run / "spec.json").read_text())
        if (spec["label"], spec["imbalance"], spec["seed"]) == (label, imbalance, seed):
            break
    else:
        raise LookupError(f"no fixture run {label} ×{imbalance} seed {seed}")
    new = RunSpec.from_json(dict(spec, train_missing=missing))
    target = runs / new.run_id
    target.mkdir()
    (target / "spec.json").write_text(json.dumps(new.to_json(), indent=1, sort_keys=True))
    shutil.copy(run / "train_log.jsonl", target / "train_log.jsonl")
    text = new.train_missing_label
    records = [
        scaled(rec, factor, run_id=new.run_id, train_missing=text) for rec in read_records(run)
    ]
    write_records(target, records)
    (target / "done").write_text("fixture\n")
    return new.run_id
