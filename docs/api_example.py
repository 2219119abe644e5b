"""A worked example of MissBench's Python API (`benchmark.api`).

Trains STARS and the baseline on the embedded synthetic data, reads their leaderboard, writes
the report, and applies the trained STARS to a scene whose DSM is missing. Run it as

    python docs/api_example.py --out results_api

(about 5 minutes on a 2-core CPU at the quick preset). The tests run the same code at the smoke
preset on tiny tiles (`tests/test_api_example.py`).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from benchmark import api

log = logging.getLogger("api_example")


def example(out: Path, data_root: Path, preset: str = "quick", dataset: str = "synthetic") -> dict:
    # 1. A sweep: two methods, every missing-modality scenario. The leaderboard comes back as a
    #    DataFrame (one row per method x scenario x seed, test split, selected checkpoint).
    board = api.run(
        methods=["stars", "baseline"],
        dataset=dataset,
        missing="all",
        seeds=[0],
        preset=preset,
        out=out,
        data_root=data_root,
        device="cpu",
    )
    scores = board.pivot_table(index="method", columns="scenario", values="miou")
    log.info("test mIoU (%%):\n%s", (100 * scores).round(1).to_string())

    # 2. Every table and figure of the results directory.
    files = api.report(out, reference="baseline", data_root=data_root)
    log.info("report: %s (%d files)", files[0], len(files))

    # 3. The trained STARS as a model: any subset of its modalities, raw values in.
    run_id = board.loc[board["method"] == "stars", "run_id"].iloc[0]
    model = api.load_model(Path(out) / "runs" / run_id)
    rng = np.random.default_rng(0)
    optical = rng.uniform(0.0, 0.4, size=(3, 160, 200)).astype(np.float32)  # NIR, R, G
    labels = model.predict({"optical": optical})  # the DSM is missing
    names, counts = np.unique(labels, return_counts=True)
    share = {
        model.spec.classes[n]: round(float(c) / labels.size, 3)
        for n, c in zip(names, counts, strict=True)
    }
    log.info("optical-only prediction %s: %s", labels.shape, share)
    return {"board": board, "files": files, "labels": labels, "model": model}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results_api"))
    parser.add_argument("--data-root", type=Path, default=Path("data"))
    parser.add_argument("--preset", default="quick")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    example(args.out, args.data_root, args.preset)
