"""A run's data: its three splits, what the harness derives from the training labels, and
training batches (random crops from memory-mapped tiles, jointly augmented, normalised).

Batch `s` of a run is a pure function of (seed, s), so a resumed run sees exactly the batches
an uninterrupted run would have seen.
"""

from __future__ import annotations

import functools
import logging
import os
import zlib
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from benchmark.core.dataset import MultiModalDataset
from benchmark.core.hparams import Params
from benchmark.core.method import AVAILABLE_PREFIX
from benchmark.core.plugins import DATASETS
from benchmark.core.records import RunSpec
from benchmark.core.spec import MASK, DatasetSpec
from benchmark.data.imbalance import FrequencyTiers, frequency_tiers, hide_tail_labels
from benchmark.data.statistics import RestatedSplit, present_statistics
from benchmark.data.transforms import Normalizer, random_dihedral, to_tensors
from benchmark.system.errors import BenchmarkError

log = logging.getLogger(__name__)

LabelFilter = Callable[[np.ndarray, int, tuple[int, int]], np.ndarray]
"""(mask window, tile index, window origin) -> mask; e.g. controlled imbalance."""


def open_dataset(spec: RunSpec, split: str, data_root: Path) -> MultiModalDataset:
    """Split `split` of the run's dataset, with the run's dataset options.

    Under `--train-missing` every split of the run is normalised with the statistics of the
    training tiles that have each modality (`run_statistics`): a tile declared absent never
    shapes its modality's normalisation, in training, evaluation or the model card alike.
    """
    cls = DATASETS.get(spec.dataset)
    dataset = cls(data_root, split, cls.make_options(spec.dataset_options))
    if not any(rate > 0 for _, rate in spec.train_missing):
        return dataset
    restated = run_statistics(
        spec.dataset, spec.dataset_options, spec.seed, spec.train_missing, str(data_root)
    )
    return RestatedSplit(dataset, restated)


@functools.lru_cache(maxsize=8)
def run_statistics(
    dataset: str,
    options: Params,
    seed: int,
    train_missing: tuple[tuple[str, float], ...],
    data_root: str,
) -> DatasetSpec:
    """The dataset's spec with the statistics of the training tiles a run's seed and
    `--train-missing` rates leave each modality (computed once per process and run setup)."""
    cls = DATASETS.get(dataset)
    train = cls(Path(data_root), "train", cls.make_options(options))
    names = train.spec.modality_names
    rates = dict(train_missing)
    check_train_missing(rates, names)
    return present_statistics(train, tile_availability(names, len(train), rates, seed))


def class_frequencies(counts: np.ndarray, dataset: MultiModalDataset) -> tuple[float, ...]:
    """Shares of labelled pixels per class; a split without labelled pixels is bad input."""
    counts = counts.astype(np.float64)
    if counts.sum() == 0:
        raise BenchmarkError(f"dataset {dataset.spec.name!r}: no labelled training pixels")
    return tuple(float(c) for c in counts / counts.sum())


@dataclass
class RunData:
    """The three splits plus what the harness derives from the training labels."""

    train: MultiModalDataset
    val: MultiModalDataset
    test: MultiModalDataset
    tiers: FrequencyTiers
    frequencies: tuple[float, ...]
    """Class shares of the labels the method trains on (after controlled imbalance)."""
    label_filter: LabelFilter | None
    availability: dict[str, np.ndarray] | None = None
    """Under `--train-missing`: per modality, bool [training tiles], which tiles have it."""


def tile_availability(
    modalities: Sequence[str], tiles: int, rates: Mapping[str, float], seed: int
) -> dict[str, np.ndarray]:
    """Which training tiles have each modality when a share `rates[m]` of them lacks it.

    Drawn from the run seed alone, so every method of a seed loses the same tiles; one seeded
    order per modality, so a higher rate removes a superset of the tiles a lower one removes
    (curves over the rate compare nested training sets). A tile that would lose every modality
    keeps the one with the lowest rate (ties: the first in the dataset's order).
    """
    have = {}
    for m in modalities:
        order = np.random.default_rng([seed, 0x4D155, zlib.crc32(m.encode())]).permutation(tiles)
        lacking = order[: tiles_without(rates.get(m, 0.0), tiles)]
        have[m] = np.ones(tiles, dtype=bool)
        have[m][lacking] = False
    stranded = ~np.any(np.stack([have[m] for m in modalities]), axis=0)
    if stranded.any():
        keeper = min(modalities, key=lambda m: (rates.get(m, 0.0), modalities.index(m)))
        have[keeper][stranded] = True
    return have


def tiles_without(rate: float, tiles: int) -> int:
    """How many of `tiles` training tiles a share `rate` removes a modality from: the one
    rounding rule of the draw (`tile_availability`) and of its check (`check_train_missing`)."""
    return int(round(rate * tiles))


def check_train_missing(
    rates: Mapping[str, float],
    modalities: Sequence[str],
    tiles: int | None = None,
    dataset: str = "",
) -> None:
    """Every named modality exists and every rate is a share in [0, 1); given the training
    split's `tiles`, every share also removes the modality from at least one tile and leaves
    it on at least one (by its tile count, not its value: `dsm=0.995` on 48 tiles removes the
    DSM from all 48, `dsm=0.007` from none, though both look like valid shares). The sweep
    checks the count before any run starts (`run.sweep.preflight`); opening a stored run checks
    names and ranges only, so a run made before the count rule still opens."""
    for m, rate in rates.items():
        if m not in modalities:
            raise BenchmarkError(
                f"--train-missing {m}={rate:g}: no modality {m!r} (this dataset has "
                f"{', '.join(modalities)})"
            )
        if not 0.0 <= rate < 1.0:
            raise BenchmarkError(
                f"--train-missing {m}={rate:g}: expected a share of training tiles in [0, 1)"
            )
        if tiles is None or rate == 0:
            continue
        removed = tiles_without(rate, tiles)
        if 0 < removed < tiles:
            continue
        shares = (
            f"from {1 / tiles:.3g} to {(tiles - 1) / tiles:.3g} here"
            if tiles > 1
            else "none can, with one tile"
        )
        raise BenchmarkError(
            f"--train-missing {m}={rate:g} removes {m} from {removed} of the {tiles} training "
            f"tiles{f' of {dataset}' if dataset else ''}; expected a share that removes at "
            f"least one tile and leaves at least one ({shares})"
        )


def prepare_data(spec: RunSpec, data_root: Path) -> RunData:
    """Open the run's splits; frequency tiers and class shares from its training labels, and
    which training tiles lack which modality (`--train-missing`)."""
    train = open_dataset(spec, "train", data_root)
    val = open_dataset(spec, "val", data_root)
    test = open_dataset(spec, "test", data_root)
    ds = train.spec
    original = class_frequencies(train.class_pixel_counts(), train)
    tiers = frequency_tiers(original, ds.tier_thresholds, ds.eval_classes)
    availability = None
    if spec.train_missing:
        rates = dict(spec.train_missing)
        check_train_missing(rates, ds.modality_names)
        availability = tile_availability(ds.modality_names, len(train), rates, spec.seed)
        log.info(
            "training tiles without each modality: %s",
            ", ".join(f"{m} {int((~a).sum())}/{len(a)}" for m, a in availability.items()),
        )
    if spec.imbalance <= 1:
        return RunData(train, val, test, tiers, original, None, availability)

    def label_filter(mask: np.ndarray, index: int, origin: tuple[int, int]) -> np.ndarray:
        return hide_tail_labels(
            mask,
            spec.imbalance,
            tiers.tail,
            ds.ignore_index,
            index,
            train.tile_shape(index),
            origin,
        )

    counts = np.zeros(ds.num_classes, dtype=np.int64)
    for index in range(len(train)):
        mask = label_filter(train.load(index)[MASK], index, (0, 0))
        valid = mask[mask != ds.ignore_index]
        counts += np.bincount(valid.ravel(), minlength=ds.num_classes)[: ds.num_classes]
    return RunData(
        train, val, test, tiers, class_frequencies(counts, train), label_filter, availability
    )


class PatchSampler:
    """Draws `batch_size` random `crop` x `crop` patches per step from a training split."""

    def __init__(
        self,
        dataset: MultiModalDataset,
        batch_size: int,
        crop: int,
        seed: int,
        modalities: Sequence[str] | None = None,
        label_filter: LabelFilter | None = None,
        availability: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        if len(dataset) == 0:
            raise BenchmarkError(
                f"dataset {dataset.spec.name!r}: the {dataset.split} split is empty"
            )
        self.dataset = dataset
        self.batch_size = batch_size
        self.crop = crop
        self.seed = seed
        self.modalities = tuple(modalities or dataset.spec.modality_names)
        self.normalize = Normalizer(dataset.spec)
        self.label_filter = label_filter
        self.availability = (
            {m: np.asarray(availability[m], dtype=bool) for m in self.modalities}
            if availability is not None
            else None
        )
        """Per training modality, which tiles have it; absent samples become NaN."""
        self.shapes = [dataset.tile_shape(i) for i in range(len(dataset))]

    def batch(self, step: int) -> dict[str, Tensor]:
        """Training batch `step`; under `--train-missing` an absent modality of a sample is NaN
        and `available:<modality>` (bool [B]) says which samples have it."""
        rng = np.random.default_rng([self.seed, step, 0x5EED])
        samples, indices = [], []
        for _ in range(self.batch_size):
            index = int(rng.integers(len(self.dataset)))
            height, width = self.shapes[index]
            ch, cw = min(self.crop, height), min(self.crop, width)
            y = int(rng.integers(height - ch + 1))
            x = int(rng.integers(width - cw + 1))
            raw = self.dataset.load(index, (slice(y, y + ch), slice(x, x + cw)))
            raw = {k: v for k, v in raw.items() if k in self.modalities or k == MASK}
            if self.label_filter is not None:
                raw[MASK] = self.label_filter(raw[MASK], index, (y, x))
            samples.append(random_dihedral(self.normalize(raw), rng))
            indices.append(index)
        batch = to_tensors(samples)
        if self.availability is not None:
            # numpy, not torch: this runs in `PrefetchingSampler`'s thread, where a torch
            # kernel starts a second OpenMP team that spins against the training threads
            # (measured: +25 % step time for every method on 2 cores)
            for m, have in self.availability.items():
                present = have[indices]
                batch[m].numpy()[~present] = np.nan
                batch[AVAILABLE_PREFIX + m] = torch.from_numpy(present)
        return batch


class BatchSource(Protocol):
    """Anything that returns training batch `step` (a `PatchSampler` or a prefetching wrapper)."""

    def batch(self, step: int) -> dict[str, Tensor]: ...


class PrefetchingSampler:
    """Prepares the next batches in background threads while the current step trains.

    Batch `s` is a pure function of (seed, s), so preparing it early changes when the work
    happens and nothing else: runs stay bit-identical. numpy's copies and arithmetic release the
    GIL, so the threads overlap with the step; on a GPU they fill the time the host spends
    waiting for the device, where loading a batch of 512 px crops in line cost more than half of
    the step (see `run_benchmark.py profile step`). With `pin_memory` the batches land in
    page-locked memory, so the copy to the GPU can run asynchronously.
    """

    def __init__(
        self,
        sampler: PatchSampler,
        workers: int,
        depth: int,
        limit: int | None = None,
        pin_memory: bool = False,
    ) -> None:
        self.sampler = sampler
        self.depth = depth
        self.limit = limit
        """First step not to prepare (the run's budget): no work after the last step."""
        self.pin_memory = pin_memory
        self._pool = (
            ThreadPoolExecutor(max_workers=workers, thread_name_prefix="missbench-batches")
            if workers > 0 and depth > 0
            else None
        )
        self._pending: dict[int, Future] = {}

    def _make(self, step: int) -> dict[str, Tensor]:
        batch = self.sampler.batch(step)
        if self.pin_memory:
            batch = {k: v.pin_memory() for k, v in batch.items()}
        return batch

    def batch(self, step: int) -> dict[str, Tensor]:
        if self._pool is None:
            return self._make(step)
        future = self._pending.pop(step, None)
        for stale in [s for s in self._pending if s < step]:
            self._pending.pop(stale).cancel()
        last = step + self.depth if self.limit is None else min(step + self.depth, self.limit - 1)
        for ahead in range(step + 1, last + 1):
            if ahead not in self._pending:
                self._pending[ahead] = self._pool.submit(self._make, ahead)
        return future.result() if future is not None else self._make(step)

    def close(self) -> None:
        if self._pool is not None:
            for future in self._pending.values():
                future.cancel()
            self._pending.clear()
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> PrefetchingSampler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def prefetch_workers(device: torch.device) -> int:
    """Background batch threads: one on CPU (the cores train), up to four beside a GPU."""
    if device.type != "cuda":
        return 1
    return max(1, min(4, (os.cpu_count() or 2) // 2))


def training_batches(
    dataset: MultiModalDataset,
    hparams: Mapping[str, Any],
    seed: int,
    modalities: Sequence[str],
    label_filter: LabelFilter | None,
    device: torch.device,
    steps: int | None,
    availability: Mapping[str, np.ndarray] | None = None,
) -> PrefetchingSampler:
    """The harness's batch source for a run (the profilers use this same one)."""
    sampler = PatchSampler(
        dataset,
        hparams["batch_size"],
        hparams["crop_size"],
        seed,
        modalities,
        label_filter,
        availability,
    )
    workers = prefetch_workers(device)
    return PrefetchingSampler(
        sampler, workers, depth=2 * workers, limit=steps, pin_memory=device.type == "cuda"
    )
