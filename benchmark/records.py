"""Run specifications (content-addressed) and self-describing evaluation records."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

HARNESS_VERSION = 1
"""Bump when a change to training or evaluation makes old runs incomparable."""

SELECTION_FULL_VAL = "full_val"
SELECTION_DESCRIPTION = {
    SELECTION_FULL_VAL: (
        "one model per run: the checkpoint with the best validation mIoU with all "
        "modalities present, reported on every test scenario"
    ),
}


@dataclass(frozen=True)
class RunSpec:
    """Everything that determines a run's outcome; its hash names the run directory."""

    method: str
    hparams: tuple[tuple[str, Any], ...]
    dataset: str
    dataset_options: tuple[tuple[str, Any], ...]
    seed: int
    steps: int
    val_checks: int
    eval_overlap: float
    eval_batch_size: int
    train_modalities: tuple[str, ...]
    imbalance: float = 1.0
    """Controlled-imbalance factor for the training labels (benchmark/imbalance.py)."""
    harness_version: int = HARNESS_VERSION
    label: str = field(default="", compare=False)
    """Display name, e.g. `baseline[lr=0.0003]`; not part of the hash."""
    preset: str = field(default="", compare=False)

    def hashed_fields(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("label")
        data.pop("preset")
        data.pop("eval_batch_size")  # batching windows does not change the logits' average
        return data

    @property
    def run_id(self) -> str:
        canonical = json.dumps(self.hashed_fields(), sort_keys=True, default=str)
        return hashlib.sha1(canonical.encode("utf-8")).hexdigest()[:16]

    @property
    def hparams_dict(self) -> dict[str, Any]:
        return dict(self.hparams)

    @property
    def val_every(self) -> int:
        return max(1, self.steps // max(1, self.val_checks))

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["run_id"] = self.run_id
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunSpec:
        data = dict(data)
        data.pop("run_id", None)
        for key in ("hparams", "dataset_options"):
            data[key] = tuple((k, _freeze(v)) for k, v in data[key])
        data["train_modalities"] = tuple(data["train_modalities"])
        return cls(**data)


def _freeze(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


@dataclass(frozen=True)
class EvalRecord:
    """One evaluation: run x split x scenario x checkpoint. Tables are functions of these."""

    run_id: str
    method: str
    method_name: str
    dataset: str
    dataset_options: dict[str, Any]
    hparams: dict[str, Any]
    seed: int
    steps: int
    preset: str
    imbalance: float
    checkpoint_step: int
    split: str
    scenario: str
    missing: str
    n_present: int
    selection: str
    """Selection rule that chose this checkpoint, or "" for an intermediate validation."""
    miou: float
    mf1: float
    oa: float
    kappa: float
    classes: list[str]
    iou: list[float]
    f1: list[float]
    precision: list[float]
    recall: list[float]
    support: list[int]
    confusion: list[list[int]]
    tile_names: list[str]
    tile_confusions: list[list[list[int]]]
    """One confusion matrix per evaluated tile (same order as `tile_names`), for resampling."""
    eval_classes: list[str]
    tiers: dict[str, list[str]]
    """Class names per frequency tier (head/body/tail) from the original training labels."""
    tier_miou: dict[str, float]
    tier_mf1: dict[str, float]
    ignore_index: int
    label_set: str
    eval_seconds: float
    train_seconds: float
    peak_memory_mb: float
    device: str
    commit: str
    versions: dict[str, str]
    timestamp: str
    extra: dict[str, float] = field(default_factory=dict)
    """Method diagnostics at this checkpoint (e.g. collapse measures), by name."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
