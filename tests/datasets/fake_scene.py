"""The scene every fake-data writer under `tests/data/` draws, so the writers share one copy.

A fake tile is a label map of square blocks of random classes; each writer then paints its
modalities from per-class values. The ISPRS writers (Vaihingen, Potsdam) also share the
provider's label palette and its eroded references (class boundaries painted black). The
palette is written out here, not imported from `datasets/`, so the fakes stay an independent
check of the loaders' decoding.
"""

from __future__ import annotations

import numpy as np

ISPRS_PALETTE = np.array(
    [(255, 255, 255), (0, 0, 255), (0, 255, 255), (0, 255, 0), (255, 255, 0), (255, 0, 0)],
    np.uint8,
)
"""Impervious surfaces, building, low vegetation, tree, car, clutter: the ISPRS colours."""


def block_labels(
    rng: np.random.Generator, classes: int, height: int, width: int, block: int
) -> np.ndarray:
    """An int64 [height, width] map of `block` x `block` squares, each a class in [0, classes).

    One draw of `rng` per tile, so a writer's later draws (and its committed files) depend only
    on its seed and the order of its tiles.
    """
    blocks = rng.integers(0, classes, size=(height // block, width // block))
    return np.kron(blocks, np.ones((block, block), np.int64))


def isprs_eroded(labels: np.ndarray) -> np.ndarray:
    """RGB palette labels with every class boundary black, as ISPRS's `_noBoundary` files."""
    edge = np.zeros(labels.shape, bool)
    edge[:-1] |= labels[:-1] != labels[1:]
    edge[1:] |= labels[1:] != labels[:-1]
    edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    rgb = ISPRS_PALETTE[labels].copy()
    rgb[edge] = 0
    return rgb
