"""Write a tiny fake ISPRS Vaihingen tree with the real names, nesting, dtypes and encodings.

    python -m tests.data.vaihingen.make_fake          # into tests/data/vaihingen/vaihingen/

Six tiles (areas 1, 2, 3, 5, 30, 37: every split of both protocols is non-empty) of
H x W = 32 x 32: `top/` 3 x uint8 IRRG (PackBits), `dsm/` float32 absolute heights, `ndsm/`
8-bit JPEG, labels of the COMPLETE zips at the root (full `..._areaN.tif` and eroded
`..._areaN_noBoundary.tif` with black boundaries), plus the eroded zip's stray `area9` file
that has no image, and one off-palette pixel per full label.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from tests.datasets.fake_scene import ISPRS_PALETTE, block_labels, isprs_eroded

SEED = 1
HEIGHT, WIDTH = 32, 32
BLOCK = 8
AREAS = (1, 2, 3, 5, 30, 37)
CLASS_IRRG = np.array(
    [(90, 120, 120), (100, 170, 90), (210, 90, 140), (220, 50, 110), (70, 200, 200), (120, 140, 60)]
)
CLASS_HEIGHT = np.array([0.0, 8.0, 0.3, 6.0, 1.4, 0.8])


def make(root: Path) -> None:
    rng = np.random.default_rng(SEED)
    for folder in ("top", "dsm", "ndsm"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for area in AREAS:
        labels = block_labels(rng, 6, HEIGHT, WIDTH, BLOCK)
        irrg = CLASS_IRRG[labels].astype(np.uint8)
        Image.fromarray(irrg).save(
            root / f"top/top_mosaic_09cm_area{area}.tif", compression="packbits"
        )
        height = (265.0 + CLASS_HEIGHT[labels] + 0.02 * np.arange(HEIGHT)[:, None]).astype(
            np.float32
        )
        tifffile.imwrite(root / f"dsm/dsm_09cm_matching_area{area}.tif", height, compression="zlib")
        grey = np.clip(CLASS_HEIGHT[labels] * 25, 0, 255).astype(np.uint8)
        Image.fromarray(grey).save(root / f"ndsm/dsm_09cm_matching_area{area}.jpg", quality=90)
        full = ISPRS_PALETTE[labels].copy()
        full[-1, -1] = (10, 20, 30)  # off-palette colour: must become ignore
        Image.fromarray(full).save(
            root / f"top_mosaic_09cm_area{area}.tif", compression="tiff_deflate"
        )
        Image.fromarray(isprs_eroded(labels)).save(
            root / f"top_mosaic_09cm_area{area}_noBoundary.tif", compression="tiff_deflate"
        )
    # the eroded zip ships area9, which has no image
    stray = isprs_eroded(block_labels(rng, 6, HEIGHT, WIDTH, BLOCK))
    Image.fromarray(stray).save(
        root / "top_mosaic_09cm_area9_noBoundary.tif", compression="tiff_deflate"
    )


if __name__ == "__main__":
    make(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "vaihingen")
