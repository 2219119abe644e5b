"""Per-band channel statistics of a training split, computed in row chunks from the
memory-mapped tile cache (never a whole float64 copy of a tile) and cached as JSON.

`channel_stats` is the harness's (`benchmark.api`): a run that trains with missing modalities
computes its own statistics over the tiles that have each modality with the same function."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from benchmark.api import atomic_write_json, channel_stats


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


__all__ = ["cached_stats", "channel_stats"]
