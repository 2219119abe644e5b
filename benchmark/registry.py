"""One registry primitive for methods, datasets and presets."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from fnmatch import fnmatch
from typing import Generic, TypeVar

from benchmark.errors import BenchmarkError

T = TypeVar("T")


class UnknownNameError(BenchmarkError, KeyError):
    """A name that is not registered; the message lists the valid ones."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class Registry(Generic[T]):
    """Name -> object table with aliases and lookup errors that list the valid names.

    Registration order is kept: tables and plots list entries in that order.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._aliases: dict[str, str] = {}

    def register(self, name: str, *, aliases: tuple[str, ...] = ()) -> Callable[[T], T]:
        """Decorator that adds `obj` under `name` (and its aliases)."""

        def add(obj: T) -> T:
            for key in (name, *aliases):
                if key in self._items or key in self._aliases:
                    raise ValueError(f"{self.kind} {key!r} is already registered")
            self._items[name] = obj
            for alias in aliases:
                self._aliases[alias] = name
            return obj

        return add

    def canonical(self, name: str) -> str:
        """The registered name for `name` or one of its aliases."""
        if name in self._items:
            return name
        if name in self._aliases:
            return self._aliases[name]
        known = ", ".join(self.names())
        raise UnknownNameError(f"unknown {self.kind} {name!r}; valid names: {known}")

    def get(self, name: str) -> T:
        return self._items[self.canonical(name)]

    def names(self, pattern: str = "*") -> list[str]:
        """Registered names in registration order, filtered by a glob pattern."""
        return [n for n in self._items if fnmatch(n, pattern)]

    def aliases_of(self, name: str) -> list[str]:
        return [a for a, target in self._aliases.items() if target == name]

    def __contains__(self, name: object) -> bool:
        return name in self._items or name in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)
