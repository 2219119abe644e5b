"""One test-time corruption as a record: what it touches, its physical model in words, its
parameter per severity, and the function that applies it to one modality of one tile.

A record is everything a corruption is: the registry (`benchmark.corrupt.registry`) lists the
records, docs/corruptions.md is rendered from them (`run_benchmark.py list --update-docs`), and
the harness applies them through `Corruption.corrupt`, which owns what every corruption shares
(targets by modality kind, raw float32 arrays in and out, read-only validity masks, untouched
keys passed through), so a model only says what happens to one raster.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from benchmark.core.spec import MASK, MODALITY_KINDS, DatasetSpec, Modality
from benchmark.corrupt.blocks import Tile
from benchmark.system.errors import BenchmarkError

logger = logging.getLogger(__name__)

SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)

Apply = Callable[[Tile, np.ndarray, Modality], tuple[np.ndarray, np.ndarray | None]]
"""A corruption model: (the tile's streams and parameter, one raw [C, H, W] float32 raster, its
modality) -> (the corrupted raster, a bool validity map [H, W] with True = valid, or None when
every pixel stays valid). It must not modify the raster it is given."""

RESERVED_NAMES = ("all", "none")
"""Values of `--corruptions` that are not corruption names."""


@dataclass(frozen=True)
class Corrupted:
    """A corrupted sample: every key of the input (untouched ones as given: treat them as
    read-only), and a read-only validity mask [H, W] (True = valid) for each modality that got
    invalid pixels; modalities without an entry are valid everywhere."""

    arrays: dict[str, np.ndarray]
    validity: dict[str, np.ndarray]


@dataclass(frozen=True)
class Corruption:
    """One corruption as data, so docs and report tables print the same text the code runs."""

    name: str
    """Its `--corruptions` name: lower-case letters, digits and underscores."""
    kinds: tuple[str, ...]
    """The modality kinds it touches (`MODALITY_KINDS`): its targets in a dataset are the
    modalities of these kinds, in spec order."""
    apply: Apply
    """The physical model, applied to one target modality of one tile."""
    parameter: str
    """The per-severity parameter, with its unit."""
    values: tuple[float, ...]
    """The parameter at severities 1..5."""
    targets: str
    """Which modalities it touches, in words (docs)."""
    physics: str
    """The physical model, in words (Markdown; docs)."""
    severity_step: str
    """What one severity step changes."""
    invalid: str = ""
    """What an invalid pixel means; empty when every pixel stays valid (`apply` returns no
    validity map)."""
    nested: bool = True
    """Whether severities nest on every tile: a higher severity damages each tile more and
    keeps every invalid pixel invalid (a model that draws the same random structure at every
    severity and only moves the parameter: the same clouds grow, the same voids widen)."""
    relative: bool = False
    """A mismatch between sensors (misregistration): one modality must stay as the reference.
    Every modality outside `kinds` is one; a dataset without such a modality keeps the first
    modality of spec order as the reference and leaves it untouched."""

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", self.name) or self.name in RESERVED_NAMES:
            raise BenchmarkError(
                f"corruption name {self.name!r}: expected lower-case letters, digits and "
                f"underscores, not {' or '.join(RESERVED_NAMES)}"
            )
        unknown = [k for k in self.kinds if k not in MODALITY_KINDS]
        if not self.kinds or unknown:
            raise BenchmarkError(
                f"corruption {self.name!r}: kinds {self.kinds!r}; expected some of {MODALITY_KINDS}"
            )
        if len(self.values) != len(SEVERITIES):
            raise BenchmarkError(
                f"corruption {self.name!r}: {len(self.values)} values; expected one per severity "
                f"{SEVERITIES}"
            )
        words = ("parameter", "targets", "physics", "severity_step")
        empty = [w for w in words if not getattr(self, w).strip()]
        if empty or not callable(self.apply):
            raise BenchmarkError(
                f"corruption {self.name!r}: needs a callable apply and text for {', '.join(words)}"
                + (f" (empty: {', '.join(empty)})" if empty else "")
            )

    def value(self, severity: int) -> float:
        """The parameter at `severity` (1..5)."""
        check_severity(severity)
        return self.values[severity - 1]

    def modalities(self, spec: DatasetSpec) -> tuple[str, ...]:
        """The modalities of `spec` it touches, in spec order (maybe none)."""
        chosen = tuple(m.name for m in spec.modalities if m.kind in self.kinds)
        if self.relative and len(chosen) == len(spec.modalities):
            return chosen[1:]  # no modality of another kind: the first is the reference
        return chosen

    def corrupt(
        self,
        sample: Mapping[str, np.ndarray],
        spec: DatasetSpec,
        severity: int,
        seed: int,
        tile_name: str,
    ) -> Corrupted:
        """Apply this corruption at `severity` to one test tile of raw [C, H, W] arrays.

        Deterministic in (seed, name, severity, tile_name) alone: never in the sample's
        contents or in which other modalities are present. Target modalities absent from
        `sample` are skipped; the label (`mask`) and every untouched key pass through as the
        same objects (untouched modalities as float32, without a copy when they already are);
        the inputs are never modified.
        """
        tile = Tile(self.name, self.value(severity), seed, tile_name)
        arrays = {
            key: value if key == MASK or key not in spec.modality_names else _float32(value)
            for key, value in sample.items()
        }
        validity: dict[str, np.ndarray] = {}
        for modality in self.modalities(spec):
            if modality not in sample:
                continue
            m = spec.modality(modality)
            x = arrays[modality]
            if x.ndim != 3 or x.shape[0] != m.channels:
                raise ValueError(
                    f"modality {modality!r}: expected [{m.channels}, H, W], got {list(x.shape)}"
                )
            out, valid = self.apply(tile, x, m)
            arrays[modality] = np.asarray(out, dtype=np.float32)
            if valid is not None and not valid.all():
                valid.flags.writeable = False  # one sky's mask may be shared by several modalities
                validity[modality] = valid
        logger.debug(
            "%s severity %d on tile %s: %s",
            self.name,
            severity,
            tile_name,
            ", ".join(validity) or "-",
        )
        return Corrupted(arrays=arrays, validity=validity)


def check_severity(severity: int) -> None:
    """Refuse anything but an integer severity in `SEVERITIES` (one line)."""
    if (
        isinstance(severity, bool)
        or not isinstance(severity, int | np.integer)
        or (severity not in SEVERITIES)
    ):
        raise BenchmarkError(f"bad severity {severity!r}; choose from {SEVERITIES}")


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


def _float32(value: np.ndarray) -> np.ndarray:
    return np.asarray(value).astype(np.float32, copy=False)
