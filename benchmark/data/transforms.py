"""Normalisation and joint geometric augmentation of co-registered samples."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import Tensor

from benchmark.core.spec import MASK, DatasetSpec


class Normalizer:
    """Per-band standardisation with the spec's statistics: x' = (x - mean) / std.

    After this, 0 is a modality's mean value, which is what "zero-filling" means in MissBench.
    Non-finite raw values (nodata) become 0 too, i.e. the mean.
    """

    def __init__(self, spec: DatasetSpec) -> None:
        self.stats = {
            m.name: (
                np.asarray(m.mean, dtype=np.float32).reshape(-1, 1, 1),
                np.asarray(m.std, dtype=np.float32).reshape(-1, 1, 1),
            )
            for m in spec.modalities
        }

    def __call__(self, sample: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for key, value in sample.items():
            if key == MASK:
                out[key] = value
            elif key in self.stats:
                mean, std = self.stats[key]
                normed = np.array(value, dtype=np.float32)  # the one copy; then in place
                normed -= mean
                normed /= std
                if not np.issubdtype(value.dtype, np.integer):  # integers cannot be nodata
                    bad = ~np.isfinite(normed)
                    if bad.any():
                        normed[bad] = 0.0
                out[key] = normed
        return out


def random_dihedral(sample: Mapping[str, np.ndarray], rng: np.random.Generator) -> dict:
    """The same random flip and 90° rotation applied to every modality and the mask."""
    k = int(rng.integers(4))
    flip = bool(rng.integers(2))
    first = next(iter(sample.values()))
    if first.shape[-2] != first.shape[-1]:
        k = 2 * (k % 2)  # a non-square crop (tile smaller than the crop) keeps its shape
    out = {}
    for key, value in sample.items():
        axes = (-2, -1)
        array = np.rot90(value, k=k, axes=axes)
        if flip:
            array = np.flip(array, axis=-1)
        out[key] = array
    return out


def to_tensors(samples: list[Mapping[str, np.ndarray]]) -> dict[str, Tensor]:
    """Stack a list of samples into a batch of tensors (float32 modalities, int64 mask).

    Each sample (often a rotated or flipped view) is copied once, straight into its slot of the
    batch array: no intermediate contiguous copy, no second copy by a stack.
    """
    batch: dict[str, Tensor] = {}
    for key, first in samples[0].items():
        dtype = np.int64 if key == MASK else np.float32
        stacked = np.empty((len(samples), *first.shape), dtype=dtype)
        for slot, sample in zip(stacked, samples, strict=True):
            np.copyto(slot, sample[key], casting="unsafe")
        batch[key] = torch.from_numpy(stacked)
    return batch
