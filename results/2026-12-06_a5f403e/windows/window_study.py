"""Window study: what evaluating in whole-tile windows instead of crop-sized ones changes.

Every finished run of a results directory (trained with the crop as its evaluation window) is
evaluated on its test split twice with the harness's own `evaluate_run_split`, at its selected
checkpoint: in crop-sized windows at the run's overlap (the rule before) and in windows of
`--window` pixels (a tile up to that size whole, no overlap needed). Per method and scenario it
writes both mIoUs and the paired bootstrap of the difference over test tiles
(`benchmark.report.stats.paired_bootstrap`) to `window_study.csv`, the wall time of each
evaluation, and whether the crop-window evaluation (this code: every scenario in one pass)
equals the run's own test record (the code that trained it) tile for tile. The checkpoint is
fixed, so the difference is the windows' alone (a run trained under the new rule may also
select another checkpoint, since validation uses the same windows).

    python window_study.py RESULTS_DIR --window 512 --data-root DATA --out window_study.csv
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from benchmark.core.plugins import METHODS
from benchmark.core.records import RunSpec
from benchmark.data.pipeline import prepare_data
from benchmark.report.stats import miou_batch, paired_bootstrap
from benchmark.run.evaluate import evaluate_run_split
from benchmark.run.store import RunStore
from benchmark.run.train import build_method

log = logging.getLogger("window_study")


def study(results: Path, window: int, data_root: Path) -> pd.DataFrame:
    store = RunStore(results)
    device = torch.device("cpu")
    rows = []
    for stored in store.scan():
        if stored.state != "done" or stored.spec is None:
            continue
        spec = RunSpec.from_json(stored.spec)
        data = prepare_data(spec, data_root)
        method = build_method(spec, data, device)
        method.load_state_dict(store.load_model(spec.run_id))
        scenarios = METHODS.get(spec.method).evaluation_scenarios(spec.train_modalities)
        rules = {"crop": spec, "whole": dataclasses.replace(spec, eval_window=window)}
        matrices, seconds = {}, {}
        for rule, rule_spec in rules.items():
            tic = time.perf_counter()
            matrices[rule] = evaluate_run_split(method, data.test, scenarios, rule_spec, device)
            seconds[rule] = time.perf_counter() - tic
        classes = data.test.spec.eval_classes
        recorded = {
            r["scenario"]: np.asarray(r["tile_confusions"])
            for r in store.read_records(spec.run_id)
            if r["split"] == "test" and r["selection"] == spec.selection
        }
        for scenario in scenarios:
            tiles = {r: np.stack([m.matrix for m in matrices[r][scenario]]) for r in rules}
            result = paired_bootstrap(tiles["whole"][None], tiles["crop"][None], classes)
            crop_miou = float(miou_batch(tiles["crop"].sum(0)[None], classes)[0])
            rows.append(
                {
                    "method": spec.label or spec.method,
                    "run_id": spec.run_id,
                    "seed": spec.seed,
                    "scenario": str(scenario),
                    "crop_window": spec.window,
                    "crop_overlap": spec.eval_overlap,
                    "whole_window": window,
                    "miou_crop": crop_miou,
                    "miou_whole": crop_miou + result.diff,
                    "diff": result.diff,
                    "ci_low": result.ci_low,
                    "ci_high": result.ci_high,
                    "p_value": result.p_value,
                    "n_tiles": result.n_tiles,
                    "crop_equals_record": bool(
                        np.array_equal(tiles["crop"], recorded.get(str(scenario)))
                    ),
                    "seconds_crop": seconds["crop"],
                    "seconds_whole": seconds["whole"],
                }
            )
        log.info(
            "%s: %s",
            spec.label,
            [round(100 * r["diff"], 2) for r in rows[-len(scenarios) :]],
        )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--window", type=int, default=512)
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("window_study.csv"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    frame = study(args.results, args.window, args.data_root)
    frame.to_csv(args.out, index=False)
    print(frame.to_string())


if __name__ == "__main__":
    main()
