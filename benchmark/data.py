"""Training batches: random crops from (memory-mapped) tiles, jointly augmented, normalised.

Batch `s` of a run is a pure function of (seed, s), so a resumed run sees exactly the batches
an uninterrupted run would have seen.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from torch import Tensor

from benchmark.errors import BenchmarkError
from benchmark.spec import MASK
from benchmark.transforms import Normalizer, random_dihedral, to_tensors
from datasets.base import MultiModalDataset

LabelFilter = Callable[[np.ndarray, int, tuple[int, int]], np.ndarray]
"""(mask window, tile index, window origin) -> mask; e.g. controlled imbalance."""


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
        self.shapes = [dataset.tile_shape(i) for i in range(len(dataset))]

    def batch(self, step: int) -> dict[str, Tensor]:
        rng = np.random.default_rng([self.seed, step, 0x5EED])
        samples = []
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
        return to_tensors(samples)
