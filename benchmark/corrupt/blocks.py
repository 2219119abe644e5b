"""The building blocks of the corruption models (`benchmark.corrupt.catalogue`): seeded random
streams, smooth random fields, thresholds, directions, shifts, SAR units, and `Tile`, what one
call of a model knows.

Everything here is vectorised because real test tiles reach 6000 x 6000 pixels.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Sequence

import numpy as np

from benchmark.core.spec import Modality

_KERNEL_REACH = 4.0
"""Lattice margin in kernel widths: a Gaussian is negligible (3e-4) beyond four sigmas."""


def stream_rng(seed: int, corruption: str, tile_name: str, stream: str) -> np.random.Generator:
    """The generator of one component (`stream`) of one corruption on one tile.

    Severity is deliberately not in the key: every severity of a tile draws the same fields and
    noise, so a higher severity thresholds or scales the same structure (nested masks, damage
    that grows tile by tile). Nothing of the sample enters the key, and each modality draws
    from its own stream, so a modality's corruption never depends on which others are present.
    """
    key = [
        seed % 2**64,
        zlib.crc32(corruption.encode()),
        zlib.crc32(tile_name.encode()),
        zlib.crc32(stream.encode()),
    ]
    return np.random.default_rng(np.random.SeedSequence(key))


def _kernel(coords: np.ndarray, centres: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian weights of each lattice centre at each coordinate, rows at unit L2 norm.

    Unit row norms give every pixel of the field exactly unit variance (the lattice is iid
    standard normal), so a cover fraction is a fixed threshold whatever the tile size.
    """
    k = np.exp(-0.5 * ((coords[:, None] - centres[None, :]) / sigma) ** 2)
    return k / np.sqrt((k * k).sum(axis=1, keepdims=True))


def smooth_fields(
    rng: np.random.Generator,
    shape: tuple[int, int],
    scale: float,
    octaves: int = 1,
    offsets: Sequence[tuple[float, float]] = ((0.0, 0.0),),
) -> list[np.ndarray]:
    """One smooth Gaussian random field (zero mean, unit variance, float32 [H, W]) seen at
    each of `offsets` (dy, dx): `fields[i][y, x] = field(y - dy, x - dx)`.

    The field is white noise on a lattice of spacing `scale` (halved per octave, amplitude
    halved too: a fractal, cumulus-like boundary) smoothed by a separable Gaussian of that
    width. It is continuous, so an offset view shows structure from outside the tile (a cloud
    beyond the edge still casts its shadow inside). Separable means two small matrix products
    per view instead of a convolution: O(H W n) with n lattice points per axis (tens).
    """
    h, w = shape
    reach = max((max(abs(dy), abs(dx)) for dy, dx in offsets), default=0.0)
    weights = 0.5 ** np.arange(octaves)
    weights /= np.sqrt((weights**2).sum())
    rows: list[list[np.ndarray]] = [[] for _ in offsets]
    cols: list[list[np.ndarray]] = [[] for _ in offsets]
    for octave in range(octaves):
        spacing = max(scale / 2**octave, 1.0)
        margin = reach + _KERNEL_REACH * spacing
        centres_y = np.arange(-margin, h + margin + spacing, spacing)
        centres_x = np.arange(-margin, w + margin + spacing, spacing)
        lattice = rng.standard_normal((centres_y.size, centres_x.size))
        for i, (dy, dx) in enumerate(offsets):
            ky = _kernel(np.arange(h) - dy, centres_y, spacing)
            rows[i].append((weights[octave] * (ky @ lattice)).astype(np.float32))
            cols[i].append(_kernel(np.arange(w) - dx, centres_x, spacing).astype(np.float32))
    return [
        np.concatenate(r, axis=1) @ np.concatenate(c, axis=1).T
        for r, c in zip(rows, cols, strict=True)
    ]


def cover_threshold(field: np.ndarray, cover: float) -> float:
    """The field value above which `cover` of the tile lies (its own quantile, per tile).

    Thresholding the tile's own field makes the covered fraction exact on every tile rather
    than right on average; the quantile is taken on a regular subsample (about a million
    pixels) so a 6000 x 6000 tile costs no full sort.
    """
    step = max(1, int(np.ceil(np.sqrt(field.size / 2**20))))
    return float(np.quantile(field[::step, ::step], 1.0 - cover))


def unit_direction(rng: np.random.Generator) -> tuple[float, float]:
    """A uniformly random direction as (dy, dx) on the unit circle."""
    angle = rng.uniform(0.0, 2.0 * np.pi)
    return float(np.sin(angle)), float(np.cos(angle))


def pixel_offset(direction: tuple[float, float], length: float) -> tuple[int, int]:
    """Whole-pixel (dy, dx) moving `length` pixels along the dominant axis of `direction`.

    The direction is scaled to unit max-norm before rounding, so the dominant component is
    exactly `length` and the other its rounded share: doubling the length always moves further
    (Euclidean rounding would give (1, 1) for lengths 1 and 2 on a diagonal), never less on
    either axis, and never (0, 0).
    """
    dy, dx = direction
    norm = max(abs(dy), abs(dx))
    return int(np.round(length * dy / norm)), int(np.round(length * dx / norm))


def shift_replicate(array: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """`array` [C, H, W] moved by (dy, dx) pixels, the exposed border repeating the edge.

    `out[:, y, x] = array[:, y - dy, x - dx]` with indices clamped to the tile: a loader that
    reads a misregistered raster sees real data shifted, never a blank stripe.
    """
    _, h, w = array.shape
    rows = np.clip(np.arange(h) - dy, 0, h - 1)
    cols = np.clip(np.arange(w) - dx, 0, w - 1)
    return array[:, rows[:, None], cols[None, :]]


def sar_scale(modality: Modality) -> str:
    """How a SAR raster encodes backscatter: `dB`, `amplitude` or `intensity`.

    The description decides when it says so (`[dB]`, `decibel`, `amplitude`); otherwise a
    negative band mean means logarithmic units (linear intensity and amplitude are never
    negative), and anything else is taken as linear intensity.
    """
    text = modality.description.lower()
    if re.search(r"\bdb\b|decibel", text) or any(m < 0 for m in modality.mean):
        return "dB"
    if "amplitude" in text:
        return "amplitude"
    return "intensity"


def band(values: tuple[float, ...]) -> np.ndarray:
    """Per-band statistics shaped to broadcast over [C, H, W]."""
    return np.asarray(values, dtype=np.float32)[:, None, None]


class Tile:
    """What one call of a model knows: the corruption's name, its parameter at the severity
    asked for (`value`), and the tile's random streams."""

    def __init__(self, name: str, value: float, seed: int, tile_name: str) -> None:
        self.name, self.value = name, value
        self._key = (seed, tile_name)
        self._cache: dict[tuple[str, tuple[int, int]], object] = {}

    def rng(self, stream: str) -> np.random.Generator:
        """The generator of one component of the model on this tile (`stream_rng`): name a
        stream per component, and per modality where each draws its own."""
        return stream_rng(self._key[0], self.name, self._key[1], stream)

    def shared(self, stream: str, shape: tuple[int, int], make: Callable[[], object]) -> object:
        """A per-tile quantity computed once per call and shared by every target modality."""
        if (stream, shape) not in self._cache:
            self._cache[(stream, shape)] = make()
        return self._cache[(stream, shape)]
