"""ISPRS Potsdam exactly as distributed: ortho tiles + DSM / nDSM + RGB-coded labels.

Expected tree under `--data-root` (the extracted numbered zips; `<data-root>/potsdam/` or the
data root itself)::

    potsdam/
      1_DSM/dsm_potsdam_{RR}_{CC}.tif                       float32 DSM, zero-padded indices
      1_DSM_normalisation/dsm_potsdam_{RR}_{CC}_normalized_{lastools|ownapproach}.jpg
                                                      8-bit nDSM (also accepted nested twice:
                                                      1_DSM_normalisation/1_DSM_normalisation/)
      2_Ortho_RGB/top_potsdam_{R}_{C}_RGB.tif               3 x uint8 (R, G, B)
      3_Ortho_IRRG/top_potsdam_{R}_{C}_IRRG.tif             3 x uint8 (NIR, R, G)
      4_Ortho_RGBIR/top_potsdam_{R}_{C}_RGBIR.tif           4 x uint8 (R, G, B, NIR), read
                                                            band-exactly (band 4 is tagged alpha)
      5_Labels_all/top_potsdam_{R}_{C}_label.tif            full labels (also accepted:
                                                      5_Labels_for_participants/, or the root)
      5_Labels_all_noBoundary/top_potsdam_{R}_{C}_label_noBoundary.tif
                                                      eroded labels (also accepted:
                                                      5_Labels_for_participants_no_Boundary/)

Only the folders the options need must exist. Options (`--dataset "potsdam[key=value,...]"`):
`optical` = rgbir (default) | rgb | irrg; `height` = dsm (default, absolute metres) | ndsm
(the JPEG normalised DSM, `ndsm` = lastools (default) | ownapproach, falling back to the other
file when one is missing); `split` = benchmark (24 train / 14 test; val = tile 2_10 held out of
train, as GeoSeg) | fusion (DeepNetsForEO: 18 train / 6 test; val = 2_10 held out of train);
`drop_7_10` = false | true (exclude tile 7_10, whose annotations are erroneous, from train);
`train_labels` / `eval_labels` = full | eroded (defaults full / eroded) and `clutter_in_mean`
(see `datasets/isprs.py`). 6000 x 6000 tiles are decoded once into a memory-mapped cache under
`<data-root>/.missbench_cache/potsdam/`. The data are licensed by ISPRS and never downloaded.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar

from benchmark.api import DatasetOptions, register_dataset
from datasets.files.raster_io import find_file
from datasets.folder import Card, ModalityCard
from datasets.isprs import IsprsDataset, IsprsOptions, check_bool, check_choice

OPTICAL = {
    "rgbir": ("4_Ortho_RGBIR", "RGBIR", 4, "R, G, B, NIR (uint8)"),
    "rgb": ("2_Ortho_RGB", "RGB", 3, "R, G, B (uint8)"),
    "irrg": ("3_Ortho_IRRG", "IRRG", 3, "NIR, R, G (uint8)"),
}

BENCHMARK_TRAIN = [
    "2_10",
    "2_11",
    "2_12",
    "3_10",
    "3_11",
    "3_12",
    "4_10",
    "4_11",
    "4_12",
    "5_10",
    "5_11",
    "5_12",
    "6_10",
    "6_11",
    "6_12",
    "6_7",
    "6_8",
    "6_9",
    "7_10",
    "7_11",
    "7_12",
    "7_7",
    "7_8",
    "7_9",
]
BENCHMARK_TEST = [
    "2_13",
    "2_14",
    "3_13",
    "3_14",
    "4_13",
    "4_14",
    "4_15",
    "5_13",
    "5_14",
    "5_15",
    "6_13",
    "6_14",
    "6_15",
    "7_13",
]
FUSION_TRAIN = [
    "6_10",
    "7_10",
    "2_12",
    "3_11",
    "2_10",
    "7_8",
    "5_10",
    "3_12",
    "5_12",
    "7_11",
    "7_9",
    "6_9",
    "7_7",
    "4_12",
    "6_8",
    "6_12",
    "6_7",
    "4_11",
]
FUSION_TEST = ["4_10", "5_11", "2_11", "3_10", "6_11", "7_12"]
VAL_TILE = "2_10"
"""Validation tile held out of the official training tiles (GeoSeg's choice), never a test tile."""


def _protocol(train: list[str], test: list[str]) -> dict[str, tuple[str, ...]]:
    return {
        "train": tuple(t for t in train if t != VAL_TILE),
        "val": (VAL_TILE,),
        "test": tuple(test),
    }


@dataclasses.dataclass(frozen=True)
class PotsdamOptions(IsprsOptions):
    optical: str = "rgbir"
    height: str = "dsm"
    ndsm: str = "lastools"
    drop_7_10: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("potsdam", "optical", self.optical, tuple(OPTICAL))
        check_choice("potsdam", "height", self.height, ("dsm", "ndsm"))
        check_choice("potsdam", "ndsm", self.ndsm, ("lastools", "ownapproach"))
        check_bool("potsdam", "drop_7_10", self.drop_7_10)


@register_dataset("potsdam")
class PotsdamDataset(IsprsDataset):
    """ISPRS Potsdam 5 cm: optical (RGBIR / RGB / IRRG) + DSM or nDSM, 6 classes (licensed)."""

    DIRNAME = "potsdam"
    Options: ClassVar[type[DatasetOptions]] = PotsdamOptions
    MODALITIES = ("optical", "dsm")
    PROTOCOLS = {
        "benchmark": _protocol(BENCHMARK_TRAIN, BENCHMARK_TEST),
        "fusion": _protocol(FUSION_TRAIN, FUSION_TEST),
    }
    LAYOUT = (
        "potsdam/{2_Ortho_RGB/top_potsdam_R_C_RGB.tif | 3_Ortho_IRRG/top_potsdam_R_C_IRRG.tif | "
        "4_Ortho_RGBIR/top_potsdam_R_C_RGBIR.tif}, 1_DSM/dsm_potsdam_RR_CC.tif (or "
        "1_DSM_normalisation/dsm_potsdam_RR_CC_normalized_lastools.jpg), "
        "5_Labels_all[_noBoundary]/top_potsdam_R_C_label[_noBoundary].tif"
    )
    SOURCE = (
        "licensed data, never downloaded: request ISPRS Potsdam (Potsdam.zip) at "
        "https://www.isprs.org/education/benchmarks/UrbanSemLab/ and extract its numbered zips "
        "into <data-root>/potsdam/"
    )

    def build_card(self) -> Card:
        o = self.options
        folder, _, channels, description = OPTICAL[o.optical]
        if o.height == "dsm":
            height = ModalityCard("dsm", 1, "1_DSM", description="DSM, absolute height [m]")
        else:
            height = ModalityCard(
                "dsm", 1, "1_DSM_normalisation", description=f"nDSM 8-bit JPEG ({o.ndsm})"
            )
        return self.isprs_card(
            (ModalityCard("optical", channels, folder, description=description), height),
            (type(self).__doc__ or "").strip(),
        )

    def looks_like_layout(self, directory: Path) -> bool:
        return any((directory / f[0]).is_dir() for f in OPTICAL.values())

    def protocol_ids(self, split: str) -> list[str]:
        ids = super().protocol_ids(split)
        if self.options.drop_7_10 and split == "train":
            ids = [t for t in ids if t != "7_10"]
        return ids

    def modality_path(self, modality: ModalityCard, tile_id: str) -> Path | None:
        row, col = (int(v) for v in tile_id.split("_"))
        if modality.name == "optical":
            folder, suffix, _, _ = OPTICAL[self.options.optical]
            return find_file(self.data_dir / folder, f"top_potsdam_{tile_id}_{suffix}")
        padded = f"dsm_potsdam_{row:02d}_{col:02d}"
        if self.options.height == "dsm":
            return find_file(self.data_dir / "1_DSM", padded, (".tif", ".tiff"))
        first = self.options.ndsm
        second = "ownapproach" if first == "lastools" else "lastools"
        base = self.data_dir / "1_DSM_normalisation"
        for folder in (base, base / "1_DSM_normalisation"):
            for variant in (first, second):
                path = find_file(folder, f"{padded}_normalized_{variant}", (".jpg", ".tif"))
                if path is not None and path.stat().st_size > 0:  # some files are empty
                    return path
        return None

    def label_candidates(self, tile_id: str) -> list[Path]:
        d = self.data_dir
        if self.label_kind() == "eroded":
            name = f"top_potsdam_{tile_id}_label_noBoundary.tif"
            folders = [
                d / "5_Labels_all_noBoundary",
                d / "5_Labels_for_participants_no_Boundary",
                d,
            ]
        else:
            name = f"top_potsdam_{tile_id}_label.tif"
            folders = [d / "5_Labels_all", d / "5_Labels_for_participants", d]
        return [folder / name for folder in folders]
