"""Missing-modality scenarios: which modalities are present at test time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import TypeVar

from benchmark.system.errors import BenchmarkError

V = TypeVar("V")


@dataclass(frozen=True)
class Scenario:
    """The set of modalities available at inference time."""

    present: frozenset[str]

    def __post_init__(self) -> None:
        if not self.present:
            raise BenchmarkError("a scenario needs at least one present modality")

    def __str__(self) -> str:
        return "+".join(sorted(self.present))

    def missing(self, all_modalities: Sequence[str]) -> tuple[str, ...]:
        """Return the modalities of `all_modalities` that this scenario lacks, sorted."""
        return tuple(sorted(set(all_modalities) - self.present))

    def missing_label(self, all_modalities: Sequence[str]) -> str:
        """`none` when nothing is missing, else the `+`-joined absent modalities."""
        gone = self.missing(all_modalities)
        return "+".join(gone) if gone else "none"

    def select(self, inputs: Mapping[str, V]) -> dict[str, V]:
        """Keep only present modalities. Absence is absence: no key, no zero tensor."""
        return {k: v for k, v in inputs.items() if k in self.present}

    @classmethod
    def parse(cls, text: str) -> Scenario:
        """Read the canonical form, e.g. `dsm+optical`."""
        return cls(frozenset(p for p in text.split("+") if p))


def all_scenarios(names: Sequence[str]) -> list[Scenario]:
    """Every non-empty subset of `names`: full set first, then by decreasing size, then by name."""
    unique = sorted(set(names))
    subsets = [
        Scenario(frozenset(c)) for k in range(len(unique), 0, -1) for c in combinations(unique, k)
    ]
    return subsets


def scenarios_for_missing(missing: str, names: Sequence[str]) -> list[Scenario]:
    """Map the CLI's `--missing all|none|<mod>[,<mod>…]` onto scenarios to evaluate.

    The full-modality scenario is always included (first) as the reference.
    `--missing dsm` evaluates the scenario where exactly `dsm` is absent; `--missing dsm,sar`
    evaluates both single-absence scenarios.
    """
    full = Scenario(frozenset(names))
    text = missing.strip()
    if text == "all":
        return all_scenarios(names)
    if text == "none":
        return [full]
    wanted: list[Scenario] = [full]
    for part in text.split(","):
        part = part.strip()
        absent = {p for p in part.split("+") if p}
        unknown = sorted(absent - set(names))
        if not part or unknown:
            raise BenchmarkError(
                f"--missing: unknown modality {', '.join(unknown) or repr(part)}; valid: "
                f"all, none, {', '.join(sorted(names))}"
            )
        present = frozenset(set(names) - absent)
        if not present:
            raise BenchmarkError(f"--missing {part!r} leaves no modality present")
        scenario = Scenario(present)
        if scenario not in wanted:
            wanted.append(scenario)
    return wanted
