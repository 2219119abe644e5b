"""The dataset contract: raw co-registered tiles per split, described by a `DatasetSpec`.

Loaders return *raw* values (reflectance, metres, dB) so raw loading is testable; the harness
normalises with the spec's statistics. Tiles may be large: `load` takes an optional window so
training crops read only what they need from memory-mapped caches.
"""

from __future__ import annotations

import abc
import contextlib
import contextvars
import dataclasses
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from benchmark.core.hparams import Params
from benchmark.core.spec import MASK, DatasetSpec
from benchmark.system.errors import BenchmarkError

Window = tuple[slice, slice]
RawSample = dict[str, np.ndarray]
"""Modality name -> float32 [C, H, W] in raw units, plus `mask` -> int64 [H, W]."""


_data_root: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "missbench_data_root", default=None
)


@contextlib.contextmanager
def data_root_scope(root: Path | None) -> Iterator[None]:
    """Let class-level dataset code see the command's data root (`--data-root`).

    `modalities_for` and `report_name` run while a sweep is validated, before any dataset is
    opened, so no instance (and no `root`) exists yet. A no-op for None.
    """
    if root is None:
        yield
        return
    token = _data_root.set(Path(root))
    try:
        yield
    finally:
        _data_root.reset(token)


def current_data_root() -> Path | None:
    """Return the data root of the enclosing `data_root_scope` (None outside one)."""
    return _data_root.get()


@dataclasses.dataclass(frozen=True)
class DatasetOptions:
    """Base for a dataset's user-settable options (`--dataset name[key=value]`)."""

    def as_params(self) -> Params:
        """Every option (defaults included), in the frozen form run specs hold."""
        return Params(dataclasses.asdict(self))


class MultiModalDataset(abc.ABC):
    """A split of a co-registered multimodal segmentation dataset."""

    NAME: ClassVar[str] = ""
    """The registered name, set by `register_dataset` (never stated twice)."""
    SPLITS: ClassVar[tuple[str, ...]] = ("train", "val", "test")
    Options: ClassVar[type[DatasetOptions]] = DatasetOptions
    MODALITIES: ClassVar[tuple[str, ...]] = ()
    """Modality names, known without touching any file (flags are validated before loading)."""
    GENERATED: ClassVar[bool] = False
    """True for data generated on first use (nothing to download, so nothing can be absent);
    otherwise absent files raise `DatasetNotFoundError` saying where to get them."""

    @classmethod
    def modalities_for(cls, options: DatasetOptions) -> tuple[str, ...]:
        """Modality names under `options` (override when an option changes them)."""
        return cls.MODALITIES

    @classmethod
    def report_name(cls, options: DatasetOptions) -> str:
        """Return the name rows and tables show for the data under `options`.

        "" (the default) for the registered name; data that name themselves say so (a
        `folder` card's `name`). Display only, never part of a run's id.
        """
        return ""

    @classmethod
    def files_read(cls, options: DatasetOptions) -> Mapping[str, Path]:
        """Return option name -> the file it names, for options naming a file the run reads.

        Such a file (a `folder` card) is part of the run's id by its bytes
        (`RunSpec.file_digests`): edit it and the run is another. The data files a dataset
        finds by itself are not listed here; `data_digest` covers those.
        """
        return {}

    @classmethod
    def data_digest(cls, options: DatasetOptions) -> str | None:
        """Return one content digest of the data files read under `options`, or None.

        A dataset whose files a user edits in place (a `folder` card's tiles) returns it, so
        that an edited, replaced or added tile makes another run instead of reusing a stale
        one (`RunSpec.file_digests`, key `dataset_files`). None (the default) leaves the data
        out of the id, as for the built-in datasets, whose files are the provider's and whose
        run ids must not change.
        """
        return None

    def __init__(self, root: Path, split: str, options: DatasetOptions | None = None) -> None:
        if split not in self.SPLITS:
            raise BenchmarkError(f"split must be one of {', '.join(self.SPLITS)}, got {split!r}")
        self.root = Path(root)
        self.split = split
        self.options = options if options is not None else self.Options()

    @classmethod
    def make_options(cls, overrides: Mapping[str, Any]) -> DatasetOptions:
        """Build options from CLI overrides; unknown keys raise with the valid ones listed."""
        valid = {f.name: f for f in dataclasses.fields(cls.Options)}
        unknown = sorted(set(overrides) - set(valid))
        if unknown:
            raise BenchmarkError(
                f"unknown dataset option {', '.join(unknown)}; valid: {', '.join(valid) or 'none'}"
            )
        return cls.Options(**dict(overrides))

    @property
    @abc.abstractmethod
    def spec(self) -> DatasetSpec:
        """The dataset's spec (may depend on options, e.g. statistics of the training split)."""

    @abc.abstractmethod
    def __len__(self) -> int:
        """Return the number of tiles in this split."""

    @abc.abstractmethod
    def tile_shape(self, index: int) -> tuple[int, int]:
        """(H, W) of tile `index`, without decoding it."""

    @abc.abstractmethod
    def load(self, index: int, window: Window | None = None) -> RawSample:
        """Raw modalities and mask of tile `index`, optionally cut to `window`."""

    def tile_name(self, index: int) -> str:
        """Name tile `index` (unique within the split; records and reports use it)."""
        return f"{self.split}_{index:05d}"

    def __getitem__(self, index: int) -> RawSample:
        return self.load(index)

    def class_pixel_counts(self) -> np.ndarray:
        """Labelled pixels per class over the split (ignored pixels excluded)."""
        counts = np.zeros(self.spec.num_classes, dtype=np.int64)
        for i in range(len(self)):
            mask = self.load(i)[MASK]
            valid = mask[mask != self.spec.ignore_index]
            counts += np.bincount(valid.ravel(), minlength=self.spec.num_classes)[
                : self.spec.num_classes
            ]
        return counts
