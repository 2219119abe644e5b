"""Per-band channel statistics of a training split, computed in row chunks from the
memory-mapped tile cache (never a whole float64 copy of a tile) and cached as JSON."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from benchmark.api import atomic_write_json

ROWS_PER_CHUNK = 256


def channel_stats(tiles: Iterable[np.ndarray]) -> tuple[list[float], list[float], int]:
    """Mean and std per band over all finite pixels of [C, H, W] arrays (nodata skipped)."""
    sums = squares = counts = None
    for tile in tiles:
        channels = tile.shape[0]
        if sums is None:
            sums, squares, counts = np.zeros(channels), np.zeros(channels), np.zeros(channels)
        for start in range(0, tile.shape[1], ROWS_PER_CHUNK):
            chunk = np.asarray(tile[:, start : start + ROWS_PER_CHUNK], dtype=np.float64)
            chunk = chunk.reshape(channels, -1)
            finite = np.isfinite(chunk)
            chunk = np.where(finite, chunk, 0.0)
            sums += chunk.sum(axis=1)
            squares += (chunk**2).sum(axis=1)
            counts += finite.sum(axis=1)
    if sums is None:
        raise ValueError("no tiles to compute statistics from")
    n = np.maximum(counts, 1)
    mean = sums / n
    std = np.sqrt(np.maximum(squares / n - mean**2, 0.0))
    return mean.tolist(), std.tolist(), int(counts.min())


def cached_stats(
    path: Path, compute: Callable[[], dict[str, dict[str, list[float]]]]
) -> dict[str, dict[str, list[float]]]:
    """`{modality: {"mean": [...], "std": [...]}}` from `path`, computing and saving it once."""
    path = Path(path)
    if path.is_file():
        try:
            return json.loads(path.read_text())["stats"]
        except (OSError, ValueError, KeyError):
            pass  # unreadable: recompute and overwrite atomically
    stats = compute()
    atomic_write_json(path, {"statistics_from": "train", "stats": stats})
    return stats
