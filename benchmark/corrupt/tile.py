"""`TileCorruption`: one (corruption, severity) applied to every tile of a corrupted evaluation.

What a sweep asks for (`--corruptions` x `--severities`), what a launcher hands a worker
(names and numbers, so a `--workers` process or a Ray task pickles no function and looks the
record up in its own registry), and what a corrupted record names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from benchmark.core.spec import DatasetSpec
from benchmark.corrupt.corruption import Corrupted, Corruption, check_severity
from benchmark.corrupt.registry import CORRUPTIONS


@dataclass(frozen=True)
class TileCorruption:
    """A registered corruption at one severity, drawn from one seed."""

    name: str
    severity: int
    seed: int = 0
    """The same corrupted tiles for every method, run and seed (paired comparisons)."""

    def __post_init__(self) -> None:
        CORRUPTIONS.canonical(self.name)  # an unknown name: one line listing the registered
        check_severity(self.severity)

    @property
    def record(self) -> Corruption:
        """The registered corruption."""
        return CORRUPTIONS.get(self.name)

    def touches(self, spec: DatasetSpec) -> tuple[str, ...]:
        """The modalities of `spec` it changes, in spec order (maybe none)."""
        return self.record.modalities(spec)

    def apply(
        self, sample: Mapping[str, np.ndarray], spec: DatasetSpec, tile_name: str
    ) -> Corrupted:
        """Corrupt one tile's raw arrays (`Corruption.corrupt`)."""
        return self.record.corrupt(sample, spec, self.severity, self.seed, tile_name)
