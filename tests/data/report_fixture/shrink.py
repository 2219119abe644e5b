"""Build this fixture from a tiny sweep (run once; the goldens are regenerated separately).

    python run_benchmark.py --preset smoke --steps 40 \
        --dataset "synthetic[tile_size=64,train_tiles=4,val_tiles=2,test_tiles=3]" \
        --methods "baseline,baseline[class_weighting='none']" --seeds 0,1 --imbalance 1,10 \
        --out /tmp/report_fix
    python tests/data/report_fixture/shrink.py /tmp/report_fix

Keeps spec.json, train_log.jsonl, done and the records a report reads (the selected test
records and the intermediate validations; the selected validation records are dropped), and
plants the two kinds of gap a report must show rather than drop: one run of the variant keeps
only its spec.json (an unfinished seed, shown as "†"), and a spec-only run of a third method is
added (no finished seed, shown as "–"). Goldens: `MISSBENCH_REGEN_GOLDENS=1 pytest
tests/benchmark/report/test_reporting.py`.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from benchmark.core.records import RunSpec

HERE = Path(__file__).resolve().parent


def main(source: Path) -> None:
    target = HERE / "runs"
    shutil.rmtree(target, ignore_errors=True)
    specs = []
    for run in sorted((source / "runs").iterdir()):
        spec = json.loads((run / "spec.json").read_text())
        specs.append(spec)
        out = target / run.name
        out.mkdir(parents=True)
        (out / "spec.json").write_text(json.dumps(spec, indent=1, sort_keys=True) + "\n")
        unfinished = spec["label"] != spec["method"] and spec["imbalance"] > 1 and spec["seed"]
        if unfinished or not (run / "done").exists():
            continue  # spec.json only: the report must show this seed as missing
        shutil.copy(run / "train_log.jsonl", out / "train_log.jsonl")
        keep = []
        for line in (run / "records.jsonl").read_text().splitlines():
            rec = json.loads(line)
            if (rec["split"] == "test") == bool(rec["selection"]):
                keep.append(json.dumps(rec, sort_keys=True))
        (out / "records.jsonl").write_text("\n".join(keep) + "\n")
        (out / "done").write_text("fixture\n")
    base = next(s for s in specs if s["label"] == "baseline" and s["imbalance"] == 1)
    hparams = [[k, 0.003 if k == "lr" else v] for k, v in base["hparams"]]
    spec = RunSpec.from_json(dict(base, hparams=hparams, label="baseline[lr=0.003]", seed=0))
    out = target / spec.run_id
    out.mkdir()
    (out / "spec.json").write_text(json.dumps(spec.to_json(), indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
