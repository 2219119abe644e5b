"""The physical models behind `benchmark.corrupt.catalogue`, and their spatial building blocks:
seeded random streams, smooth random fields, shifts.

Kept apart so that module holds only the catalogue and the API; everything here is vectorised
because real test tiles reach 6000 x 6000 pixels.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Sequence

import numpy as np

from benchmark.core.spec import Modality

_KERNEL_REACH = 4.0
"""Lattice margin in kernel widths: a Gaussian is negligible (3e-4) beyond four sigmas."""

# Physical constants of the models (documented in docs/corruptions.md).
CLOUD_SCALE = 1 / 4
"""Cloud lattice spacing as a fraction of the tile's shorter side: a tile shows a few clouds
whatever its size (the spec does not know the ground sampling distance)."""
CLOUD_RIM = 0.25
"""Width of the semi-transparent rim below the opaque threshold, in field standard deviations."""
CLOUD_BRIGHTNESS = 2.5
"""Cloud radiance = band mean + this many band stds."""
CLOUD_TEXTURE = 0.3
"""Cloud radiance varies by this many band stds (a fine smooth field): clouds are not flat."""
SHADOW_DISTANCE = 0.6
"""Shadow displacement as a fraction of the cloud scale (cloud height x tan sun zenith)."""
SHADOW_TRANSMISSION = 0.5
"""Fraction of ground radiance left in a full shadow (diffuse skylight only)."""
HAZE_AIRLIGHT = 2.0
"""Airlight = band mean + this many band stds (bright, scattered sunlight)."""
HAZE_VARIATION = 0.25
"""Log-std of the smooth multiplicative variation of optical depth over the tile."""
VOID_SCALE = 1 / 16
"""Void lattice spacing as a fraction of the shorter side: voids are smaller than clouds."""
SPECKLE_FLOOR = 1e-6
"""Smallest speckle factor (-60 dB): a single-look draw can underflow to zero in float32."""


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


def _band(values: tuple[float, ...]) -> np.ndarray:
    """Per-band statistics shaped to broadcast over [C, H, W]."""
    return np.asarray(values, dtype=np.float32)[:, None, None]


class Tile:
    """What one call knows: the corruption, its parameter, and the per-tile random streams."""

    def __init__(self, name: str, value: float, seed: int, tile_name: str) -> None:
        self.name, self.value = name, value
        self._key = (seed, tile_name)
        self._cache: dict[tuple[str, tuple[int, int]], object] = {}

    def rng(self, stream: str) -> np.random.Generator:
        return stream_rng(self._key[0], self.name, self._key[1], stream)

    def shared(self, stream: str, shape: tuple[int, int], make: Callable[[], object]) -> object:
        """A per-tile quantity computed once per call and shared by every target modality."""
        if (stream, shape) not in self._cache:
            self._cache[(stream, shape)] = make()
        return self._cache[(stream, shape)]


def _rim(field: np.ndarray, threshold: float) -> np.ndarray:
    """Opacity across the rim: 0 at `CLOUD_RIM` below the threshold, smoothly up to exactly 1 at
    it. In place on one fresh array: a 6000 x 6000 tile makes every temporary cost."""
    x = field - np.float32(threshold - CLOUD_RIM)
    x *= np.float32(1.0 / CLOUD_RIM)
    np.clip(x, 0.0, 1.0, out=x)
    cubic = x * np.float32(-2.0)
    cubic += np.float32(3.0)
    x *= x
    x *= cubic
    return x


def _cloud_layers(tile: Tile, shape: tuple[int, int]) -> tuple[np.ndarray, ...]:
    """Cloud opacity, shadow dimming, opaque mask, validity and texture of one tile, shared by
    every optical modality: one sky over all bands."""
    scale = max(min(shape) * CLOUD_SCALE, 4.0)
    dy, dx = unit_direction(tile.rng("sun"))
    offset = (dy * SHADOW_DISTANCE * scale, dx * SHADOW_DISTANCE * scale)
    cloud, shadow = smooth_fields(tile.rng("field"), shape, scale, 3, ((0.0, 0.0), offset))
    (texture,) = smooth_fields(tile.rng("texture"), shape, scale / 8, 2)
    threshold = cover_threshold(cloud, tile.value)
    alpha = _rim(cloud, threshold)  # exactly 1 where opaque
    dim = _rim(shadow, threshold)
    dim *= np.float32(SHADOW_TRANSMISSION - 1.0)
    dim += np.float32(1.0)  # 1 - (1 - transmission) * shadow opacity
    texture *= np.float32(CLOUD_TEXTURE)
    texture += np.float32(CLOUD_BRIGHTNESS)
    opaque = cloud >= threshold
    return alpha, dim, opaque, ~opaque, texture


def _clouds(tile: Tile, x: np.ndarray, m: Modality) -> tuple[np.ndarray, np.ndarray | None]:
    shape = x.shape[1:]
    alpha, dim, opaque, valid, bright = tile.shared(
        "clouds", shape, lambda: _cloud_layers(tile, shape)
    )
    ground = x * dim
    np.copyto(ground, 0.0, where=opaque)  # unseen ground, even NaN, leaves pure cloud radiance
    out = bright * _band(m.std)
    out += _band(m.mean)
    out -= ground
    out *= alpha
    out += ground  # ground + alpha (radiance - ground), in place: tiles reach 6000 x 6000
    return out, valid


def _haze_transmission(tile: Tile, shape: tuple[int, int]) -> np.ndarray:
    (field,) = smooth_fields(tile.rng("depth"), shape, max(shape) / 2, 1)
    field -= cover_threshold(field, 0.5)  # centred on the tile's median: t0 is the tile median
    depth = -np.log(tile.value) * np.exp(HAZE_VARIATION * field)
    return np.exp(-depth).astype(np.float32)


def _haze(tile: Tile, x: np.ndarray, m: Modality) -> tuple[np.ndarray, None]:
    shape = x.shape[1:]
    t = tile.shared("haze", shape, lambda: _haze_transmission(tile, shape))
    airlight = _band(m.mean) + HAZE_AIRLIGHT * _band(m.std)
    return x * t + airlight * (1.0 - t), None


def _void_mask(tile: Tile, shape: tuple[int, int]) -> np.ndarray:
    (field,) = smooth_fields(tile.rng("field"), shape, max(min(shape) * VOID_SCALE, 2.0), 2)
    return field >= cover_threshold(field, tile.value)


def _dsm_voids(tile: Tile, x: np.ndarray, m: Modality) -> tuple[np.ndarray, np.ndarray]:
    shape = x.shape[1:]
    void = tile.shared("voids", shape, lambda: _void_mask(tile, shape))
    out = np.array(x, dtype=np.float32)
    out[:, void] = np.asarray(m.mean, dtype=np.float32)[:, None]
    return out, ~void


def _speckle(tile: Tile, x: np.ndarray, m: Modality) -> tuple[np.ndarray, None]:
    looks = tile.value
    gain = tile.rng(m.name).standard_gamma(looks, size=x.shape, dtype=np.float32)
    gain = np.maximum(gain / np.float32(looks), np.float32(SPECKLE_FLOOR))
    scale = sar_scale(m)
    if scale == "dB":
        return x + 10.0 * np.log10(gain), None
    return x * (np.sqrt(gain) if scale == "amplitude" else gain), None


def _misregistration(tile: Tile, x: np.ndarray, m: Modality) -> tuple[np.ndarray, None]:
    dy, dx = pixel_offset(unit_direction(tile.rng(m.name)), tile.value)
    return shift_replicate(x, dy, dx), None


def _noise(tile: Tile, x: np.ndarray, m: Modality) -> tuple[np.ndarray, None]:
    noise = tile.rng(m.name).standard_normal(size=x.shape, dtype=np.float32)
    return x + np.float32(tile.value) * _band(m.std) * noise, None


APPLY: dict[str, Callable[[Tile, np.ndarray, Modality], tuple[np.ndarray, np.ndarray | None]]]
APPLY = {
    "clouds": _clouds,
    "haze": _haze,
    "dsm_voids": _dsm_voids,
    "speckle": _speckle,
    "misregistration": _misregistration,
    "noise": _noise,
}
