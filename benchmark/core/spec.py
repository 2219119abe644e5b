"""Data descriptions: modalities, classes and the evaluation convention of a dataset."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

MASK = "mask"
"""Reserved sample key for the label map; no modality may use it."""

MODALITY_KINDS = ("optical", "elevation", "sar", "other")
"""What a modality physically measures; corruptions (`benchmark.corrupt.catalogue`) pick their
targets by kind (clouds fall on optical bands, voids on elevation, speckle on SAR)."""

_KIND_BY_NAME = {
    "optical": ("optical", "rgb", "irrg", "rgbir", "nir", "ms", "msi", "s2", "multispectral"),
    "elevation": ("dsm", "ndsm", "dem", "dtm", "height", "lidar", "elevation"),
    "sar": ("sar", "s1", "radar"),
}


def infer_modality_kind(name: str) -> str:
    """Return the kind a modality's name suggests (`dsm` -> elevation, ...), else other."""
    for kind, names in _KIND_BY_NAME.items():
        if name in names or any(name.startswith(n + "_") for n in names):
            return kind
    return "other"


@dataclass(frozen=True)
class Modality:
    """One input modality: its name, band count and normalisation statistics.

    `mean`/`std` are per band, in the raw units the loader returns (e.g. metres for a DSM);
    the harness normalises with them, so a missing modality's mean fill is 0 after normalising.
    """

    name: str
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    description: str = ""
    kind: str = ""
    """One of `MODALITY_KINDS`; empty means inferred from the name (`infer_modality_kind`)."""

    def __post_init__(self) -> None:
        if not self.kind:
            object.__setattr__(self, "kind", infer_modality_kind(self.name))
        if self.kind not in MODALITY_KINDS:
            raise ValueError(
                f"modality {self.name!r}: kind {self.kind!r} is not one of {MODALITY_KINDS}"
            )
        if self.name == MASK or not self.name.isidentifier() or self.name != self.name.lower():
            raise ValueError(
                f"modality name {self.name!r} must be a lower-case identifier, not 'mask'"
            )
        if "+" in self.name:
            raise ValueError(f"modality name {self.name!r} may not contain '+'")
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise ValueError(
                f"modality {self.name!r}: mean/std need {self.channels} values, "
                f"got {len(self.mean)}/{len(self.std)}"
            )
        if any(s <= 0 for s in self.std):
            raise ValueError(f"modality {self.name!r}: std must be positive, got {self.std}")


@dataclass(frozen=True)
class DatasetSpec:
    """Everything the harness and methods may know about a dataset, as data.

    `eval_classes` are the class indices that enter the macro means (mIoU, mF1); e.g. ISPRS
    papers often exclude clutter. Pixels labelled `ignore_index` never count anywhere.
    """

    name: str
    modalities: tuple[Modality, ...]
    classes: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]
    ignore_index: int = 255
    eval_classes: tuple[int, ...] = field(default=())
    label_set: str = ""
    description: str = ""
    tier_thresholds: tuple[float, float] = (0.15, 0.05)
    """Training-pixel shares separating head (>= first) / body / tail (< second) classes."""

    def __post_init__(self) -> None:
        names = [m.name for m in self.modalities]
        if len(set(names)) != len(names) or not names:
            raise ValueError(f"dataset {self.name!r}: modality names must be unique, got {names}")
        if len(self.palette) != len(self.classes):
            raise ValueError(f"dataset {self.name!r}: palette needs one colour per class")
        if 0 <= self.ignore_index < len(self.classes):
            raise ValueError(f"dataset {self.name!r}: ignore_index collides with a class index")
        if not self.eval_classes:
            object.__setattr__(self, "eval_classes", tuple(range(len(self.classes))))
        if any(not 0 <= c < len(self.classes) for c in self.eval_classes):
            raise ValueError(f"dataset {self.name!r}: eval_classes out of range")

    @property
    def modality_names(self) -> tuple[str, ...]:
        """The modalities' names, in the spec's order."""
        return tuple(m.name for m in self.modalities)

    @property
    def num_classes(self) -> int:
        """How many classes the labels have (the ignore index is not one)."""
        return len(self.classes)

    def modality(self, name: str) -> Modality:
        """Return the modality called `name`."""
        for m in self.modalities:
            if m.name == name:
                return m
        raise KeyError(f"dataset {self.name!r} has no modality {name!r}")

    @property
    def eval_class_names(self) -> tuple[str, ...]:
        """The names of the classes that enter the macro means."""
        return tuple(self.classes[i] for i in self.eval_classes)

    def to_json(self) -> dict[str, Any]:
        """Return everything in JSON types (a model card carries it: no dataset needed later)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DatasetSpec:
        """Rebuild the spec that `to_json` wrote."""
        modalities = tuple(
            Modality(
                m["name"],
                m["channels"],
                tuple(m["mean"]),
                tuple(m["std"]),
                m["description"],
                m.get("kind", ""),
            )
            for m in data["modalities"]
        )
        return cls(
            name=data["name"],
            modalities=modalities,
            classes=tuple(data["classes"]),
            palette=tuple(tuple(c) for c in data["palette"]),
            ignore_index=data["ignore_index"],
            eval_classes=tuple(data["eval_classes"]),
            label_set=data["label_set"],
            description=data["description"],
            tier_thresholds=tuple(data["tier_thresholds"]),
        )

    def convention(self) -> str:
        """Human-readable description of which classes enter the means."""
        if len(self.eval_classes) == self.num_classes:
            return "all classes"
        left_out = [c for i, c in enumerate(self.classes) if i not in self.eval_classes]
        return "all classes except " + ", ".join(left_out)
