"""Hyperparameters declared next to the code they configure, with a default and a search range."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from benchmark.errors import BenchmarkError


@dataclass(frozen=True)
class HParam:
    """One hyperparameter: its default (the paper's value, or ours with a reason) and range.

    `choices` restricts a categorical value; `low`/`high` bound a numeric one and are also the
    search range a sweep may draw from (`log=True` for scale parameters such as learning rates).
    """

    default: Any
    help: str = ""
    choices: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False

    def validate(self, name: str, value: Any) -> Any:
        """Return `value` coerced to the default's type, or raise a one-line error."""
        expected = type(self.default)
        if expected is bool:
            if not isinstance(value, bool):
                raise BenchmarkError(f"hyperparameter {name}={value!r}: expected true or false")
        elif expected is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise BenchmarkError(f"hyperparameter {name}={value!r}: expected an integer")
        elif expected is float:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise BenchmarkError(f"hyperparameter {name}={value!r}: expected a number")
            value = float(value)
        elif expected is str:
            if not isinstance(value, str):
                value = str(value)
        elif expected is tuple:
            if not isinstance(value, tuple | list):
                raise BenchmarkError(f"hyperparameter {name}={value!r}: expected a tuple")
            value = tuple(value)
        if self.choices is not None and value not in self.choices:
            valid = ", ".join(str(c) for c in self.choices)
            raise BenchmarkError(f"hyperparameter {name}={value!r}: expected one of {valid}")
        if isinstance(value, int | float) and not isinstance(value, bool):
            if self.low is not None and value < self.low:
                raise BenchmarkError(f"hyperparameter {name}={value!r}: must be >= {self.low}")
            if self.high is not None and value > self.high:
                raise BenchmarkError(f"hyperparameter {name}={value!r}: must be <= {self.high}")
        return value


HParamSpace = Mapping[str, HParam]


def resolve_hparams(
    space: HParamSpace,
    *layers: Mapping[str, Any],
    owner: str = "method",
) -> dict[str, Any]:
    """Defaults of `space`, then each override layer in order (preset, then user).

    Unknown names raise, listing the valid ones, so a typo never silently does nothing.
    """
    values = {name: hp.default for name, hp in space.items()}
    for layer in layers:
        unknown = sorted(set(layer) - set(space))
        if unknown:
            raise BenchmarkError(
                f"unknown hyperparameter {', '.join(unknown)} for {owner}; "
                f"valid: {', '.join(sorted(space))}"
            )
        for name, value in layer.items():
            values[name] = space[name].validate(name, value)
    return values
