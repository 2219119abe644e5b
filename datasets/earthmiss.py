"""EarthMiss (Zhou et al., RSE 2025) exactly as distributed: 0.6 m optical RGB + SAR, 13 cities.

Expected tree under `--data-root` (`<data-root>/earthmiss/` or the data root itself), the
Zenodo release (record 17231107) with one folder per city::

    earthmiss/
      <City>/images/RGB/<id>.tif          3 x uint8, R, G, B (1024 x 1024)
      <City>/images/SAR/<id>_SAR.tif      1 band SAR
      <City>/masks/<id>_mask.tif          raw value k -> class k - 1; 0 -> ignore (255)
                                          (stored as float32 in the release: rounded first)

Classes (palette of the authors): background, building, road, water, barren, forest,
agricultural, playground; all 8 enter the means (the authors' convention). The split is by
city, as in the paper: train = America-Eugene, America-Louisville, French-Paris,
Morocco-Casablanca, Nanjing, Netherlands-Rotterdam, Singapore; val = Australia-PortHedland,
America-Pake, Russian-Engels; test = America-NewYork, Japan-Hakodate, Peru-Callao. Cities that
are absent are skipped with a warning. Tile names are `<City>/<id>`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from benchmark.api import register_dataset
from datasets.files.raster_io import RASTER_SUFFIXES, find_file
from datasets.folder import Card, LabelCard, ModalityCard, TileDataset

log = logging.getLogger(__name__)
_WARNED: set[tuple] = set()

CITIES = {
    "train": (
        "America-Eugene",
        "America-Louisville",
        "French-Paris",
        "Morocco-Casablanca",
        "Nanjing",
        "Netherlands-Rotterdam",
        "Singapore",
    ),
    "val": ("Australia-PortHedland", "America-Pake", "Russian-Engels"),
    "test": ("America-NewYork", "Japan-Hakodate", "Peru-Callao"),
}
CLASSES = (
    "background",
    "building",
    "road",
    "water",
    "barren",
    "forest",
    "agricultural",
    "playground",
)
PALETTE = (
    (255, 255, 255),
    (255, 0, 0),
    (255, 255, 0),
    (0, 0, 255),
    (159, 129, 183),
    (0, 255, 0),
    (255, 195, 128),
    (165, 0, 165),
)


@register_dataset("earthmiss")
class EarthMissDataset(TileDataset):
    """EarthMiss 0.6 m: optical RGB + SAR over 13 cities, 8 land-cover classes, city-wise split."""

    DIRNAME = "earthmiss"
    MODALITIES = ("optical", "sar")
    LAYOUT = (
        "earthmiss/<City>/images/RGB/<id>.tif, earthmiss/<City>/images/SAR/<id>_SAR.tif, "
        "earthmiss/<City>/masks/<id>_mask.tif (cities e.g. Nanjing, America-NewYork)"
    )
    SOURCE = (
        "download EarthMiss from Zenodo record 17231107 and extract it into <data-root>/earthmiss/"
    )

    def build_card(self) -> Card:
        return Card(
            name=self.NAME,
            modalities=(
                ModalityCard("optical", 3, "images/RGB", description="R, G, B (uint8)"),
                ModalityCard("sar", 1, "images/SAR", "{id}_SAR", description="SAR backscatter"),
            ),
            labels=LabelCard(
                folder="masks",
                pattern="{id}_mask",
                encoding="values",
                values=tuple((k + 1, k) for k in range(len(CLASSES))),
                ignore=(0,),
            ),
            classes=CLASSES,
            palette=PALETTE,
            label_set="earthmiss8:raw0=ignore",
            description=(type(self).__doc__ or "").strip(),
        )

    def looks_like_layout(self, directory: Path) -> bool:
        return any((directory / c / "masks").is_dir() for cities in CITIES.values() for c in cities)

    def split_ids(self, split: str) -> list[str]:
        ids, absent = [], []
        for city in CITIES[split]:
            masks = self.data_dir / city / "masks"
            if not masks.is_dir():
                absent.append(city)
                continue
            for path in sorted(masks.iterdir()):
                if path.suffix.lower() in RASTER_SUFFIXES and path.stem.endswith("_mask"):
                    ids.append(f"{city}/{path.stem.removesuffix('_mask')}")
        key = (split, str(self.data_dir), len(absent))
        if absent and ids and key not in _WARNED:
            _WARNED.add(key)
            log.warning(
                "earthmiss %s: cities absent under %s: %s", split, self.data_dir, ", ".join(absent)
            )
        return ids

    def modality_path(self, modality: ModalityCard, tile_id: str) -> Path | None:
        city, name = tile_id.split("/", 1)
        folder = self.data_dir / city / modality.folder
        return find_file(folder, modality.pattern.format(id=name))

    def label_path(self, tile_id: str) -> Path | None:
        city, name = tile_id.split("/", 1)
        return find_file(self.data_dir / city / "masks", f"{name}_mask")
