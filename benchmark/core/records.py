"""Run specifications (content-addressed) and self-describing evaluation records."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from benchmark.core.hparams import Params

HARNESS_VERSION = 2
"""Bump when a change to training or evaluation makes old runs incomparable.

2: absent samples bypass their modality's encoder and norms, normaliser statistics from present
tiles only, faithful MetaRS / MMANet / LCKD, the teacher budget rule, each method's own
invalid-pixel fill (issue 30)."""

SELECTION_FULL_VAL = "full_val"
"""The default model-selection rule's name (the rules themselves: `benchmark.run.selection`)."""

CLEAN = "none"
"""`corruption` of a record evaluated on clean data (severity 0)."""

OWN_FILL = "own"
"""`invalid_fill` of a corrupted evaluation where each method handled the pixels a corruption
marks invalid with its own missing-modality mechanism (`Method.predict_partial`)."""
MEAN_FILL = "mean"
"""`invalid_fill` where invalid pixels were set to the training mean for every method
(`mean_fill_invalid`): the comparison variant, and what records without the field measured."""
INVALID_FILLS = (OWN_FILL, MEAN_FILL)
"""The values of `--invalid-fill`: an evaluation-time choice, so one trained model is compared
under both."""


HPARAMS = "hparams."
"""Prefix of a hyperparameter's key in `RunSpec.file_digests` (`hparams.weights`)."""
DATASET_FILES = "dataset_files"
"""Key in `RunSpec.file_digests` of a dataset's data files (`MultiModalDataset.data_digest`)."""
FILE_BY_CONTENT = "<file: file_digests>"
"""What a hyperparameter naming a file hashes as in place of its path: its bytes are in
`file_digests`, so the same weights at another path are the same run."""


@dataclass(frozen=True)
class RunSpec:
    """Everything that determines a run's outcome; its hash names the run directory."""

    method: str
    hparams: Params
    """Every hyperparameter of the method, resolved (defaults, then preset, then overrides)."""
    dataset: str
    dataset_options: Params
    seed: int
    steps: int
    val_checks: int
    eval_overlap: float
    eval_batch_size: int
    train_modalities: tuple[str, ...]
    imbalance: float = 1.0
    """Controlled-imbalance factor for the training labels (benchmark/data/imbalance.py)."""
    budget: str = "steps"
    """`steps`: the preset's step budget; `flops`: steps scaled to the baseline's FLOPs."""
    budget_ratio: float = 1.0
    """Under `flops`: baseline FLOPs per step / this method's (measured), steps scaled by it."""
    train_missing: tuple[tuple[str, float], ...] = ()
    """(modality, share of training tiles without it), sorted; empty = complete training data."""
    eval_window: int = 0
    """Evaluation window side in pixels (a tile up to that size is one window); 0 = the
    training crop, the rule before windows were chosen for evaluation."""
    eval_tiles: int = 0
    """Evaluate on the first that many tiles of the validation and test splits; 0 = all."""
    file_digests: tuple[tuple[str, str], ...] = ()
    """(`<section>.<name>`, `sha256:<hex>`) of every file the run reads by path, sorted:
    `hparams.weights` (`weights=<path>`), `dataset_options.card` (a `folder` card), and
    `dataset_files`, one digest of the data files of a dataset that opts in (a `folder`
    card's tiles, by path relative to the data folder and bytes: `data_digest`); empty when
    it reads none. The id hashes the bytes: edit a file and the run is another. A
    hyperparameter's path is left out of the hash (weights are their bytes, wherever they
    lie); a dataset option's path stays in (a card's data are found relative to it)."""
    selection: str = field(default=SELECTION_FULL_VAL, compare=False)
    """Which model-selection rule's records this request reads (`--selection`, a name in
    `benchmark.run.selection.SELECTIONS`). Not part of the run: every run records every rule,
    so it is neither hashed nor written to `spec.json`."""
    harness_version: int = HARNESS_VERSION
    label: str = field(default="", compare=False)
    """Display name, e.g. `baseline[lr=0.0003]`; not part of the hash."""
    preset: str = field(default="", compare=False)
    dataset_name: str = field(default="", compare=False)
    """The dataset's name in rows and tables where it is not `dataset` (a `folder` card's
    `name`, `MultiModalDataset.report_name`); "" otherwise. Display only: not hashed, and left
    out of `spec.json` when empty, so the built-in datasets' runs are as they were."""

    @property
    def dataset_label(self) -> str:
        """The dataset as rows, tables and logs name it (`dataset_name`, else `dataset`)."""
        return self.dataset_name or self.dataset

    def _plain(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        if not self.dataset_name:
            data.pop("dataset_name")
        data["hparams"] = self.hparams.pairs()
        data["dataset_options"] = self.dataset_options.pairs()
        data["train_modalities"] = list(self.train_modalities)
        data["train_missing"] = [list(pair) for pair in self.train_missing]
        data["file_digests"] = [list(pair) for pair in self.file_digests]
        if not self.file_digests:  # spec.json of a run that reads no file is as it was
            data.pop("file_digests")
        return data

    @property
    def train_missing_label(self) -> str:
        """`dsm=0.3,sar=0.5`, or "" for complete training data (records and tables)."""
        return ",".join(f"{m}={rate:g}" for m, rate in self.train_missing)

    def to_json(self) -> dict[str, Any]:
        """Return the spec as JSON: every field, mappings as sorted `[name, value]` pairs.

        The requested `selection` is in it, so a worker process reads the rule it was asked
        for; `spec.json` leaves it out (`RunStore.write_spec`).
        """
        return {**self._plain(), "run_id": self.run_id}

    def hashed_fields(self) -> dict[str, Any]:
        """Return what the run id hashes.

        Everything but the display fields, the eval batch size (batching windows does not
        change the logits' average) and the requested selection rule (every run records every
        rule).
        """
        data = self._plain()
        for name in ("label", "preset", "eval_batch_size", "selection"):
            data.pop(name)
        data.pop("dataset_name", None)
        if self.budget == "steps":  # the default budget hashes as before it existed
            data.pop("budget")
            data.pop("budget_ratio")
        if not self.train_missing:  # so do complete training data
            data.pop("train_missing")
        for name in ("eval_window", "eval_tiles"):  # and the evaluation of every split
            if not getattr(self, name):
                data.pop(name)
        by_content = {k[len(HPARAMS) :] for k, _ in self.file_digests if k.startswith(HPARAMS)}
        if by_content:  # a file hyperparameter hashes as its bytes (in file_digests), not its path
            data["hparams"] = [
                [name, FILE_BY_CONTENT if name in by_content else value]
                for name, value in data["hparams"]
            ]
        return data

    @property
    def run_id(self) -> str:
        """16 hex digits of the SHA-1 of the hashed fields' canonical JSON."""
        return _digest(self.hashed_fields())

    @property
    def legacy_run_id(self) -> str | None:
        """Return the id a run of a non-default rule had when the rule was part of the run.

        Before every run recorded every rule, such a rule was hashed; the id keeps those runs
        readable. None for the default rule, whose ids never changed.
        """
        if self.selection == SELECTION_FULL_VAL:
            return None
        return _digest({**self.hashed_fields(), "selection": self.selection})

    @property
    def window(self) -> int:
        """The evaluation window side in pixels (`eval_window`, else the training crop)."""
        return self.eval_window or int(self.hparams["crop_size"])

    def tiles_evaluated(self, available: int) -> int:
        """How many of a split's `available` tiles are evaluated (`eval_tiles`, else all)."""
        return tiles_evaluated(self.eval_tiles, available)

    @property
    def val_every(self) -> int:
        """Steps between validations (`val_checks` of them over the run)."""
        return max(1, self.steps // max(1, self.val_checks))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunSpec:
        """Rebuild a spec from its `spec.json` form (the `run_id` key is recomputed)."""
        data = {k: v for k, v in data.items() if k in {f.name for f in fields(cls)}}
        data["hparams"] = Params((k, v) for k, v in data["hparams"])
        data["dataset_options"] = Params((k, v) for k, v in data["dataset_options"])
        data["train_modalities"] = tuple(data["train_modalities"])
        data["train_missing"] = tuple((m, float(r)) for m, r in data.get("train_missing", ()))
        data["file_digests"] = tuple((k, str(d)) for k, d in data.get("file_digests", ()))
        return cls(**data)


def tiles_evaluated(limit: int, available: int) -> int:
    """Return how many of `available` tiles are evaluated: the first `limit`, or all at 0."""
    return min(limit, available) if limit > 0 else available


def _digest(hashed: Mapping[str, Any]) -> str:
    """16 hex digits of the SHA-1 of `hashed`'s canonical JSON."""
    canonical = json.dumps(hashed, sort_keys=True, default=str)
    return hashlib.sha1(canonical.encode("utf-8")).hexdigest()[:16]


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
    """Selection rule that chose this checkpoint, or "" for an intermediate validation (a
    checkpoint several rules chose has its records once per rule)."""
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
    kind: str
    """`single-model` or `oracle` (one model per scenario): oracles are never the winner."""
    params_trained: int
    """Parameters the method's optimisers update."""
    params_inference: int
    """Parameters of the modules that run to predict this scenario."""
    train_gflops_per_step: float
    """Mean GFLOPs of a training step (FlopCounterMode on real steps, `benchmark.run.cost`), per
    step of the budget: a teacher trained before the student (`Method.update_calls`) counts."""
    infer_gflops_per_window: float
    """GFLOPs of predicting one training-crop-sized window (batch 1) of this scenario."""
    step_ms: float
    """Median wall milliseconds of a training step, i.e. of one `update` call (a teacher's
    included; validation excluded)."""
    budget: str
    budget_ratio: float
    train_missing: str
    """`RunSpec.train_missing_label`: "" for complete training data."""
    corruption: str
    """Test-time corruption (`benchmark.corrupt.catalogue`), or `none` (`CLEAN`)."""
    severity: int
    """Its severity 1-5; 0 for clean data."""
    device: str
    commit: str
    versions: dict[str, str]
    timestamp: str
    extra: dict[str, float] = field(default_factory=dict)
    """Method diagnostics at this checkpoint (e.g. collapse measures), by name."""
    eval_window: int = 0
    """Side of the evaluation windows in pixels (0 in records written before it was kept:
    the training crop)."""
    eval_overlap: float = 0.5
    """Share of a window its neighbours overlap."""
    invalid_fill: str = ""
    """On a corrupted record, how the pixels the corruption marks invalid were handled:
    `own` or `mean` (`INVALID_FILLS`; a corrupted record without it measured `mean`, see
    `invalid_fill_of`); "" on clean records."""
    invalid_fill_from: str = ""
    """On a corrupted record written from the evaluation under the other fill instead of
    evaluated itself, that fill: the method's own handling of invalid pixels is the mean fill
    (`Method.own_fill_is_mean`), so both fills give the same predictions and scores. "" on a
    record that was evaluated (and on clean records)."""

    def to_json(self) -> dict[str, Any]:
        """Return the record as one JSON object (a line of `records.jsonl`)."""
        return asdict(self)


def invalid_fill_of(record: Mapping[str, Any]) -> str:
    """Return `own` or `mean`: how a corrupted record's invalid pixels were handled.

    Records written before the field existed read as `mean`: every method then mean-filled
    them (`generative`'s imputation was overwritten by the mean fill it fell back to).
    """
    return record.get("invalid_fill") or MEAN_FILL
