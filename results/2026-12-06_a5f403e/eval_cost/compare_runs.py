"""Before/after tables of issue 29 from two sweeps of the same request (`--out` folders) and
their logs: per run, wall time, training, evaluation (validation + test) and corrupted
evaluation seconds; per method and scenario, the test mIoU of both and the paired bootstrap
of the difference over test tiles (same seed, same tiles).

    python compare_runs.py NAME BEFORE_DIR BEFORE_LOG AFTER_DIR AFTER_LOG --out DIR

writes DIR/NAME_timings.csv and DIR/NAME_scores.csv (appending a `config` column NAME).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.report.stats import miou_batch, paired_bootstrap


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def walls(log: Path) -> dict[str, int]:
    found = {}
    for line in log.read_text().splitlines():
        match = re.search(r"run ([0-9a-f]{16}): finished in (\d+) s", line)
        if match:
            found[match.group(1)] = int(match.group(2))
    return found


def runs(results: Path) -> dict[str, dict]:
    """label -> {spec, records, corrupted, run_id} of every finished run (one seed each)."""
    found = {}
    for run in sorted((results / "runs").iterdir()):
        records = read_jsonl(run / "records.jsonl")
        if not records:
            continue
        spec = json.loads((run / "spec.json").read_text())
        label = spec.get("label") or spec["method"]
        label += (
            ""
            if len(spec["train_modalities"]) > 1 or spec["method"] != "unimodal"
            else (f"[{'+'.join(spec['train_modalities'])}]")
        )
        found[label] = {
            "spec": spec,
            "records": records,
            "corrupted": read_jsonl(run / "corrupted.jsonl"),
            "run_id": run.name,
        }
    return found


def timing_row(run: dict, wall: float) -> dict:
    """Seconds of each part; each evaluation counted once (a record copied under another rule
    or from its validation shares its timestamp and seconds)."""
    seen, evaluation = set(), 0.0
    for r in run["records"]:
        key = (
            r["split"],
            r["checkpoint_step"],
            r["scenario"],
            r["timestamp"],
            r["eval_seconds"],
        )
        if key not in seen:
            seen.add(key)
            evaluation += r["eval_seconds"]
    train = max(r["train_seconds"] for r in run["records"])
    corrupted = sum(r["eval_seconds"] for r in run["corrupted"])
    return {
        "run_id": run["run_id"],
        "wall_s": wall,
        "train_s": round(train, 1),
        "eval_s": round(evaluation, 1),
        "eval_pct_of_wall": round(100 * evaluation / wall, 1) if wall else float("nan"),
        "corrupted_s": round(corrupted, 1),
        "corrupted_evaluations": len(run["corrupted"]),
        "eval_window": run["records"][0].get("eval_window", run["spec"]["hparams"]),
    }


def test_tiles(run: dict) -> dict[str, np.ndarray]:
    return {
        r["scenario"]: np.asarray(r["tile_confusions"])
        for r in run["records"]
        if r["split"] == "test" and r["selection"] == "full_val"
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("name")
    parser.add_argument("before", type=Path)
    parser.add_argument("before_log", type=Path, nargs="+")
    parser.add_argument("--after", type=Path, required=True)
    parser.add_argument("--after-log", type=Path, nargs="+", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    before, after = runs(args.before), runs(args.after)
    before_walls = {k: v for log in args.before_log for k, v in walls(log).items()}
    after_walls = {k: v for log in args.after_log for k, v in walls(log).items()}
    timings, scores = [], []
    for label in sorted(set(before) & set(after)):
        b, a = before[label], after[label]
        for when, run, wall in (
            ("before", b, before_walls.get(b["run_id"], float("nan"))),
            ("after", a, after_walls.get(a["run_id"], float("nan"))),
        ):
            row = timing_row(run, wall)
            row["eval_window"] = (
                run["records"][0].get("eval_window", 0)
                or run["spec"]["hparams"][
                    [p[0] for p in run["spec"]["hparams"]].index("crop_size")
                ][1]
            )
            timings.append({"config": args.name, "method": label, "when": when, **row})
        tb, ta = test_tiles(b), test_tiles(a)
        classes = [b["records"][0]["classes"].index(c) for c in b["records"][0]["eval_classes"]]
        for scenario in tb:
            if tb[scenario].shape != ta.get(scenario, tb[scenario][:0]).shape:
                continue  # evaluated on other tiles (smoke's two): costs compare, scores do not
            result = paired_bootstrap(ta[scenario][None], tb[scenario][None], classes)
            before_miou = float(miou_batch(tb[scenario].sum(0)[None], classes)[0])
            scores.append(
                {
                    "config": args.name,
                    "method": label,
                    "scenario": scenario,
                    "miou_before": round(100 * before_miou, 2),
                    "miou_after": round(100 * (before_miou + result.diff), 2),
                    "diff": round(100 * result.diff, 2),
                    "ci_low": round(100 * result.ci_low, 2),
                    "ci_high": round(100 * result.ci_high, 2),
                    "p_value": round(result.p_value, 4),
                    "identical": bool(np.array_equal(ta[scenario], tb[scenario])),
                }
            )
    args.out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(timings).to_csv(args.out / f"{args.name}_timings.csv", index=False)
    if scores:  # none where the two sides evaluated other tiles
        pd.DataFrame(scores).to_csv(args.out / f"{args.name}_scores.csv", index=False)
    print(pd.DataFrame(timings).to_string())
    print(pd.DataFrame(scores).to_string())


if __name__ == "__main__":
    main()
