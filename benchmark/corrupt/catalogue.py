"""Test-time corruptions of present modalities, in the style of ImageNet-C.

A missing modality is the extreme of a degraded one; these corruptions fill the range between:
clouds and haze over optical bands, voids in elevation, speckle in SAR, misregistration of the
auxiliary sensors, and sensor noise everywhere, each at severities 1..5. Each is a documented
physical model (`Corruption.physics`) with a documented severity step (`Corruption.parameter`,
`Corruption.values`), applied deterministically per test tile: the same tile gets the same
corruption for every scenario and method, and severities nest (the same clouds grow, the same
voids widen), so robustness curves compare like with like. See docs/corruptions.md.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from benchmark.core.spec import MASK, DatasetSpec
from benchmark.corrupt.models import (
    APPLY,
    CLOUD_BRIGHTNESS,
    HAZE_AIRLIGHT,
    HAZE_VARIATION,
    SHADOW_TRANSMISSION,
    Tile,
    sar_scale,
)
from benchmark.system.errors import BenchmarkError

__all__ = [
    "CORRUPTIONS",
    "SEVERITIES",
    "Corrupted",
    "Corruption",
    "corrupt",
    "parse_corruptions",
    "parse_severities",
    "sar_scale",
    "target_modalities",
]

logger = logging.getLogger(__name__)

SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class Corruption:
    """One corruption as data, so docs and report tables print the same text the code runs."""

    name: str
    targets: str
    """Which modalities it touches, chosen by `Modality.kind`."""
    physics: str
    """The physical model, in words."""
    severity_step: str
    """What one severity step changes."""
    parameter: str
    """The per-severity parameter, with its unit."""
    values: tuple[float, ...]
    """The parameter at severities 1..5."""
    invalid: str = ""
    """What an invalid pixel means; empty when every pixel stays valid."""

    def value(self, severity: int) -> float:
        """The parameter at `severity` (1..5)."""
        _check_severity(severity)
        return self.values[severity - 1]


CORRUPTIONS: dict[str, Corruption] = {
    c.name: c
    for c in (
        Corruption(
            name="clouds",
            targets="optical modalities (every one: clouds are opaque in NIR too)",
            physics=(
                "Opaque cumulus: a smooth fractal random field thresholded at the cover "
                "fraction; a soft semi-transparent rim blends cloud radiance (band mean + "
                f"{CLOUD_BRIGHTNESS:g} std, slightly textured) over the ground; each cloud "
                "casts a shadow, the cloud displaced along one seeded sun direction, leaving "
                f"{SHADOW_TRANSMISSION:.0%} of the ground radiance."
            ),
            severity_step="more of the sky is covered: the same clouds grow (masks nest)",
            parameter="opaque cloud cover (fraction of the tile)",
            values=(0.10, 0.20, 0.35, 0.50, 0.70),
            invalid="under the opaque cloud core: the ground is not observed at all",
        ),
        Corruption(
            name="haze",
            targets="optical modalities",
            physics=(
                "Atmospheric scattering I = J t + A (1 - t): ground radiance J attenuated by "
                f"transmission t plus airlight A (band mean + {HAZE_AIRLIGHT:g} std); the "
                "optical depth -ln t varies smoothly over the tile (lognormal, sigma "
                f"{HAZE_VARIATION:g})."
            ),
            severity_step="thicker haze: lower mean transmission, everywhere at once",
            parameter="transmission t (tile median)",
            values=(0.85, 0.70, 0.55, 0.45, 0.35),
        ),
        Corruption(
            name="dsm_voids",
            targets="elevation modalities",
            physics=(
                "Nodata holes of stereo matching (shadows, water, occlusions): blobs of a "
                "thresholded smooth random field; the raster holds the band mean there, "
                "what a loader's nodata fill produces."
            ),
            severity_step="a larger share of the tile is void: the same holes widen",
            parameter="void fraction of the tile",
            values=(0.03, 0.07, 0.12, 0.20, 0.30),
            invalid="inside a void: no height was measured (the value is the band mean)",
        ),
        Corruption(
            name="speckle",
            targets="SAR modalities",
            physics=(
                "Fully developed multiplicative speckle: intensity times Gamma(L, 1/L) "
                "(mean 1, variance 1/L), applied in linear intensity; a dB raster gets "
                "+10 log10 of it, an amplitude raster its square root."
            ),
            severity_step="fewer looks averaged: speckle variance doubles per step",
            parameter="equivalent number of looks L",
            values=(16, 8, 4, 2, 1),
        ),
        Corruption(
            name="misregistration",
            targets=(
                "every non-optical modality, shifted against the optical ones (without an "
                "optical modality: every modality but the first in spec order)"
            ),
            physics=(
                "Co-registration error between sensors: the raster is translated by whole "
                "pixels in a seeded direction per modality (the shift length along its "
                "dominant axis, the other axis in proportion); the exposed border repeats "
                "the edge row or column."
            ),
            severity_step="the shift doubles per step along the same direction",
            parameter="shift along the dominant axis (pixels)",
            values=(1, 2, 4, 8, 16),
        ),
        Corruption(
            name="noise",
            targets="every modality",
            physics=(
                "Additive white Gaussian sensor noise, per band sigma = factor x the band's "
                "standard deviation from the dataset statistics."
            ),
            severity_step="the same noise, scaled up",
            parameter="noise sigma (x band std)",
            values=(0.05, 0.10, 0.20, 0.35, 0.50),
        ),
    )
}
"""Every corruption, in the order docs and reports list them."""


@dataclass(frozen=True)
class Corrupted:
    """A corrupted sample: every key of the input (untouched ones as given: treat them as
    read-only), and a read-only validity mask [H, W] (True = valid) for each modality that got
    invalid pixels; modalities without an entry are valid everywhere."""

    arrays: dict[str, np.ndarray]
    validity: dict[str, np.ndarray]


def parse_corruptions(text: str) -> tuple[str, ...]:
    """Corruption names from a CLI value: `clouds,haze` or `all`, in the order given."""
    items = [item.strip() for item in text.split(",")]
    choices = ", ".join(("all", *CORRUPTIONS))
    if items == ["all"]:
        return tuple(CORRUPTIONS)
    names: list[str] = []
    for item in items:
        if item not in CORRUPTIONS:
            what = "'all' must stand alone" if item == "all" else "unknown corruption"
            raise BenchmarkError(f"{what}: {item!r} in {text!r}; choose from {choices}")
        if item not in names:
            names.append(item)
    return tuple(names)


def parse_severities(text: str) -> tuple[int, ...]:
    """Severities from a CLI value: `1-5`, `1,3,5`, `3` or `all`; sorted, without repeats."""
    lo, hi = SEVERITIES[0], SEVERITIES[-1]
    if text.strip() == "all":
        return SEVERITIES
    chosen: set[int] = set()
    for item in text.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", item)
        first, last = (int(match[1]), int(match[2] or match[1])) if match else (0, -1)
        if not match or not lo <= first <= last <= hi:
            raise BenchmarkError(
                f"bad severity {item.strip()!r} in {text!r}; use {lo}..{hi} as "
                f"'{lo}-{hi}', '1,3,5', '3' or 'all'"
            )
        chosen.update(range(first, last + 1))
    return tuple(sorted(chosen))


def _check_name(name: str) -> Corruption:
    if name not in CORRUPTIONS:
        raise BenchmarkError(f"unknown corruption {name!r}; choose from {', '.join(CORRUPTIONS)}")
    return CORRUPTIONS[name]


def _check_severity(severity: int) -> None:
    if (
        isinstance(severity, bool)
        or not isinstance(severity, int | np.integer)
        or (severity not in SEVERITIES)
    ):
        raise BenchmarkError(f"bad severity {severity!r}; choose from {SEVERITIES}")


def target_modalities(name: str, spec: DatasetSpec) -> tuple[str, ...]:
    """The modalities of `spec` that corruption `name` touches, in spec order (maybe none)."""
    _check_name(name)
    kinds = {m.name: m.kind for m in spec.modalities}
    by_kind = {"clouds": "optical", "haze": "optical", "dsm_voids": "elevation", "speckle": "sar"}
    if name in by_kind:
        return tuple(m for m, kind in kinds.items() if kind == by_kind[name])
    if name == "misregistration":
        if "optical" not in kinds.values():
            return spec.modality_names[1:]
        return tuple(m for m, kind in kinds.items() if kind != "optical")
    return spec.modality_names


def corrupt(
    sample: Mapping[str, np.ndarray],
    spec: DatasetSpec,
    name: str,
    severity: int,
    seed: int,
    tile_name: str,
) -> Corrupted:
    """Apply corruption `name` at `severity` to one test tile of raw [C, H, W] arrays.

    Deterministic in (seed, name, severity, tile_name) alone: never in the sample's contents
    or in which other modalities are present. Target modalities absent from `sample` are
    skipped; the label (`mask`) and every untouched key pass through as the same objects
    (untouched modalities as float32, without a copy when they already are); the inputs are
    never modified.
    """
    _check_name(name)
    _check_severity(severity)
    tile = Tile(name, CORRUPTIONS[name].value(severity), seed, tile_name)
    arrays = {
        key: value if key == MASK or key not in spec.modality_names else _float32(value)
        for key, value in sample.items()
    }
    validity: dict[str, np.ndarray] = {}
    for modality in target_modalities(name, spec):
        if modality not in sample:
            continue
        m = spec.modality(modality)
        x = arrays[modality]
        if x.ndim != 3 or x.shape[0] != m.channels:
            raise ValueError(
                f"modality {modality!r}: expected [{m.channels}, H, W], got {list(x.shape)}"
            )
        out, valid = APPLY[name](tile, x, m)
        arrays[modality] = np.asarray(out, dtype=np.float32)
        if valid is not None and not valid.all():
            valid.flags.writeable = False  # one sky's mask may be shared by several modalities
            validity[modality] = valid
    logger.debug(
        "%s severity %d on tile %s: %s", name, severity, tile_name, ", ".join(validity) or "-"
    )
    return Corrupted(arrays=arrays, validity=validity)


def _float32(value: np.ndarray) -> np.ndarray:
    return np.asarray(value).astype(np.float32, copy=False)
