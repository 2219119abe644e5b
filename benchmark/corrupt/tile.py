"""`TileCorruption`: one (corruption, severity) applied to every tile of a corrupted evaluation.

What a sweep asks for (`--corruptions` x `--severities` x `--invalid-fill`), what a launcher
hands a worker (names and numbers, so a `--workers` process or a Ray task pickles no function
and looks the record up in its own registry), and what a corrupted record names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from benchmark.core.records import INVALID_FILLS, OWN_FILL
from benchmark.core.spec import DatasetSpec
from benchmark.corrupt.corruption import Corrupted, Corruption, check_severity
from benchmark.corrupt.registry import CORRUPTIONS
from benchmark.system.errors import BenchmarkError


@dataclass(frozen=True)
class TileCorruption:
    """A registered corruption at one severity, drawn from one seed, and how the method
    handles the pixels it marks invalid."""

    name: str
    severity: int
    seed: int = 0
    """The same corrupted tiles for every method, run and seed (paired comparisons)."""
    fill: str = OWN_FILL
    """How the method handles the pixels it marks invalid (`INVALID_FILLS`): `own`, its own
    missing-modality mechanism (`Method.predict_partial`), or `mean`, the training mean for
    every method; recorded as `invalid_fill`."""

    def __post_init__(self) -> None:
        CORRUPTIONS.canonical(self.name)  # an unknown name: one line listing the registered
        check_severity(self.severity)
        check_fill(self.fill)

    @property
    def record(self) -> Corruption:
        """The registered corruption."""
        return CORRUPTIONS.get(self.name)

    @property
    def draw(self) -> TileCorruption:
        """The same corrupted tiles whatever the fill (evaluations that differ only in how
        invalid pixels are handled corrupt each tile once)."""
        return replace(self, fill=OWN_FILL)

    @property
    def fill_matters(self) -> bool:
        """Whether the fill can change a prediction: only where pixels become invalid."""
        return fill_matters(self.name)

    def touches(self, spec: DatasetSpec) -> tuple[str, ...]:
        """The modalities of `spec` it changes, in spec order (maybe none)."""
        return self.record.modalities(spec)

    def apply(
        self, sample: Mapping[str, np.ndarray], spec: DatasetSpec, tile_name: str
    ) -> Corrupted:
        """Corrupt one tile's raw arrays (`Corruption.corrupt`)."""
        return self.record.corrupt(sample, spec, self.severity, self.seed, tile_name)


def check_fill(fill: str) -> str:
    """Return `fill` if it is one of `INVALID_FILLS`; a `BenchmarkError` naming it otherwise."""
    if fill not in INVALID_FILLS:
        raise BenchmarkError(
            f"invalid-pixel fill {fill!r}: expected one of {', '.join(INVALID_FILLS)}"
        )
    return fill


def fill_matters(name: str) -> bool:
    """Whether corruption `name` marks pixels invalid, so that how they are filled matters
    (an unregistered name: assumed so)."""
    return name not in CORRUPTIONS or bool(CORRUPTIONS.get(name).invalid)
