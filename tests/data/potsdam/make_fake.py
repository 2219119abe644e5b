"""Write a tiny fake ISPRS Potsdam tree with the real names, nesting, dtypes and encodings.

    python -m tests.data.potsdam.make_fake            # into tests/data/potsdam/potsdam/

Four tiles (2_10 val, 2_11 + 7_10 train, 2_13 test under the benchmark split) of H x W =
64 x 64 instead of 6000 x 6000. Optical TIFFs are uint8 (the RGBIR one 4 bands with band 4
tagged as unassociated alpha, PackBits, like the provider's), DSM float32 with zero-padded
names, nDSM 8-bit JPEG (2_11 has only `ownapproach`, exercising the fallback), labels RGB
palette TIFFs, full and eroded (black boundaries), plus one off-palette pixel.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from tests.datasets.fake_scene import ISPRS_PALETTE, block_labels, isprs_eroded

SEED = 0
HEIGHT, WIDTH = 64, 64
BLOCK = 8
TILES = ("2_10", "2_11", "2_13", "7_10")
CLASS_RGB = np.array(
    [(120, 120, 120), (180, 90, 70), (90, 160, 60), (40, 110, 40), (200, 200, 30), (140, 60, 140)]
)
CLASS_NIR = np.array([60, 70, 200, 220, 50, 90])
CLASS_HEIGHT = np.array([0.0, 9.0, 0.2, 7.0, 1.5, 1.0])


def make(root: Path) -> None:
    rng = np.random.default_rng(SEED)
    for tile in TILES:
        row, col = (int(v) for v in tile.split("_"))
        labels = block_labels(rng, 6, HEIGHT, WIDTH, BLOCK)
        rgb = CLASS_RGB[labels].astype(np.uint8)
        nir = CLASS_NIR[labels].astype(np.uint8)
        height = (33.0 + CLASS_HEIGHT[labels] + 0.01 * np.arange(WIDTH)).astype(np.float32)
        for folder in ("2_Ortho_RGB", "3_Ortho_IRRG", "4_Ortho_RGBIR", "1_DSM"):
            (root / folder).mkdir(parents=True, exist_ok=True)
        Image.fromarray(rgb).save(
            root / f"2_Ortho_RGB/top_potsdam_{tile}_RGB.tif", compression="tiff_deflate"
        )
        irrg = np.dstack([nir, rgb[..., 0], rgb[..., 1]])
        Image.fromarray(irrg).save(
            root / f"3_Ortho_IRRG/top_potsdam_{tile}_IRRG.tif", compression="tiff_deflate"
        )
        rgbir = np.dstack([rgb, nir])  # PIL writes band 4 as unassociated alpha, like ISPRS
        Image.fromarray(rgbir, "RGBA").save(
            root / f"4_Ortho_RGBIR/top_potsdam_{tile}_RGBIR.tif", compression="packbits"
        )
        tifffile.imwrite(
            root / f"1_DSM/dsm_potsdam_{row:02d}_{col:02d}.tif", height, compression="zlib"
        )
        ndsm = root / "1_DSM_normalisation"
        ndsm.mkdir(exist_ok=True)
        grey = np.clip(CLASS_HEIGHT[labels] * 20, 0, 255).astype(np.uint8)
        variant = "ownapproach" if tile == "2_11" else "lastools"
        Image.fromarray(grey).save(
            ndsm / f"dsm_potsdam_{row:02d}_{col:02d}_normalized_{variant}.jpg", quality=90
        )
        full = ISPRS_PALETTE[labels].copy()
        full[0, 0] = (128, 128, 128)  # off-palette colour: must become ignore
        for folder, name, image in (
            ("5_Labels_all", f"top_potsdam_{tile}_label.tif", full),
            (
                "5_Labels_all_noBoundary",
                f"top_potsdam_{tile}_label_noBoundary.tif",
                isprs_eroded(labels),
            ),
        ):
            (root / folder).mkdir(exist_ok=True)
            Image.fromarray(image).save(root / folder / name, compression="tiff_deflate")


if __name__ == "__main__":
    make(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "potsdam")
