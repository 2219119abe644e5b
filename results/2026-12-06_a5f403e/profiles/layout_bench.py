"""Does channels_last help evaluation on this CPU? Baseline and STARS (quick preset) predicting
whole 256 px tiles (batch 1) and 128 px windows (batch 16), every scenario at once, with the
model and inputs in channels_last versus contiguous (NCHW) memory.

    python layout_bench.py [DATA_ROOT]   # default: $MISSBENCH_DATA, else ./data
"""

from __future__ import annotations

import os
import statistics
import sys
import time

import torch

from benchmark.core.method import evaluation_mode
from benchmark.core.presets import PRESETS
from benchmark.core.scenarios import all_scenarios
from benchmark.profile.setup import open_profiled_run

torch.set_num_threads(2)
root = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("MISSBENCH_DATA", "data")
for name in ("baseline", "stars"):
    run = open_profiled_run(name, "synthetic", PRESETS.get("quick"), torch.device("cpu"), root)
    method = run.method
    channels = {m: method.channels[m] for m in method.modalities}
    scenarios = all_scenarios(list(channels))
    for batch, size in ((1, 256), (16, 128)):
        base = {m: torch.randn(batch, c, size, size) for m, c in channels.items()}
        for layout in ("contiguous", "channels_last"):
            fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
            method.to(memory_format=fmt)
            inputs = {m: x.contiguous(memory_format=fmt) for m, x in base.items()}
            views = [s.select(inputs) for s in scenarios]
            times = []
            with evaluation_mode(method):
                for i in range(8):
                    tic = time.perf_counter()
                    method.predict_views(views)
                    if i >= 2:
                        times.append(time.perf_counter() - tic)
            print(
                f"{name:9s} batch {batch:2d} x {size}px {layout:14s} "
                f"{1e3 * statistics.median(times):8.1f} ms (IQR "
                f"{1e3 * min(times):.1f}-{1e3 * max(times):.1f})",
                flush=True,
            )
    run.close()
