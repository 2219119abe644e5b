"""Per-band normalisation statistics: over a dataset's training tiles, or over the tiles of a
run that have a modality (`--train-missing`).

A tile that a run declares without a modality must not shape how that modality is normalised:
its values are data the run never has, so they may not set the mean a missing modality is
filled with (zero after normalising) nor the scale of the present tiles. `RestatedSplit` gives
a split the run's own statistics; `benchmark.data.pipeline.open_dataset` applies it to every
split of a run (training, evaluation, the model card), so all of them normalise alike.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from benchmark.core.dataset import MultiModalDataset, RawSample, Window
from benchmark.core.spec import DatasetSpec

log = logging.getLogger(__name__)

ROWS_PER_CHUNK = 256
"""Rows of a tile read (and converted to float64) at a time: bounded memory on huge tiles."""
MIN_STD = 1e-6
"""Floor of a band's standard deviation (a constant band would divide by zero)."""


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


def _tile_rows(
    dataset: MultiModalDataset, modality: str, tiles: np.ndarray
) -> Iterator[np.ndarray]:
    """`modality`'s raw values of each tile in `tiles`, a band of rows at a time."""
    for index in tiles:
        height, width = dataset.tile_shape(int(index))
        for start in range(0, height, ROWS_PER_CHUNK):
            window = (slice(start, min(start + ROWS_PER_CHUNK, height)), slice(0, width))
            yield dataset.load(int(index), window)[modality]


def present_statistics(
    train: MultiModalDataset, availability: Mapping[str, np.ndarray]
) -> DatasetSpec:
    """The training split's spec, each modality that some training tiles lack normalised with
    the statistics of the tiles that have it (`availability[m]`, bool [tiles]).

    A modality every tile has keeps the dataset's statistics, so a run that declares no tile
    absent normalises exactly as a run without `--train-missing`.
    """
    spec = train.spec
    modalities = []
    for modality in spec.modalities:
        have = availability.get(modality.name)
        if have is None or bool(np.all(have)):
            modalities.append(modality)
            continue
        tiles = np.flatnonzero(have)
        mean, std, _ = channel_stats(_tile_rows(train, modality.name, tiles))
        log.info(
            "normalising %s with the statistics of the %d of %d training tiles that have it",
            modality.name,
            len(tiles),
            len(have),
        )
        modalities.append(
            dataclasses.replace(
                modality,
                mean=tuple(float(v) for v in mean),
                std=tuple(max(float(v), MIN_STD) for v in std),
            )
        )
    return dataclasses.replace(spec, modalities=tuple(modalities))


class RestatedSplit(MultiModalDataset):
    """A split whose spec carries a run's own normalisation statistics; all else is `base`'s.

    The harness reads a split's statistics only through `spec` (the normaliser, the model
    card), so wrapping every split of a run gives all of them the run's statistics.
    """

    def __init__(self, base: MultiModalDataset, spec: DatasetSpec) -> None:
        super().__init__(base.root, base.split, base.options)
        self.base = base
        self._restated = spec
        for name in ("NAME", "SPLITS", "Options", "MODALITIES", "GENERATED"):
            setattr(self, name, getattr(base, name))

    @property
    def spec(self) -> DatasetSpec:
        return self._restated

    def __len__(self) -> int:
        return len(self.base)

    def tile_shape(self, index: int) -> tuple[int, int]:
        return self.base.tile_shape(index)

    def load(self, index: int, window: Window | None = None) -> RawSample:
        return self.base.load(index, window)

    def tile_name(self, index: int) -> str:
        return self.base.tile_name(index)

    def class_pixel_counts(self) -> np.ndarray:
        return self.base.class_pixel_counts()

    def __getattr__(self, name: str) -> Any:
        if name == "base":  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.base, name)


__all__ = ["RestatedSplit", "channel_stats", "present_statistics"]
