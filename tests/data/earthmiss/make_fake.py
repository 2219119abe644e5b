"""Write a tiny fake EarthMiss tree with the real names, nesting, dtypes and encodings.

    python -m tests.data.earthmiss.make_fake          # into tests/data/earthmiss/earthmiss/

Four cities (two train, one val, one test), one or two 32 x 32 images each (real: 1024):
`<City>/images/RGB/<id>.tif` 3 x uint8, `<City>/images/SAR/<id>_SAR.tif` 1 x uint8,
`<City>/masks/<id>_mask.tif` float32 with raw values 0 (ignore) and 1..8 (class k - 1).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import tifffile

from tests.datasets.fake_scene import block_labels

SEED = 3
SIZE = 32
BLOCK = 8
IMAGES = {"Nanjing": ("1", "2"), "Singapore": ("7",), "America-Pake": ("3",), "Peru-Callao": ("5",)}
PALETTE = np.array(
    [
        (255, 255, 255),
        (255, 0, 0),
        (255, 255, 0),
        (0, 0, 255),
        (159, 129, 183),
        (0, 255, 0),
        (255, 195, 128),
        (165, 0, 165),
    ]
)
CLASS_SAR = np.array([30, 200, 120, 5, 60, 100, 80, 140])


def make(root: Path) -> None:
    rng = np.random.default_rng(SEED)
    for city, ids in IMAGES.items():
        for folder in ("images/RGB", "images/SAR", "masks"):
            (root / city / folder).mkdir(parents=True, exist_ok=True)
        for image_id in ids:
            raw = block_labels(rng, 9, SIZE, SIZE, BLOCK)  # 0 = unlabelled, k = class k - 1
            classes = np.maximum(raw - 1, 0)
            rgb = (0.7 * PALETTE[classes] + 30).astype(np.uint8)
            tifffile.imwrite(
                root / city / f"images/RGB/{image_id}.tif",
                rgb,
                photometric="rgb",
                compression="zlib",
            )
            sar = CLASS_SAR[classes].astype(np.uint8)
            tifffile.imwrite(
                root / city / f"images/SAR/{image_id}_SAR.tif", sar, compression="zlib"
            )
            tifffile.imwrite(
                root / city / f"masks/{image_id}_mask.tif",
                raw.astype(np.float32),
                compression="zlib",
            )


if __name__ == "__main__":
    make(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "earthmiss")
