"""Write a tiny fake user folder for the `folder` dataset: a YAML card + one sub-folder per
modality + palette-coded labels, co-registered files with matching names.

    python -m tests.data.folder.make_fake             # into tests/data/folder/my_city/

Six tiles `t0`..`t5` of 32 x 32: `rgb/<id>.png` (3 x uint8), `height/<id>_dsm.tif` (float32),
`sar/<id>.tif` (2 x float32, VV/VH dB), `gt/<id>.png` RGB palette labels where black is
unlabelled; the card splits them by ratios.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from tests.datasets.fake_scene import block_labels

SEED = 4
SIZE = 32
BLOCK = 8
TILES = tuple(f"t{i}" for i in range(6))
PALETTE = np.array([(128, 128, 128), (255, 0, 0), (0, 160, 0), (0, 0, 0)], np.uint8)
CARD = """\
name: my_city
description: fake user data (RGB + height + SAR, 3 classes)
modalities:
  optical: {folder: rgb, channels: 3, description: "R, G, B"}
  dsm: {folder: height, channels: 1, pattern: "{id}_dsm"}
  sar: {folder: sar, channels: 1, bands: [1], description: "VH [dB]"}
labels:
  folder: gt
  encoding: palette
classes: [road, building, vegetation]
palette: [[128, 128, 128], [255, 0, 0], [0, 160, 0]]
eval_classes: [0, 1, 2]
split_ratios: {train: 0.5, val: 0.2, test: 0.3}
seed: 0
"""


def make(root: Path) -> None:
    rng = np.random.default_rng(SEED)
    for folder in ("rgb", "height", "sar", "gt"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "card.yaml").write_text(CARD)
    for tile in TILES:
        labels = block_labels(rng, 4, SIZE, SIZE, BLOCK)  # 3 = unlabelled (black)
        Image.fromarray(PALETTE[labels] // 2 + 40).save(root / "rgb" / f"{tile}.png")
        height = np.array([0.0, 12.0, 4.0, 0.0])[labels].astype(np.float32)
        tifffile.imwrite(root / "height" / f"{tile}_dsm.tif", height, compression="zlib")
        vv = np.array([-8.0, -2.0, -10.0, -15.0])[labels]
        sar = np.stack([vv, vv - 6.0]).astype(np.float32)  # 2 bands; the card keeps band 1
        tifffile.imwrite(
            root / "sar" / f"{tile}.tif", sar, photometric="minisblack", compression="zlib"
        )
        Image.fromarray(PALETTE[labels]).save(root / "gt" / f"{tile}.png")


if __name__ == "__main__":
    make(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "my_city")
