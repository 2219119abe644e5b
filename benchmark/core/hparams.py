"""Hyperparameters declared next to the code they configure.

`Params` is the one frozen form that overrides and resolved values keep from the command line
to the run spec.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from benchmark.system.errors import BenchmarkError


def freeze(value: Any) -> Any:
    """Return a hashable form of an override value: lists (at any depth) become tuples."""
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    if isinstance(value, dict | Mapping):
        raise BenchmarkError(f"value {value!r}: mappings are not allowed here")
    return value


class Params(Mapping[str, Any]):
    """A frozen, hashable name -> value mapping, sorted by name.

    The one form hyperparameter and dataset overrides take from parsing (`baseline[lr=3e-4]`)
    to the resolved values in a run spec: equal contents compare and hash equal, whatever the
    order they were given in, and list values (`translate_levels=[2,3]`) are kept as tuples.
    """

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, Any] | Iterable[tuple[str, Any]] = ()) -> None:
        pairs = items.items() if isinstance(items, Mapping) else items
        data = {str(k): freeze(v) for k, v in pairs}
        object.__setattr__(self, "_items", tuple(sorted(data.items())))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Params is immutable")

    def __reduce__(self) -> tuple[type[Params], tuple[tuple[tuple[str, Any], ...]]]:
        return Params, (self._items,)

    def __getitem__(self, key: str) -> Any:
        for name, value in self._items:
            if name == key:
                return value
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Params):
            return self._items == other._items
        return isinstance(other, Mapping) and dict(self._items) == dict(other)

    def __repr__(self) -> str:
        return f"Params({dict(self._items)!r})"

    def pairs(self) -> list[list[Any]]:
        """`[[name, value], ...]` sorted by name: the JSON form in spec files and run hashes."""
        return [[name, value] for name, value in self._items]


SEARCH_KINDS = ("log_uniform", "uniform", "int", "categorical")
"""The distributions a `Search` may declare (those of DomainBed's random search)."""

SEARCH_CHOICE_TYPES = (str, bool, int, float)
"""Categorical choices a study can store as they are (Optuna's categorical values)."""


@dataclass(frozen=True)
class Search:
    """Where `tune` draws a hyperparameter from: one distribution, declared beside it.

    Declared once, next to the hyperparameter, so every method's search space is written where
    its defaults are and the same random search (`benchmark.commands.tune`) reads all of them.
    `relative` bounds are factors of the value the preset resolves (the default, or the
    preset's value for a common hyperparameter such as the learning rate), so the range stays
    centred on the value chosen for the preset's backbone; `note` says where the range comes
    from.
    """

    kind: str
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] = ()
    relative: bool = False
    note: str = ""

    def __post_init__(self) -> None:
        if self.kind not in SEARCH_KINDS:
            raise ValueError(f"search kind {self.kind!r}: expected one of {SEARCH_KINDS}")
        if self.kind == "categorical":
            if len(self.choices) < 2 or len(set(self.choices)) != len(self.choices):
                raise ValueError(f"categorical search {self.choices!r}: needs 2+ distinct choices")
            if any(not isinstance(c, SEARCH_CHOICE_TYPES) for c in self.choices):
                raise ValueError(f"categorical search {self.choices!r}: str, bool, int or float")
            return
        if self.low is None or self.high is None or not self.low < self.high:
            raise ValueError(f"{self.kind} search [{self.low}, {self.high}]: needs low < high")
        if self.kind == "log_uniform" and self.low <= 0:
            raise ValueError(f"log-uniform search [{self.low}, {self.high}]: needs low > 0")

    @classmethod
    def log_uniform(cls, low: float, high: float, note: str = "") -> Search:
        """Uniform in log space between `low` and `high` (loss weights, learning rates)."""
        return cls("log_uniform", float(low), float(high), note=note)

    @classmethod
    def decades(cls, decades: float, note: str = "") -> Search:
        """Log-uniform over `decades` either side of the resolved value (factors 10^+-d)."""
        span = 10.0**decades
        return cls("log_uniform", 1 / span, span, relative=True, note=note)

    @classmethod
    def uniform(cls, low: float, high: float, note: str = "") -> Search:
        """Uniform between `low` and `high` (shares, fractions)."""
        return cls("uniform", float(low), float(high), note=note)

    @classmethod
    def integer(cls, low: int, high: int, note: str = "") -> Search:
        """Draw a whole number uniformly from `low` to `high` inclusive."""
        return cls("int", int(low), int(high), note=note)

    @classmethod
    def categorical(cls, *choices: Any, note: str = "") -> Search:
        """One of `choices`, each equally likely (switches, variants)."""
        return cls("categorical", choices=tuple(choices), note=note)

    def bounds(self, base: Any = None) -> tuple[float, float]:
        """`(low, high)` of a numeric search; relative bounds multiply `base` (> 0)."""
        if self.kind == "categorical":
            raise ValueError("a categorical search has choices, not bounds")
        assert self.low is not None and self.high is not None  # __post_init__
        if not self.relative:
            return self.low, self.high
        if isinstance(base, bool) or not isinstance(base, int | float) or base <= 0:
            raise ValueError(f"relative search around {base!r}: needs a positive number")
        return self.low * base, self.high * base

    def points(self, base: Any = None) -> list[Any]:
        """Return representative points, to check a declaration against its hyperparameter.

        Every choice, or both bounds and the middle (geometric for log-uniform).
        """
        if self.kind == "categorical":
            return list(self.choices)
        low, high = self.bounds(base)
        if self.kind == "int":
            return [int(low), (int(low) + int(high)) // 2, int(high)]
        middle = math.sqrt(low * high) if self.kind == "log_uniform" else (low + high) / 2
        return [low, middle, high]

    def contains(self, value: Any, base: Any = None) -> bool:
        """Return whether `value` is a point of the search (the default should be one)."""
        if self.kind == "categorical":
            return value in self.choices
        low, high = self.bounds(base)
        return low <= value <= high

    def describe(self, base: Any = None) -> str:
        """One line for tables: `log-uniform [0.01, 1]`, `one of joint, private`."""
        if self.kind == "categorical":
            return "one of " + ", ".join(str(c) for c in self.choices)
        if self.relative and base is None:
            kind = self.kind.replace("_", "-")
            return f"{kind} x[{self.low:.3g}, {self.high:.3g}] of the preset's value"
        low, high = self.bounds(base)
        return f"{self.kind.replace('_', '-')} [{low:.3g}, {high:.3g}]"

    def to_json(self, base: Any = None) -> dict[str, Any]:
        """Return the resolved distribution (bounds after `base`), as a study records it."""
        if self.kind == "categorical":
            return {"kind": self.kind, "choices": list(self.choices)}
        low, high = self.bounds(base)
        return {"kind": self.kind, "low": low, "high": high}


@dataclass(frozen=True)
class HParam:
    """One hyperparameter: its default (the paper's value, or ours with a reason) and range.

    `choices` restricts a categorical value; `low`/`high` bound a numeric one. `search`, where
    given, is the distribution `tune` draws it from (`tunable`); every point of it must be a
    valid value, which is checked here for absolute searches and by the tests for relative
    ones under every preset.
    """

    default: Any
    help: str = ""
    choices: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    search: Search | None = None

    def __post_init__(self) -> None:
        if self.search is not None:
            base = self.default if self.search.relative else None
            for point in self.search.points(base):
                try:
                    self.validate("search point", point)
                except BenchmarkError as error:
                    raise ValueError(f"{self.search.describe(base)}: {error}") from None

    @property
    def tunable(self) -> bool:
        """Whether `tune` searches this hyperparameter (it declares a `search`)."""
        return self.search is not None

    def valid_values(self) -> str:
        """Describe what `validate` accepts, in words (`run_benchmark.py list METHOD`)."""
        if self.choices is not None:
            return "one of " + ", ".join(str(c) for c in self.choices)
        kinds = {bool: "true or false", int: "an integer", float: "a number", tuple: "a list"}
        kind = kinds.get(type(self.default), "text")
        if self.low is not None and self.high is not None:
            return f"{kind} in [{self.low:g}, {self.high:g}]"
        if self.low is not None:
            return f"{kind} >= {self.low:g}"
        if self.high is not None:
            return f"{kind} <= {self.high:g}"
        return kind

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
            value = freeze(value)
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


def search_space(space: HParamSpace) -> dict[str, Search]:
    """Return the tunable hyperparameters of `space` and their searches, sorted by name."""
    return {name: space[name].search for name in sorted(space) if space[name].search is not None}


def resolve_hparams(
    space: HParamSpace,
    *layers: Mapping[str, Any],
    owner: str = "method",
) -> Params:
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
    return Params(values)
