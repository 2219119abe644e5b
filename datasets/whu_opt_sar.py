"""WHU-OPT-SAR (Li et al., MCANet, JAG 2022) exactly as distributed: GF-1 optical + GF-3 SAR.

Expected tree under `--data-root` (`<data-root>/whu_opt_sar/` or the data root itself), the
three folders of the release with identical file names per tile::

    whu_opt_sar/
      optical/<NAME>.tif      4 bands R, G, B, NIR (5 m, 5556 x 3704)
      sar/<NAME>.tif          1 band SAR
      lbl/<NAME>.tif          grey labels 0 background, 10 farmland, 20 city, 30 village,
                              40 water, 50 forest, 60 road, 70 others

Labels: value v -> class v / 10; background (0) -> ignore unless `background=class`; any other
value -> ignore (255). Option `background` =
ignore (default: 7 foreground classes, background pixels ignored, as most papers) | class
(8 classes, background is class 0 and enters the means). Split: the official
`The division of the dataset.txt` (80 train / 20 test tiles, test list below); val = every
tenth train tile in sorted order (at least one), held out of train -- never a test tile.
Tiles of the official lists that are absent are skipped with a warning.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import ClassVar

from benchmark.api import DatasetOptions, register_dataset
from datasets.folder import Card, LabelCard, ModalityCard, TileDataset
from datasets.isprs import check_choice

log = logging.getLogger(__name__)

TEST_TILES = [
    "NH49E001014",
    "NH49E001017",
    "NH49E002012",
    "NH49E002016",
    "NH49E003014",
    "NH49E003024",
    "NH49E004011",
    "NH49E005011",
    "NH49E005019",
    "NH49E006019",
    "NH49E007014",
    "NH49E008013",
    "NH49E009017",
    "NH49E010020",
    "NH49E011024",
    "NH49E012020",
    "NH49E013010",
    "NH50E007002",
    "NH50E011005",
    "NH50E014003",
]
CLASSES = ("background", "farmland", "city", "village", "water", "forest", "road", "others")
PALETTE = (
    (0, 0, 0),
    (255, 211, 127),
    (230, 0, 0),
    (255, 127, 127),
    (0, 92, 230),
    (38, 115, 0),
    (255, 255, 0),
    (178, 178, 178),
)
"""No official palette exists; these colours are MissBench's choice."""
VAL_EVERY = 10
_WARNED: set[tuple] = set()


@dataclasses.dataclass(frozen=True)
class WhuOptSarOptions(DatasetOptions):
    background: str = "ignore"

    def __post_init__(self) -> None:
        check_choice("whu_opt_sar", "background", self.background, ("ignore", "class"))


@register_dataset("whu_opt_sar")
class WhuOptSarDataset(TileDataset):
    """WHU-OPT-SAR 5 m: GF-1 optical (R,G,B,NIR) + GF-3 SAR, 7 land-cover classes (+background)."""

    DIRNAME = "whu_opt_sar"
    Options: ClassVar[type[DatasetOptions]] = WhuOptSarOptions
    MODALITIES = ("optical", "sar")
    LAYOUT = "whu_opt_sar/{optical,sar,lbl}/<NAME>.tif with identical names (e.g. NH49E001013.tif)"
    SOURCE = (
        "download the optical/, sar/ and lbl/ folders from "
        "https://github.com/AmberHen/WHU-OPT-SAR-dataset (Baidu / Google Drive) into "
        "<data-root>/whu_opt_sar/"
    )

    def build_card(self) -> Card:
        with_background = self.options.background == "class"
        values = tuple((10 * v, v) for v in range(8))
        if not with_background:
            values = tuple((10 * v, v - 1) for v in range(1, 8))
        classes = CLASSES if with_background else CLASSES[1:]
        palette = PALETTE if with_background else PALETTE[1:]
        return Card(
            name=self.NAME,
            modalities=(
                ModalityCard("optical", 4, "optical", description="GF-1 R, G, B, NIR"),
                ModalityCard("sar", 1, "sar", description="GF-3 SAR backscatter"),
            ),
            labels=LabelCard(
                folder="lbl",
                encoding="values",
                values=values,
                ignore=() if with_background else (0,),
                strict=False,  # documented: any other raw value is unlabelled
            ),
            classes=classes,
            palette=palette,
            label_set=f"whu_opt_sar:background={self.options.background}",
            description=(type(self).__doc__ or "").strip(),
        )

    def looks_like_layout(self, directory: Path) -> bool:
        return (directory / "lbl").is_dir() or (directory / "optical").is_dir()

    def split_ids(self, split: str) -> list[str]:
        present = self.discover_ids()
        test = [t for t in TEST_TILES if t in present]
        train = [t for t in present if t not in TEST_TILES]
        key = (str(self.data_dir), len(test))
        if split == "test" and len(test) < len(TEST_TILES) and test and key not in _WARNED:
            _WARNED.add(key)
            log.warning(
                "whu_opt_sar: %d of the %d official test tiles are present under %s",
                len(test),
                len(TEST_TILES),
                self.data_dir,
            )
        if split == "test":
            return test
        val = train[VAL_EVERY - 1 :: VAL_EVERY] or train[-1:]
        if len(train) < 2:
            val = []  # a single train tile cannot be split; the val split is reported empty
        return val if split == "val" else [t for t in train if t not in val]
