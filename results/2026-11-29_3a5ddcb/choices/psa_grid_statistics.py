"""How different class-balanced PSA sampling is from uniform sampling, per grid setting.

For each (pyramid level, purity) setting, on validation crops drawn exactly as training batches
are (quick preset: 128 px crops, batch 8), report: grid cells per batch, the share of cells the
balanced budget covers, the share of car + clutter among balanced and among uniform samples,
and how much of a sampled car/clutter cell truly is car/clutter (label purity). Validation data
only. Usage: python results/2026-11-29_3a5ddcb/choices/psa_grid_statistics.py <data root>
"""

import sys
from pathlib import Path

import numpy as np
import torch
from benchmark.run.data import PatchSampler, open_dataset

from benchmark.core.options import parse_named
from benchmark.core.presets import PRESETS
from benchmark.run.sweep import SweepRequest, expand
from methods.components.psa import downsample_labels, sample_pixels

root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("data")
spec = expand(
    SweepRequest(
        (parse_named("stars"),),
        (parse_named("synthetic"),),
        (0,),
        PRESETS.get("quick"),
        missing="none",
    )
).specs[0]
val = open_dataset(spec, "val", root)
ds = val.spec
tail = [ds.classes.index("car"), ds.classes.index("clutter")]
sampler = PatchSampler(val, 8, 128, seed=123)
batches = [sampler.batch(s)["mask"] for s in range(40)]
budget = spec.hparams["pixels_per_class"]
print(f"budget {budget} px/class, {len(batches)} val batches of 8 x 128 px")
print(
    "level stride purity | cells/batch labelled% | covered% | tail share balanced / uniform | "
    "tail cell purity (true tail px in sampled tail cells)"
)
for level, stride in ((1, 8), (0, 4)):
    grid = 128 // stride
    for purity in (0.0, 0.5, 0.75):
        covered, bal_tail, uni_tail, tail_purity, labelled = [], [], [], [], []
        gen = torch.Generator().manual_seed(0)
        for mask in batches:
            labels = downsample_labels(mask, (grid, grid), purity, ds.num_classes, ds.ignore_index)
            flat = labels.reshape(-1)
            labelled.append(float((flat != ds.ignore_index).float().mean()))
            torch.manual_seed(int(torch.randint(1 << 30, (1,), generator=gen)))
            bal = sample_pixels(labels, budget, ds.num_classes, ds.ignore_index, mode="balanced")
            torch.manual_seed(int(torch.randint(1 << 30, (1,), generator=gen)))
            uni = sample_pixels(labels, budget, ds.num_classes, ds.ignore_index, mode="uniform")
            covered.append(bal.numel() / flat.numel())
            tail_cells = torch.isin(flat, torch.tensor(tail))
            bal_tail.append(float(tail_cells[bal].float().mean()))
            uni_tail.append(float(tail_cells[uni].float().mean()))
            # purity of sampled tail cells: share of the cell's pixels that carry the cell's label
            cells = (
                mask.view(8, grid, stride, grid, stride)
                .permute(0, 1, 3, 2, 4)
                .reshape(-1, stride * stride)
            )
            picked = bal[tail_cells[bal]]
            if picked.numel():
                true = (cells[picked] == flat[picked].unsqueeze(1)).float().mean(1)
                tail_purity.append(float(true.mean()))
        shares = (labelled, covered, bal_tail, uni_tail, tail_purity)
        lab, cov, bal_share, uni_share, pure = (100 * np.mean(v) for v in shares)
        print(
            f"  {level}     {stride}    {purity:.2f}  | {grid * grid * 8:5d}  {lab:5.1f} | "
            f"{cov:5.1f} | {bal_share:5.1f} / {uni_share:5.1f} | {pure:5.1f}"
        )
