"""ISPRS Vaihingen exactly as distributed: IRRG true orthophotos + DSM + RGB-coded labels.

Expected tree under `--data-root` (`<data-root>/vaihingen/` or the data root itself), i.e. the
extracted `ISPRS_semantic_labeling_Vaihingen.zip` plus the ground-truth zips::

    vaihingen/
      top/top_mosaic_09cm_area{N}.tif              3 x uint8, NIR, R, G
      dsm/dsm_09cm_matching_area{N}.tif            float32 DSM, absolute heights
      ndsm/dsm_09cm_matching_area{N}.{jpg,tif}     optional normalised DSM (some mirrors: NDSM/)
      top_mosaic_09cm_area{N}.tif                  full labels, ..._ground_truth_COMPLETE.zip
                                                   (or gts_for_participants/, 16 tiles)
      top_mosaic_09cm_area{N}_noBoundary.tif       eroded labels, ..._eroded_COMPLETE.zip
                                                   (or gts_eroded_for_participants/)

Tile ids are `area{N}`. The eroded zip's extra `area9` (no image) is never listed.
Options (`--dataset "vaihingen[key=value,...]"`): `split` = benchmark (ISPRS: 16 train /
17 test; val = area30 held out of train, as GeoSeg, so 15 train) | fusion (DeepNetsForEO /
vFuseNet: 12 train / 4 test; val = area37 held out of train, so 11 train); `height` = dsm
(default) | ndsm; `train_labels` / `eval_labels` = full | eroded (defaults full / eroded) and
`clutter_in_mean` (see `datasets/isprs.py`). The data are licensed by ISPRS, never downloaded.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar

from benchmark.api import DatasetOptions, register_dataset
from datasets.files.raster_io import find_file
from datasets.folder import Card, ModalityCard
from datasets.isprs import IsprsDataset, IsprsOptions, check_choice

BENCHMARK_TRAIN = (1, 3, 5, 7, 11, 13, 15, 17, 21, 23, 26, 28, 30, 32, 34, 37)
BENCHMARK_TEST = (2, 4, 6, 8, 10, 12, 14, 16, 20, 22, 24, 27, 29, 31, 33, 35, 38)
FUSION_TRAIN = (1, 3, 23, 26, 7, 11, 13, 28, 17, 32, 34, 37)
FUSION_TEST = (5, 21, 15, 30)
BENCHMARK_VAL, FUSION_VAL = 30, 37


def _protocol(train, test, val) -> dict[str, tuple[str, ...]]:
    return {
        "train": tuple(f"area{n}" for n in train if n != val),
        "val": (f"area{val}",),
        "test": tuple(f"area{n}" for n in test),
    }


@dataclasses.dataclass(frozen=True)
class VaihingenOptions(IsprsOptions):
    height: str = "dsm"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("vaihingen", "height", self.height, ("dsm", "ndsm"))


@register_dataset("vaihingen")
class VaihingenDataset(IsprsDataset):
    """ISPRS Vaihingen 9 cm: IRRG orthophoto + DSM (or nDSM), 6 classes (licensed)."""

    DIRNAME = "vaihingen"
    Options: ClassVar[type[DatasetOptions]] = VaihingenOptions
    MODALITIES = ("optical", "dsm")
    PROTOCOLS = {
        "benchmark": _protocol(BENCHMARK_TRAIN, BENCHMARK_TEST, BENCHMARK_VAL),
        "fusion": _protocol(FUSION_TRAIN, FUSION_TEST, FUSION_VAL),
    }
    LAYOUT = (
        "vaihingen/top/top_mosaic_09cm_areaN.tif, vaihingen/dsm/dsm_09cm_matching_areaN.tif, "
        "labels vaihingen/top_mosaic_09cm_areaN.tif (full) and "
        "vaihingen/top_mosaic_09cm_areaN_noBoundary.tif (eroded)"
    )
    SOURCE = (
        "licensed data, never downloaded: request ISPRS_semantic_labeling_Vaihingen.zip and "
        "the ground_truth(_eroded)_COMPLETE zips at "
        "https://www.isprs.org/education/benchmarks/UrbanSemLab/ and extract them into "
        "<data-root>/vaihingen/"
    )

    def build_card(self) -> Card:
        if self.options.height == "dsm":
            height = ModalityCard("dsm", 1, "dsm", description="DSM, absolute height [m]")
        else:
            height = ModalityCard("dsm", 1, "ndsm", description="normalised DSM")
        optical = ModalityCard("optical", 3, "top", description="NIR, R, G (uint8)")
        return self.isprs_card((optical, height), (type(self).__doc__ or "").strip())

    def looks_like_layout(self, directory: Path) -> bool:
        return (directory / "top").is_dir()

    def modality_path(self, modality: ModalityCard, tile_id: str) -> Path | None:
        d = self.data_dir
        if modality.name == "optical":
            return find_file(d / "top", f"top_mosaic_09cm_{tile_id}", (".tif", ".tiff"))
        if self.options.height == "dsm":
            return find_file(d / "dsm", f"dsm_09cm_matching_{tile_id}", (".tif", ".tiff"))
        for folder in (d / "ndsm", d / "NDSM", d / "nDSM"):
            path = find_file(folder, f"dsm_09cm_matching_{tile_id}", (".jpg", ".tif", ".png"))
            if path is not None:
                return path
        return None

    def label_candidates(self, tile_id: str) -> list[Path]:
        d = self.data_dir
        if self.label_kind() == "eroded":
            name = f"top_mosaic_09cm_{tile_id}_noBoundary.tif"
            folders = [
                d,
                d / "ISPRS_semantic_labeling_Vaihingen_ground_truth_eroded_COMPLETE",
                d / "gts_eroded_for_participants",
            ]
        else:
            name = f"top_mosaic_09cm_{tile_id}.tif"
            folders = [
                d,
                d / "ISPRS_semantic_labeling_Vaihingen_ground_truth_COMPLETE",
                d / "gts_for_participants",
            ]
        return [folder / name for folder in folders]
