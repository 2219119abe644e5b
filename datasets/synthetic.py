"""The embedded default dataset: procedurally generated urban scenes, cached on disk.

No downloads: scenes come from `datasets.synthetic_scene` seeded by the options. Every variant
(`synthetic` = optical + DSM, `synthetic_sar` = optical + SAR, `synthetic_3m` = all three,
`synthetic_4m` = RGB + NIR + DSM + SAR, `synthetic_dsm_led` = the original generator's optical
+ DSM) reads one cache per set of options holding every band, so switching between variants
with the same options never regenerates. `synthetic_4m` regroups the stored bands: `rgb` is
(R, G, blue) and `nir` is the optical NIR band.

The cache folder is named after `GENERATOR_VERSION` and a hash of every option, so tiles of an
older generator or of other options are never reused. Layout (each split directory appears
atomically, so a crash never leaves a half cache that is later trusted)::

    <root>/synthetic/v<version>-<hash>/meta.json            options, train statistics, counts
    <root>/synthetic/v<version>-<hash>/<split>/optical.npy  float32 [N, 3, H, W] NIR, R, G
                                              /blue.npy     float32 [N, 1, H, W]
                                              /dsm.npy      float32 [N, 1, H, W]
                                              /sar.npy      float32 [N, 1, H, W]
                                              /mask.npy     uint8   [N, H, W]
                                              /split.json   class pixel counts (+ stats: train)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import tempfile
import zlib
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from benchmark.api import (
    MASK,
    BenchmarkError,
    DatasetOptions,
    DatasetSpec,
    Modality,
    MultiModalDataset,
    RawSample,
    Window,
    atomic_write_json,
    register_dataset,
    track,
    write_target,
)
from datasets.files.tile_cache import fallback_root, writable
from datasets.synthetic_scene import (
    CLASSES,
    GENERATOR_VERSION,
    LEGACY_STYLE,
    PALETTE,
    SceneStyle,
    generate_scene,
)

log = logging.getLogger(__name__)

ALL_MODALITIES = ("optical", "dsm", "sar")
STORED = ("optical", "dsm", "sar", "blue")
"""Arrays the cache holds; every variant's modalities are bands of these (`_SOURCES`)."""
_STORED_CHANNELS = {"optical": 3, "dsm": 1, "sar": 1, "blue": 1}
_SOURCES: dict[str, tuple[tuple[str, int], ...]] = {
    "optical": (("optical", 0), ("optical", 1), ("optical", 2)),
    "dsm": (("dsm", 0),),
    "sar": (("sar", 0),),
    "rgb": (("optical", 1), ("optical", 2), ("blue", 0)),
    "nir": (("optical", 0),),
}
"""Each modality as (stored array, channel) pairs: `rgb` and `nir` re-split the optical bands."""
_DESCRIPTIONS = {
    "optical": "near-infrared, red, green reflectance [0-1]",
    "dsm": "surface height [m]",
    "sar": "SAR backscatter [dB]",
    "rgb": "red, green, blue reflectance [0-1]",
    "nir": "near-infrared reflectance [0-1]",
}
_SPLIT_FILE = "split.json"


@dataclasses.dataclass(frozen=True)
class SyntheticOptions(DatasetOptions):
    """Options of the synthetic datasets; every one of them changes the generated scenes.

    `imbalance` >= 1 thins the rare classes: each car, clutter object and pool that the layout
    places is kept with probability 1 / imbalance (the surface below stays), so their pixel
    share falls by about that factor while everything else in the scene stays identical.

    `optical_ambiguity` and `dsm_quality` (both in [0, 1]) set how much each sensor reveals
    (`datasets.synthetic_scene.SceneStyle` lists every constant they move). 1 and 1 is the
    original, DSM-led generator (`synthetic_dsm_led`); the defaults, 0 and 0, are calibrated so
    that dedicated optical-only models score well above DSM-only ones and fusion adds a few
    points, the pattern published for ISPRS Vaihingen and Potsdam (see docs/data.md).
    """

    tile_size: int = 256
    train_tiles: int = 64
    val_tiles: int = 12
    test_tiles: int = 24
    seed: int = 0
    imbalance: float = 1.0
    optical_ambiguity: float = 0.0
    dsm_quality: float = 0.0

    def __post_init__(self) -> None:
        for name in ("tile_size", "train_tiles", "val_tiles", "test_tiles", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise BenchmarkError(f"synthetic option {name} must be an integer, got {value!r}")
        for name in ("train_tiles", "val_tiles", "test_tiles"):
            if getattr(self, name) < 1:
                raise BenchmarkError(
                    f"synthetic option {name} must be positive, got {getattr(self, name)}"
                )
        if self.tile_size < 64:
            raise BenchmarkError(f"synthetic option tile_size must be >= 64, got {self.tile_size}")
        if self.seed < 0:
            raise BenchmarkError(f"synthetic option seed must be >= 0, got {self.seed}")
        imbalance = self.imbalance
        if isinstance(imbalance, bool) or not isinstance(imbalance, int | float):
            raise BenchmarkError(f"synthetic option imbalance must be a number, got {imbalance!r}")
        if not imbalance >= 1.0:  # also rejects NaN
            raise BenchmarkError(f"synthetic option imbalance must be >= 1, got {imbalance}")
        object.__setattr__(self, "imbalance", float(imbalance))
        for name in ("optical_ambiguity", "dsm_quality"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise BenchmarkError(f"synthetic option {name} must be a number, got {value!r}")
            if not 0.0 <= value <= 1.0:  # also rejects NaN
                raise BenchmarkError(f"synthetic option {name} must be in [0, 1], got {value}")
            object.__setattr__(self, name, float(value))

    @property
    def style(self) -> SceneStyle:
        """The generator style these options ask for."""
        style = SceneStyle(self.optical_ambiguity, self.dsm_quality)
        return LEGACY_STYLE if style == LEGACY_STYLE else style

    def tiles(self, split: str) -> int:
        return {"train": self.train_tiles, "val": self.val_tiles, "test": self.test_tiles}[split]

    def cache_key(self) -> str:
        """Short stable hash of the options (all of them affect the cached content)."""
        text = json.dumps(dataclasses.asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:10]


def scene_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """Independent stream per (seed, split, tile): tile i never depends on the tile count."""
    key = zlib.crc32(split.encode())
    return np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(key, index)))


# ---------------------------------------------------------------------------------- the cache


def cache_dir(root: Path, options: SyntheticOptions) -> Path:
    """Where the generated tiles live: under the data root, or, when the data root is
    read-only and does not already hold them, under the user's cache folder (the same
    fallback as the tile cache of the real datasets)."""
    name = f"v{GENERATOR_VERSION}-{options.cache_key()}"
    primary = Path(root) / "synthetic" / name
    if (primary / "train" / _SPLIT_FILE).exists() or writable(Path(root)):
        return primary
    return fallback_root(Path(root)) / "synthetic" / name


def _generate_split(directory: Path, split: str, options: SyntheticOptions) -> None:
    """Generate one split into a temp dir beside `directory`, then rename it into place."""
    n, size = options.tiles(split), options.tile_size
    write_target(directory).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{split}-tmp-"))
    try:
        arrays = {
            name: np.lib.format.open_memmap(
                tmp / f"{name}.npy",
                mode="w+",
                dtype=np.float32,
                shape=(n, _STORED_CHANNELS[name], size, size),
            )
            for name in STORED
        }
        masks = np.lib.format.open_memmap(
            tmp / f"{MASK}.npy", mode="w+", dtype=np.uint8, shape=(n, size, size)
        )
        counts = np.zeros(len(CLASSES), np.int64)
        sums = {m: np.zeros(_STORED_CHANNELS[m]) for m in STORED}
        squares = {m: np.zeros(_STORED_CHANNELS[m]) for m in STORED}
        style = options.style
        for i in track(range(n), f"generating synthetic {split}", total=n):
            scene = generate_scene(
                size, scene_rng(options.seed, split, i), options.imbalance, style
            )
            masks[i] = scene[MASK]
            counts += np.bincount(scene[MASK].ravel(), minlength=len(CLASSES))
            for name in STORED:
                arrays[name][i] = scene[name]
                data = scene[name].astype(np.float64).reshape(_STORED_CHANNELS[name], -1)
                sums[name] += data.sum(axis=1)
                squares[name] += (data**2).sum(axis=1)
        for arr in (*arrays.values(), masks):
            arr.flush()
        del arrays, masks
        pixels = n * size * size
        info: dict[str, Any] = {"tiles": n, "class_pixel_counts": counts.tolist()}
        stats = {}
        for name in STORED:
            mean = sums[name] / pixels
            std = np.sqrt(np.maximum(squares[name] / pixels - mean**2, 1e-12))
            stats[name] = {"mean": mean.tolist(), "std": std.tolist()}
        info["stats"] = stats
        (tmp / _SPLIT_FILE).write_text(json.dumps(info, indent=2))
        try:
            os.replace(tmp, directory)
        except OSError:
            if not (directory / _SPLIT_FILE).exists():
                raise
            log.info("synthetic %s split was generated concurrently; using that one", split)
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def ensure_split(root: Path, options: SyntheticOptions, split: str) -> Path:
    """Path of a complete cached split, generating it first when absent."""
    base = cache_dir(root, options)
    directory = base / split
    if not (directory / _SPLIT_FILE).exists():
        if directory.exists():  # not produced by us (renames are atomic): do not trust it
            log.warning("discarding incomplete synthetic cache %s", directory)
            shutil.rmtree(directory)
        log.info(
            "generating synthetic %s split (%d tiles) in %s", split, options.tiles(split), base
        )
        _generate_split(directory, split, options)
    if split == "train" and not (base / "meta.json").exists():
        _write_meta(base, options)
    return directory


def _write_meta(base: Path, options: SyntheticOptions) -> None:
    info = json.loads((base / "train" / _SPLIT_FILE).read_text())
    counts = np.asarray(info["class_pixel_counts"], np.float64)
    meta = {
        "generator_version": GENERATOR_VERSION,
        "options": dataclasses.asdict(options),
        "statistics_from": "train",
        "stats": info["stats"],
        "classes": list(CLASSES),
        "train_class_pixel_counts": info["class_pixel_counts"],
        "train_class_frequencies": (counts / max(counts.sum(), 1)).round(5).tolist(),
    }
    atomic_write_json(base / "meta.json", meta)


# -------------------------------------------------------------------------------- the datasets


@register_dataset("synthetic")
class SyntheticDataset(MultiModalDataset):
    """Potsdam-like optical (NIR-R-G) + DSM urban scenes, ordering-matched to ISPRS (optical leads).

    Generated from a seed. The default `optical_ambiguity` / `dsm_quality` make a dedicated
    optical-only model score well above a DSM-only one and fusion add a few points over
    optical, the pattern published for ISPRS Vaihingen and Potsdam; `synthetic_dsm_led` keeps
    the original, DSM-led scenes.

    Sources of the pattern (full references and our measured numbers in docs/data.md):
    Chen et al. 2018, ISPRS Annals IV-2:65 (Vaihingen: radiometric IRRG inputs beat geometric
    DSM inputs, both together beat either); Petrich et al. 2021, Data Science Journal 20:20
    (Vaihingen: adding the nDSM to IRRG gives little in-sample gain, and 14.4 % more
    out-of-sample all-class accuracy on average, their abstract's number); Kampffmeyer et al.
    2018, IEEE JSTARS, doi:10.1109/JSTARS.2018.2834961, and Audebert et al. 2018, ISPRS J.
    140:20 (optical-only networks a few points below optical + DSM fusion). No per-modality
    mIoU table could be retrieved, so the target is the pattern, not a number.
    """

    Options: ClassVar[type[DatasetOptions]] = SyntheticOptions
    MODALITIES: ClassVar[tuple[str, ...]] = ("optical", "dsm")
    GENERATED: ClassVar[bool] = True

    def __init__(self, root: Path, split: str, options: DatasetOptions | None = None) -> None:
        super().__init__(root, split, options)
        if not isinstance(self.options, SyntheticOptions):
            raise BenchmarkError(f"{self.NAME} needs SyntheticOptions, got {type(self.options)}")
        self._dir = ensure_split(self.root, self.options, split)
        self._arrays: dict[str, np.ndarray] | None = None
        self._spec: DatasetSpec | None = None
        self._info = json.loads((self._dir / _SPLIT_FILE).read_text())

    # Memmaps are reopened in each worker process instead of being pickled.
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_arrays"] = None
        return state

    @property
    def cache_dir(self) -> Path:
        return cache_dir(self.root, self.options)

    @property
    def spec(self) -> DatasetSpec:
        if self._spec is None:
            stats = json.loads(
                (ensure_split(self.root, self.options, "train") / _SPLIT_FILE).read_text()
            )
            band_stats = stats["stats"]
            modalities = tuple(
                Modality(
                    name=m,
                    channels=len(_SOURCES[m]),
                    mean=tuple(float(band_stats[a]["mean"][c]) for a, c in _SOURCES[m]),
                    std=tuple(max(float(band_stats[a]["std"][c]), 1e-6) for a, c in _SOURCES[m]),
                    description=_DESCRIPTIONS[m],  # kind: inferred from the name
                )
                for m in self.MODALITIES
            )
            self._spec = DatasetSpec(
                name=self.NAME,
                modalities=modalities,
                classes=CLASSES,
                palette=PALETTE,
                ignore_index=255,
                eval_classes=tuple(range(len(CLASSES))),
                label_set="isprs6",
                description=(self.__doc__ or "").strip(),
            )
        return self._spec

    def _open(self) -> dict[str, np.ndarray]:
        if self._arrays is None:
            needed = sorted({a for m in self.MODALITIES for a, _ in _SOURCES[m]})
            arrays = {a: np.load(self._dir / f"{a}.npy", mmap_mode="r") for a in needed}
            arrays[MASK] = np.load(self._dir / f"{MASK}.npy", mmap_mode="r")
            expected = (self.options.tiles(self.split), self.options.tile_size)
            for name, arr in arrays.items():
                if (arr.shape[0], arr.shape[-1]) != expected:
                    raise BenchmarkError(
                        f"synthetic cache {self._dir} is inconsistent ({name} {arr.shape}); "
                        "delete it to regenerate"
                    )
            self._arrays = arrays
        return self._arrays

    def __len__(self) -> int:
        return int(self._info["tiles"])

    def tile_shape(self, index: int) -> tuple[int, int]:
        self._check_index(index)
        return self.options.tile_size, self.options.tile_size

    def _check_index(self, index: int) -> None:
        if not 0 <= index < len(self):
            raise IndexError(f"tile {index} out of range for {len(self)} {self.split} tiles")

    def load(self, index: int, window: Window | None = None) -> RawSample:
        self._check_index(index)
        rows, cols = window if window is not None else (slice(None), slice(None))
        arrays = self._open()
        sample = {}
        for m in self.MODALITIES:
            sources = _SOURCES[m]
            if all(a == sources[0][0] for a, _ in sources) and [c for _, c in sources] == list(
                range(_STORED_CHANNELS[sources[0][0]])
            ):  # the whole stored array (optical, dsm, sar): one slice
                band = arrays[sources[0][0]][index, :, rows, cols]
            else:
                band = np.stack([arrays[a][index, c, rows, cols] for a, c in sources])
            sample[m] = np.ascontiguousarray(band, dtype=np.float32)
        sample[MASK] = np.ascontiguousarray(arrays[MASK][index, rows, cols], dtype=np.int64)
        return sample

    def class_pixel_counts(self) -> np.ndarray:
        """Read from the cache's bookkeeping instead of scanning every mask."""
        return np.asarray(self._info["class_pixel_counts"], np.int64)


@register_dataset("synthetic_sar")
class SyntheticSARDataset(SyntheticDataset):
    """Optical (NIR-R-G) + single-channel SAR backscatter (dB, speckled) urban scenes."""

    MODALITIES = ("optical", "sar")


@register_dataset("synthetic_3m")
class Synthetic3MDataset(SyntheticDataset):
    """Optical (NIR-R-G) + DSM + SAR urban scenes, all three modalities."""

    MODALITIES = ALL_MODALITIES


@dataclasses.dataclass(frozen=True)
class DsmLedOptions(SyntheticOptions):
    """`SyntheticOptions` whose defaults are the original generator's (see `synthetic_dsm_led`)."""

    optical_ambiguity: float = 1.0
    dsm_quality: float = 1.0


@register_dataset("synthetic_dsm_led")
class SyntheticDsmLedDataset(SyntheticDataset):
    """The original `synthetic` (generator v1 scenes, bit for bit): the DSM, not optical, leads.

    Optical is deliberately ambiguous (half the roofs road-grey, crowns coloured like lawns)
    and the DSM clean, so a DSM-only model beats an optical-only one, the mirror image of ISPRS
    data: losing the DSM costs most, losing optical little. Use it to check that a method's
    robustness does not hinge on optical being the dominant modality; `synthetic` is the one
    calibrated to ISPRS.
    """

    Options = DsmLedOptions


@register_dataset("synthetic_4m")
class Synthetic4MDataset(SyntheticDataset):
    """RGB + NIR + DSM + SAR over the `synthetic` scenes: four sensors, 15 scenarios.

    Four sensors with distinct physics: `rgb` (R, G, B), `nir` (near-infrared), `dsm`
    (matching DSM) and `sar` (speckled backscatter, dB), over the same scenes as `synthetic`.

    What each one alone separates: `rgb` tells tile and white roofs, saturated cars and blue
    pools (clutter) apart, and is the only one that sees a pool's colour; `nir` is the
    vegetation signal (lawns and crowns are bright, pavement and roofs dark), and keeps it in
    cast shadows, where the visible bands of a lawn and of dark asphalt merge; `dsm` separates
    buildings from pavement and crowns from lawns by height; `sar` marks building walls by
    double bounce and radar shadow, and cars by their metal point scatterers, which survive
    where the DSM smooths a 1.5 m car away and its paint matches the asphalt.
    """

    MODALITIES = ("rgb", "nir", "dsm", "sar")
