"""Model-selection rules (`--selection`): which validated checkpoint a run reports.

A registry like every other (DESIGN principle 4). A rule is one function over a run's
intermediate validation records (split `val`, one record per validation x scenario the run is
evaluated on) that returns the step it chooses; it never sees the test split. Every run keeps
the weights each registered rule chooses and writes records for every rule, so a rule is a
function of what was recorded and a new one costs no training (DomainBed's model selection).
`--selection` only chooses which rule's records a leaderboard, report or corrupted evaluation
reads; the rule's name is in every record, row and table caption.

Adding a rule is one function registered here with `@selection_rule(name, description)`.
Checkpoints are kept as validations arrive, so a rule must choose online: its choice over a
longer history is its earlier choice or the newest validation (`chosen_steps` refuses
anything else).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmark.core.records import SELECTION_FULL_VAL
from benchmark.core.registry import Registry
from benchmark.system.errors import BenchmarkError

Record = Mapping[str, Any]
Choose = Callable[[Sequence[Record]], int]


@dataclass(frozen=True)
class SelectionRule:
    """A selection rule: what it means, and the function that chooses a step."""

    description: str
    choose: Choose
    """Validation records (split `val`, intermediate validations only) -> the chosen step."""


SELECTIONS: Registry[SelectionRule] = Registry("selection rule")
FULL_VAL = SELECTION_FULL_VAL
MEAN_VAL = "mean_val"


def selection_rule(name: str, description: str) -> Callable[[Choose], Choose]:
    """Register the decorated function as the rule `name` (all a new rule needs)."""

    def register(choose: Choose) -> Choose:
        SELECTIONS.register(name)(SelectionRule(description, choose))
        return choose

    return register


def best_step(scores: Mapping[int, float]) -> int:
    """The step of the highest score, the earliest on ties: validations in step order, each
    replacing the best only when strictly better (as checkpoints are kept during training)."""
    best = None
    for step in sorted(scores):
        if best is None or scores[step] > scores[best]:
            best = step
    if best is None:
        raise BenchmarkError("model selection: no validation record to choose from")
    return best


def full_scenario_scores(validations: Sequence[Record]) -> dict[int, float]:
    """Step -> validation mIoU with every modality the run trains on (its most-present
    scenario)."""
    full = max(r["n_present"] for r in validations)
    return {r["checkpoint_step"]: r["miou"] for r in validations if r["n_present"] == full}


@selection_rule(
    FULL_VAL,
    "one model per run: the checkpoint with the best validation mIoU with all modalities "
    "present, reported on every test scenario",
)
def full_val(validations: Sequence[Record]) -> int:
    """The best validation mIoU with every modality present."""
    return best_step(full_scenario_scores(validations))


@selection_rule(
    MEAN_VAL,
    "one model per run: the checkpoint with the best mean validation mIoU over every "
    "scenario the run is evaluated on, reported on every test scenario",
)
def mean_val(validations: Sequence[Record]) -> int:
    """The best mean validation mIoU over every scenario the run is evaluated on."""
    by_step: dict[int, list[float]] = {}
    for rec in validations:
        by_step.setdefault(rec["checkpoint_step"], []).append(rec["miou"])
    return best_step({step: float(np.mean(scores)) for step, scores in by_step.items()})


def validation_records(records: Iterable[Record]) -> list[Record]:
    """What a rule may see: the intermediate validations (split `val`, no rule yet)."""
    return [r for r in records if r["split"] == "val" and not r["selection"]]


def rule_names() -> list[str]:
    """Every registered rule, the default first (its checkpoint is the deployed model)."""
    return [FULL_VAL, *(name for name in SELECTIONS.names() if name != FULL_VAL)]


def chosen_steps(
    records: Iterable[Record], earlier: Mapping[str, int] | None = None
) -> dict[str, int]:
    """Each registered rule's step over a run's records (default rule first); rules are shown
    the intermediate validation records only.

    With `earlier` (the choices at the previous validation), a choice that is neither the
    rule's earlier one nor the newest validation is refused: its weights were not kept.
    """
    validations = validation_records(records)
    if not validations:
        raise BenchmarkError("model selection: no validation record to choose from")
    steps = {r["checkpoint_step"] for r in validations}
    newest = max(steps)
    chosen = {}
    for name in rule_names():
        step = SELECTIONS.get(name).choose(validations)
        if step not in steps:
            raise BenchmarkError(
                f"selection rule {name!r} chose step {step!r}; expected one of the validated "
                f"steps {sorted(steps)}"
            )
        if earlier is not None and step not in (newest, earlier.get(name, newest)):
            raise BenchmarkError(
                f"selection rule {name!r} chose step {step} at step {newest}, expected its "
                f"earlier choice {earlier.get(name)} or {newest}: a rule must choose as "
                "validations arrive (other steps' weights are not kept)"
            )
        chosen[name] = step
    return chosen


def owners(chosen: Mapping[str, int]) -> dict[int, str]:
    """Chosen step -> the rule its weights and evaluations are kept under: the default rule's
    step under the default rule, every other under the first rule (in `chosen`'s order) that
    chose it."""
    kept = {chosen[FULL_VAL]: FULL_VAL} if FULL_VAL in chosen else {}
    for name, step in chosen.items():
        kept.setdefault(step, name)
    return kept


class RuleDescriptions(Mapping[str, str]):
    """Rule name -> description, read through the registry (tables and captions use it)."""

    def __getitem__(self, name: str) -> str:
        if name not in SELECTIONS:
            raise KeyError(name)
        return SELECTIONS.get(name).description

    def __iter__(self) -> Iterator[str]:
        return iter(SELECTIONS.names())

    def __len__(self) -> int:
        return len(SELECTIONS)


SELECTION_DESCRIPTION = RuleDescriptions()
"""Model-selection rules (`--selection`) by name: description."""
