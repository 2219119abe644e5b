"""Hyperparameters declared next to the code they configure.

`Params` is the one frozen form that overrides and resolved values keep from the command line
to the run spec.
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class HParam:
    """One hyperparameter: its default (the paper's value, or ours with a reason) and range.

    `choices` restricts a categorical value; `low`/`high` bound a numeric one.
    """

    default: Any
    help: str = ""
    choices: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None

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
