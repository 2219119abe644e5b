"""Write a tiny fake WHU-OPT-SAR tree with the real names, nesting, dtypes and encodings.

    python -m tests.data.whu_opt_sar.make_fake        # into tests/data/whu_opt_sar/whu_opt_sar/

Five tiles of H x W = 32 x 32 (real: 3704 x 5556): three train names and two names from the
official test list. `optical/` 4 x uint8 (R, G, B, NIR), `sar/` 1 x uint8, `lbl/` grey
uint8 with values 0, 10, ..., 70 and one stray value (255) that must become ignore.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import tifffile

from tests.datasets.fake_scene import block_labels

SEED = 2
HEIGHT, WIDTH = 32, 32
BLOCK = 8
TILES = ("NH49E001013", "NH49E001015", "NH49E002011", "NH49E001014", "NH50E007002")
CLASS_OPTICAL = np.array(
    [
        (0, 0, 0, 0),
        (200, 180, 120, 150),
        (150, 150, 150, 80),
        (170, 140, 130, 90),
        (40, 70, 120, 20),
        (50, 110, 60, 210),
        (120, 120, 110, 70),
        (100, 100, 100, 100),
    ]
)
CLASS_SAR = np.array([5, 60, 200, 150, 10, 110, 90, 80])


def make(root: Path) -> None:
    rng = np.random.default_rng(SEED)
    for folder in ("optical", "sar", "lbl"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for tile in TILES:
        labels = block_labels(rng, 8, HEIGHT, WIDTH, BLOCK)
        optical = CLASS_OPTICAL[labels].astype(np.uint8)  # H, W, 4 (contiguous samples)
        tifffile.imwrite(
            root / f"optical/{tile}.tif",
            optical,
            photometric="minisblack",
            planarconfig="contig",
            compression="zlib",
        )
        tifffile.imwrite(
            root / f"sar/{tile}.tif", CLASS_SAR[labels].astype(np.uint8), compression="zlib"
        )
        grey = (10 * labels).astype(np.uint8)
        grey[0, :3] = 255  # not a WHU value: must become ignore
        tifffile.imwrite(root / f"lbl/{tile}.tif", grey, compression="zlib")


if __name__ == "__main__":
    make(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "whu_opt_sar")
