"""MissBench's own test-time corruptions of present modalities, in the style of ImageNet-C.

A missing modality is the extreme of a degraded one; these corruptions fill the range between:
clouds and haze over optical bands, voids in elevation, speckle in SAR, misregistration of the
auxiliary sensors, and sensor noise everywhere, each at severities 1..5. Each is a documented
physical model applied deterministically per test tile: the same tile gets the same corruption
for every scenario and method, and severities nest (the same clouds grow, the same voids
widen), so robustness curves compare like with like. See docs/corruptions.md, whose tables and
sections are rendered from the records below.

Each corruption is one block of this module: the constants of its model, the model (the
function its record applies) and its registered record. Adding a corruption is one such block,
here or in a plugin package's module (entry point `missbench.corruptions`).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from benchmark.core.spec import MODALITY_KINDS, Modality
from benchmark.corrupt.blocks import (
    Tile,
    band,
    cover_threshold,
    pixel_offset,
    sar_scale,
    shift_replicate,
    smooth_fields,
    unit_direction,
)
from benchmark.corrupt.corruption import Corruption
from benchmark.corrupt.registry import register_corruption


def _fraction(value: float) -> str:
    """A constant as the fraction it was written as (1/4, 1/16) in the docs' text."""
    return str(Fraction(value).limit_denominator(64))


# ------------------------------------------------------------------------------------- clouds
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
    out = bright * band(m.std)
    out += band(m.mean)
    out -= ground
    out *= alpha
    out += ground  # ground + alpha (radiance - ground), in place: tiles reach 6000 x 6000
    return out, valid


register_corruption(
    Corruption(
        name="clouds",
        kinds=("optical",),
        apply=_clouds,
        parameter="opaque cloud cover (fraction of the tile)",
        values=(0.10, 0.20, 0.35, 0.50, 0.70),
        targets=(
            "every optical modality of the dataset (e.g. both `rgb` and `nir` of a "
            "four-modality dataset). One sky covers all of them: the same clouds, at the same "
            "place, in every optical modality of the tile; clouds are opaque in NIR too."
        ),
        physics=(
            "Cumulus clouds are the bright, opaque top of a turbulent field. A smooth fractal "
            "Gaussian random field over the tile (three octaves; lattice spacing "
            f"{_fraction(CLOUD_SCALE)} of the tile's shorter side, halving per octave) is "
            "thresholded at the tile's own quantile so that exactly the stated fraction of the "
            f"tile is **opaque cloud**. Below the threshold, a **rim** {CLOUD_RIM:g} field "
            "standard deviations wide fades the cloud out smoothly (a smoothstep opacity "
            "`alpha` from 1 to 0): there the observed value is `ground + alpha (cloud - "
            f"ground)`. Cloud radiance per band is `mean + ({CLOUD_BRIGHTNESS:g} + "
            f"{CLOUD_TEXTURE:g} T) std` in the band's raw units, where `T` is a fine smooth "
            "texture field: bright, slightly lumpy, never flat. Each cloud casts a **shadow**: "
            "the same opacity pattern displaced along one seeded sun direction by "
            f"{SHADOW_DISTANCE:g} of the cloud scale (cloud height x tan of the sun zenith "
            f"angle, in pixels), which leaves {SHADOW_TRANSMISSION:.0%} of the ground radiance "
            "in full shadow (diffuse skylight only) and fades with the same rim. Because the "
            "field is continuous beyond the tile, a cloud just outside the tile can cast its "
            "shadow inside. The cloud size is relative to the tile (the spec does not know the "
            "ground sampling distance), so every tile shows a few clouds whatever its size."
        ),
        severity_step=(
            "more of the sky is covered. The same field is thresholded lower, so the same "
            "clouds grow and their shadows with them; the rim adds a semi-transparent fringe "
            "of roughly 7-10 % of the tile around the opaque cover."
        ),
        invalid=(
            "the opaque core (exactly the stated cover per tile): the ground is not observed "
            "at all. The rim and the shadows are valid but degraded."
        ),
    )
)

# --------------------------------------------------------------------------------------- haze
HAZE_AIRLIGHT = 2.0
"""Airlight = band mean + this many band stds (bright, scattered sunlight)."""
HAZE_VARIATION = 0.25
"""Log-std of the smooth multiplicative variation of optical depth over the tile."""


def _haze_transmission(tile: Tile, shape: tuple[int, int]) -> np.ndarray:
    (field,) = smooth_fields(tile.rng("depth"), shape, max(shape) / 2, 1)
    field -= cover_threshold(field, 0.5)  # centred on the tile's median: t0 is the tile median
    depth = -np.log(tile.value) * np.exp(HAZE_VARIATION * field)
    return np.exp(-depth).astype(np.float32)


def _haze(tile: Tile, x: np.ndarray, m: Modality) -> tuple[np.ndarray, None]:
    shape = x.shape[1:]
    t = tile.shared("haze", shape, lambda: _haze_transmission(tile, shape))
    airlight = band(m.mean) + HAZE_AIRLIGHT * band(m.std)
    return x * t + airlight * (1.0 - t), None


register_corruption(
    Corruption(
        name="haze",
        kinds=("optical",),
        apply=_haze,
        parameter="transmission t (tile median)",
        values=(0.85, 0.70, 0.55, 0.45, 0.35),
        targets="every optical modality (one atmosphere over all bands).",
        physics=(
            "Koschmieder's atmospheric scattering model `I = J t + A (1 - t)`: the ground "
            "radiance `J` is attenuated by the transmission `t`, and sunlight scattered into "
            "the line of sight adds the airlight `A`. The airlight per band is bright, "
            f"`A = mean + {HAZE_AIRLIGHT:g} std` of the band. The optical depth `-ln t` varies "
            f"smoothly over the tile: `t(x) = t0 ^ exp({HAZE_VARIATION:g} F(x))` with `F` a "
            "smooth field (lattice spacing half the tile's longer side) centred on the tile's "
            "median, so `t0` is the tile's median transmission and thicker haze lowers the "
            "transmission at every pixel. Every pixel stays observed, with lost contrast."
        ),
        severity_step="thicker haze: lower transmission everywhere at once.",
    )
)

# ---------------------------------------------------------------------------------- dsm_voids
VOID_SCALE = 1 / 16
"""Void lattice spacing as a fraction of the shorter side: voids are smaller than clouds."""


def _void_mask(tile: Tile, shape: tuple[int, int]) -> np.ndarray:
    (field,) = smooth_fields(tile.rng("field"), shape, max(min(shape) * VOID_SCALE, 2.0), 2)
    return field >= cover_threshold(field, tile.value)


def _dsm_voids(tile: Tile, x: np.ndarray, m: Modality) -> tuple[np.ndarray, np.ndarray]:
    shape = x.shape[1:]
    void = tile.shared("voids", shape, lambda: _void_mask(tile, shape))
    out = np.array(x, dtype=np.float32)
    out[:, void] = np.asarray(m.mean, dtype=np.float32)[:, None]
    return out, ~void


register_corruption(
    Corruption(
        name="dsm_voids",
        kinds=("elevation",),
        apply=_dsm_voids,
        parameter="void fraction of the tile",
        values=(0.03, 0.07, 0.12, 0.20, 0.30),
        targets=(
            "every elevation modality (`dsm`, `ndsm`, ...). A DSM and an nDSM of the same tile "
            "share the same voids (the nDSM is derived from the DSM)."
        ),
        physics=(
            "Photogrammetric DSMs have nodata holes where stereo matching fails: cast shadows, "
            "water, occlusions, homogeneous roofs. Voids are blobs of a thresholded smooth "
            f"random field (two octaves; lattice spacing {_fraction(VOID_SCALE)} of the tile's "
            "shorter side, so voids are smaller than clouds). Inside a void the raster holds "
            "the band mean, which is what a loader's nodata fill produces (the mean is 0 after "
            "normalising)."
        ),
        severity_step=(
            "a larger share of the tile is void; the same field thresholded lower, so the same "
            "holes widen and new ones open."
        ),
        invalid=(
            "every void pixel (exactly the stated fraction per tile): no height was measured "
            "there (the value is the band mean)."
        ),
    )
)

# ------------------------------------------------------------------------------------ speckle
SPECKLE_FLOOR = 1e-6
"""Smallest speckle factor (-60 dB): a single-look draw can underflow to zero in float32."""


def _speckle(tile: Tile, x: np.ndarray, m: Modality) -> tuple[np.ndarray, None]:
    looks = tile.value
    gain = tile.rng(m.name).standard_gamma(looks, size=x.shape, dtype=np.float32)
    gain = np.maximum(gain / np.float32(looks), np.float32(SPECKLE_FLOOR))
    scale = sar_scale(m)
    if scale == "dB":
        return x + 10.0 * np.log10(gain), None
    return x * (np.sqrt(gain) if scale == "amplitude" else gain), None


register_corruption(
    Corruption(
        name="speckle",
        kinds=("sar",),
        apply=_speckle,
        parameter="equivalent number of looks L",
        values=(16, 8, 4, 2, 1),
        targets="every SAR modality.",
        physics=(
            "Fully developed speckle is multiplicative: the observed intensity is the true "
            "intensity times a Gamma(L, 1/L) variable `g` (mean 1, variance 1/L), where L is "
            "the equivalent number of looks averaged (multi-looking). It is applied in linear "
            "intensity:\n\n"
            f"* a raster in **dB** gets `+ 10 log10(g)` (the factor floored at {SPECKLE_FLOOR:g}, "
            f"i.e. {10 * np.log10(SPECKLE_FLOOR):.0f} dB);\n"
            "* a raster in **amplitude** is multiplied by `sqrt(g)`;\n"
            "* a raster in **linear intensity** is multiplied by `g`.\n\n"
            "Which of the three a modality is (`sar_scale(modality)`): its description decides "
            "when it says so (`dB` as a word, e.g. `SAR backscatter [dB]`, or `decibel` -> dB; "
            "`amplitude` -> amplitude); otherwise a negative band mean means logarithmic units "
            "(intensity and amplitude are never negative) -> dB; anything else (e.g. an 8-bit "
            "`SAR backscatter` product) is taken as linear intensity. Name the unit in the "
            "dataset card's description to be explicit."
        ),
        severity_step="fewer looks: the speckle variance doubles per step (1 = single look).",
    )
)

# ---------------------------------------------------------------------------- misregistration


def _misregistration(tile: Tile, x: np.ndarray, m: Modality) -> tuple[np.ndarray, None]:
    dy, dx = pixel_offset(unit_direction(tile.rng(m.name)), tile.value)
    return shift_replicate(x, dy, dx), None


register_corruption(
    Corruption(
        name="misregistration",
        kinds=tuple(k for k in MODALITY_KINDS if k != "optical"),
        relative=True,
        apply=_misregistration,
        parameter="shift along the dominant axis (pixels)",
        values=(1, 2, 4, 8, 16),
        targets=(
            "every modality whose kind is not optical (the auxiliary sensors: DSM, SAR, ...), "
            "each shifted against the optical ones. A dataset without an optical modality "
            "shifts every modality but the first in spec order (the first is the reference)."
        ),
        physics=(
            "Co-registration error between sensors: each target raster is translated by whole "
            "pixels in a seeded direction of its own (independent sensors, independent "
            "errors). The shift moves `k` pixels along the direction's dominant axis and the "
            "rounded proportional share along the other (a Euclidean length between `k` and "
            "`k sqrt 2`). The exposed border repeats the edge row or column, as a resampled "
            "raster would, never a blank stripe. The pixels are real data from the wrong place."
        ),
        severity_step="the shift doubles per step, along the same direction.",
    )
)

# -------------------------------------------------------------------------------------- noise


def _noise(tile: Tile, x: np.ndarray, m: Modality) -> tuple[np.ndarray, None]:
    noise = tile.rng(m.name).standard_normal(size=x.shape, dtype=np.float32)
    return x + np.float32(tile.value) * band(m.std) * noise, None


register_corruption(
    Corruption(
        name="noise",
        kinds=MODALITY_KINDS,
        apply=_noise,
        parameter="noise sigma (x band std)",
        values=(0.05, 0.10, 0.20, 0.35, 0.50),
        targets="every modality.",
        physics=(
            "Additive white Gaussian sensor noise (read-out and quantisation noise), "
            "independent per pixel and band, with per-band sigma = factor x the band's "
            "standard deviation from the dataset statistics."
        ),
        severity_step="the same noise, scaled up.",
    )
)
