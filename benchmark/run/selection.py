"""Model-selection rules (`--selection`): which validation scores choose a run's checkpoint.

A registry like every other (DESIGN principle 4): a rule names the validation scenarios whose
mean mIoU ranks the checkpoints. Selection only ever sees the validation split; the rule's
name is recorded in every record, row and table caption.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from benchmark.core.records import SELECTION_FULL_VAL
from benchmark.core.registry import Registry
from benchmark.core.scenarios import Scenario


@dataclass(frozen=True)
class SelectionRule:
    """A selection rule: what it means, and which validation scenarios it averages."""

    description: str
    every_scenario: bool
    """Average every scenario the run is evaluated on (else only all-modalities-present)."""

    def scenarios(self, evaluated: Sequence[Scenario], full: Scenario) -> list[Scenario]:
        """Return the validation scenarios whose mean mIoU ranks a run's checkpoints."""
        return list(evaluated) if self.every_scenario else [full]


SELECTIONS: Registry[SelectionRule] = Registry("selection rule")
FULL_VAL = SELECTION_FULL_VAL
MEAN_VAL = "mean_val"

SELECTIONS.register(FULL_VAL)(
    SelectionRule(
        "one model per run: the checkpoint with the best validation mIoU with all modalities "
        "present, reported on every test scenario",
        every_scenario=False,
    )
)
SELECTIONS.register(MEAN_VAL)(
    SelectionRule(
        "one model per run: the checkpoint with the best mean validation mIoU over every "
        "scenario the run is evaluated on, reported on every test scenario",
        every_scenario=True,
    )
)


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
