"""The embedded default dataset: procedurally generated urban scenes, cached on disk.

No downloads: scenes come from `datasets.synthetic_scene` seeded by the options. All three
variants (`synthetic` = optical + DSM, `synthetic_sar` = optical + SAR, `synthetic_3m` = all
three) read one shared cache holding every modality, so switching variant never regenerates.

Cache layout (each split directory appears atomically, so a crash never leaves a half cache
that is later trusted)::

    <root>/synthetic/v<version>-<hash>/meta.json            options, train statistics, counts
    <root>/synthetic/v<version>-<hash>/<split>/optical.npy  float32 [N, 3, H, W]
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

from benchmark.api import DatasetOptions, MultiModalDataset, RawSample, Window, register_dataset
from benchmark.core.confine import write_target
from benchmark.core.errors import BenchmarkError
from benchmark.core.io import atomic_write_json
from benchmark.core.progress import track
from benchmark.core.spec import MASK, DatasetSpec, Modality
from datasets.synthetic_scene import CLASSES, GENERATOR_VERSION, PALETTE, generate_scene
from datasets.tile_cache import fallback_root, writable

log = logging.getLogger(__name__)

ALL_MODALITIES = ("optical", "dsm", "sar")
_CHANNELS = {"optical": 3, "dsm": 1, "sar": 1}
_DESCRIPTIONS = {
    "optical": "near-infrared, red, green reflectance [0-1]",
    "dsm": "surface height [m]",
    "sar": "SAR backscatter [dB]",
}
_SPLIT_FILE = "split.json"


@dataclasses.dataclass(frozen=True)
class SyntheticOptions(DatasetOptions):
    """Options of the synthetic datasets; every one of them changes the generated scenes.

    `imbalance` >= 1 thins the rare classes: each car, clutter object and pool that the layout
    places is kept with probability 1 / imbalance (the surface below stays), so their pixel
    share falls by about that factor while everything else in the scene stays identical.
    """

    tile_size: int = 256
    train_tiles: int = 64
    val_tiles: int = 12
    test_tiles: int = 24
    seed: int = 0
    imbalance: float = 1.0

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
                shape=(n, _CHANNELS[name], size, size),
            )
            for name in ALL_MODALITIES
        }
        masks = np.lib.format.open_memmap(
            tmp / f"{MASK}.npy", mode="w+", dtype=np.uint8, shape=(n, size, size)
        )
        counts = np.zeros(len(CLASSES), np.int64)
        sums = {m: np.zeros(_CHANNELS[m]) for m in ALL_MODALITIES}
        squares = {m: np.zeros(_CHANNELS[m]) for m in ALL_MODALITIES}
        for i in track(range(n), f"generating synthetic {split}", total=n):
            scene = generate_scene(size, scene_rng(options.seed, split, i), options.imbalance)
            masks[i] = scene[MASK]
            counts += np.bincount(scene[MASK].ravel(), minlength=len(CLASSES))
            for name in ALL_MODALITIES:
                arrays[name][i] = scene[name]
                data = scene[name].astype(np.float64).reshape(_CHANNELS[name], -1)
                sums[name] += data.sum(axis=1)
                squares[name] += (data**2).sum(axis=1)
        for arr in (*arrays.values(), masks):
            arr.flush()
        del arrays, masks
        pixels = n * size * size
        info: dict[str, Any] = {"tiles": n, "class_pixel_counts": counts.tolist()}
        stats = {}
        for name in ALL_MODALITIES:
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
    """Potsdam-like optical (NIR-R-G) + DSM urban scenes, generated from a seed."""

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
            modalities = tuple(
                Modality(
                    name=m,
                    channels=_CHANNELS[m],
                    mean=tuple(float(v) for v in stats["stats"][m]["mean"]),
                    std=tuple(max(float(v), 1e-6) for v in stats["stats"][m]["std"]),
                    description=_DESCRIPTIONS[m],
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
            arrays = {m: np.load(self._dir / f"{m}.npy", mmap_mode="r") for m in self.MODALITIES}
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
        sample = {
            m: np.ascontiguousarray(arrays[m][index, :, rows, cols], dtype=np.float32)
            for m in self.MODALITIES
        }
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
