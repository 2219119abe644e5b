"""Class-imbalance axes: frequency tiers, and controlled imbalance of the training labels.

Tiers: classes are ranked by their share of labelled *training* pixels; a class with share
>= `head` is in the head tier, one with share < `tail` in the tail tier, the rest in the body.
Defaults (0.15, 0.05) put the ISPRS-style classes as head = impervious, building, low
vegetation; body = tree; tail = car, clutter. A dataset may override them in its spec.

Controlled imbalance (`--imbalance F`): the tail classes' labels are hidden (set to
`ignore_index`) block by block: every 16 x 16 pixel block of every training tile keeps its
tail-class labels with probability 1/F, independently per tail class. Blocks are about object
sized (a car is ~9 x 4 px at 5-10 cm GSD), so whole objects disappear from the supervision
rather than scattered pixels, and the tail share of labelled pixels falls by about F. The draw
depends only on (tile index, F), never on the run's seed or method, so every method and seed
trains on exactly the same reduced labels. Validation and test labels are never touched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from benchmark.system.errors import BenchmarkError

BLOCK = 16
TIERS = ("head", "body", "tail")


@dataclass(frozen=True)
class FrequencyTiers:
    """Class indices per tier (in class order), from training-pixel shares."""

    head: tuple[int, ...]
    body: tuple[int, ...]
    tail: tuple[int, ...]

    def of(self, tier: str) -> tuple[int, ...]:
        return getattr(self, tier)

    def tier_of(self, class_index: int) -> str:
        for tier in TIERS:
            if class_index in self.of(tier):
                return tier
        raise KeyError(class_index)


def frequency_tiers(
    frequencies: Sequence[float],
    thresholds: tuple[float, float] = (0.15, 0.05),
    classes: Sequence[int] | None = None,
) -> FrequencyTiers:
    """Split `classes` (default: all) into head / body / tail by training-pixel share."""
    head_min, tail_max = thresholds
    if not 0 <= tail_max <= head_min <= 1:
        raise BenchmarkError(f"tier thresholds {thresholds}: expected 0 <= tail <= head <= 1")
    ranked = sorted(range(len(frequencies)) if classes is None else classes)  # class order
    return FrequencyTiers(
        head=tuple(c for c in ranked if frequencies[c] >= head_min),
        body=tuple(c for c in ranked if tail_max <= frequencies[c] < head_min),
        tail=tuple(c for c in ranked if frequencies[c] < tail_max),
    )


def validate_factor(factor: float) -> float:
    if not np.isfinite(factor) or factor < 1:
        raise BenchmarkError(f"--imbalance {factor!r}: factors must be numbers >= 1")
    return float(factor)


def hide_tail_labels(
    mask: np.ndarray,
    factor: float,
    tail: Sequence[int],
    ignore_index: int,
    tile_index: int,
    tile_shape: tuple[int, int],
    origin: tuple[int, int] = (0, 0),
) -> np.ndarray:
    """Return `mask` (a window at `origin` of tile `tile_index`) with hidden tail labels.

    Decisions are drawn for the whole tile's block grid, so a crop sees exactly the labels the
    full tile would show at those pixels.
    """
    if factor <= 1 or not tail:
        return mask
    rows, cols = (-(-tile_shape[0] // BLOCK), -(-tile_shape[1] // BLOCK))
    rng = np.random.default_rng([tile_index, int(round(factor * 1000)), 0x1BA1])
    keep = rng.random((len(tail), rows, cols)) < 1.0 / factor
    y0, x0 = origin
    block_rows = (np.arange(mask.shape[0]) + y0) // BLOCK
    block_cols = (np.arange(mask.shape[1]) + x0) // BLOCK
    out = mask.copy()
    for slot, cls in enumerate(tail):  # a handful of tail classes, not a pixel loop
        kept = keep[slot][block_rows[:, None], block_cols[None, :]]
        out[(mask == cls) & ~kept] = ignore_index
    return out
