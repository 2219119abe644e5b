"""What ISPRS Vaihingen and Potsdam share: classes, palette, label decoding, options.

Class order (mmsegmentation / GeoSeg / DeepNetsForEO): 0 impervious surfaces, 1 building,
2 low vegetation, 3 tree, 4 car, 5 clutter. Labels are RGB-coded TIFFs decoded by exact colour
match; ANY colour outside the palette -- including the black boundary of the eroded
(`_noBoundary`) references -- becomes ignore (255), never a class (unlike torchgeo, which maps
unmatched colours to clutter).

Conventions recorded in every result row (`label_set`, `eval_classes`, `ignore_index`):
training uses the full labels and val/test the eroded ones by default (the ISPRS protocol);
`clutter_in_mean=false` (default) averages mIoU/mF1 over the 5 foreground classes (GeoSeg /
ISPRS "mean F1"), `true` over all 6 (mmsegmentation). Clutter pixels stay in the confusion
matrix either way, so OA counts them and predictions on them are false positives.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import ClassVar

from benchmark.api import BenchmarkError, DatasetOptions
from datasets.folder import (
    ISPRS_CLASSES,
    ISPRS_PALETTE,
    Card,
    LabelCard,
    ModalityCard,
    Tile,
    TileDataset,
)

log = logging.getLogger(__name__)

LABEL_KINDS = ("full", "eroded")
_WARNED: set[tuple] = set()


def check_choice(dataset: str, name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise BenchmarkError(
            f"{dataset} option {name} must be one of {', '.join(choices)}, got {value!r}"
        )


def check_bool(dataset: str, name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise BenchmarkError(f"{dataset} option {name} must be true or false, got {value!r}")


@dataclasses.dataclass(frozen=True)
class IsprsOptions(DatasetOptions):
    split: str = "benchmark"
    train_labels: str = "full"
    eval_labels: str = "eroded"
    clutter_in_mean: bool = False

    SPLITS_: ClassVar[tuple[str, ...]] = ("benchmark", "fusion")

    def __post_init__(self) -> None:
        name = type(self).__name__.removesuffix("Options").lower()
        check_choice(name, "split", self.split, self.SPLITS_)
        check_choice(name, "train_labels", self.train_labels, LABEL_KINDS)
        check_choice(name, "eval_labels", self.eval_labels, LABEL_KINDS)
        check_bool(name, "clutter_in_mean", self.clutter_in_mean)


class IsprsDataset(TileDataset):
    """Base of the two ISPRS loaders: palette labels, protocol splits, a held-out val tile."""

    PROTOCOLS: ClassVar[dict[str, dict[str, tuple[str, ...]]]] = {}
    """split option -> {train, val, test} tile ids (val is held out of the official train)."""

    def label_kind(self) -> str:
        return self.options.train_labels if self.split == "train" else self.options.eval_labels

    def isprs_card(self, modalities: tuple[ModalityCard, ...], description: str) -> Card:
        o = self.options
        return Card(
            name=self.NAME,
            modalities=modalities,
            labels=LabelCard(folder="", encoding="palette"),
            classes=ISPRS_CLASSES,
            palette=ISPRS_PALETTE,
            eval_classes=tuple(range(6 if o.clutter_in_mean else 5)),
            label_set=(
                f"isprs6:train={o.train_labels},eval={o.eval_labels},"
                f"clutter_in_mean={str(o.clutter_in_mean).lower()},split={o.split}"
            ),
            description=description,
        )

    def protocol_ids(self, split: str) -> list[str]:
        return list(self.PROTOCOLS[self.options.split][split])

    def split_ids(self, split: str) -> list[str]:
        """Protocol tiles whose primary file exists; absent ones are skipped with a warning."""
        wanted = self.protocol_ids(split)
        present = [t for t in wanted if self.primary_path(t) is not None]
        absent = [t for t in wanted if t not in present]
        key = (self.NAME, split, str(self.data_dir), len(absent))
        if absent and present and key not in _WARNED:
            _WARNED.add(key)
            log.warning(
                "%s %s: %d of %d protocol tiles absent under %s (e.g. %s); using the %d present "
                "ones -- results are not comparable with the full protocol",
                self.NAME,
                split,
                len(absent),
                len(wanted),
                self.data_dir,
                ", ".join(absent[:3]),
                len(present),
            )
        return present

    def primary_path(self, tile_id: str) -> Path | None:
        return self.modality_path(self.card.modalities[0], tile_id)

    def label_candidates(self, tile_id: str) -> list[Path]:
        raise NotImplementedError

    def label_path(self, tile_id: str) -> Path | None:
        return next((p for p in self.label_candidates(tile_id) if p.is_file()), None)

    def resolve_tile(self, tile_id: str) -> Tile:
        if self.label_path(tile_id) is None:
            tried = ", ".join(
                str(p.relative_to(self.data_dir)) for p in self.label_candidates(tile_id)
            )
            raise self.not_found(f"tile {tile_id}: no {self.label_kind()} label (tried {tried})")
        return super().resolve_tile(tile_id)
