"""One registry primitive for methods, datasets, presets, launchers and profilers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from fnmatch import fnmatch
from typing import Generic, TypeVar

from benchmark.system.errors import BenchmarkError

T = TypeVar("T")


class UnknownNameError(BenchmarkError, KeyError):
    """A name that is not registered; the message lists the valid ones."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class Registry(Generic[T]):
    """Name -> object table with aliases and lookup errors that list the valid names.

    Registration order is kept: tables and plots list entries in that order. A registry whose
    entries come from plugins is given a `loader`; every lookup calls it first (it runs once per
    process), so a name registered by an installed package is known in any process that looks
    one up: the CLI, a `--workers` process or a Ray task alike.
    """

    def __init__(self, kind: str, loader: Callable[[], None] | None = None) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._aliases: dict[str, str] = {}
        self._loader = loader

    def register(self, name: str, *, aliases: tuple[str, ...] = ()) -> Callable[[T], T]:
        """Return a decorator that adds `obj` under `name` (and its aliases)."""

        def add(obj: T) -> T:
            for key in (name, *aliases):
                if key in self._items or key in self._aliases:
                    raise ValueError(f"{self.kind} {key!r} is already registered")
            self._items[name] = obj
            for alias in aliases:
                self._aliases[alias] = name
            return obj

        return add

    def _load(self) -> None:
        if self._loader is not None:
            self._loader()

    def canonical(self, name: str) -> str:
        """Return the registered name for `name` or one of its aliases."""
        self._load()
        if name in self._items:
            return name
        if name in self._aliases:
            return self._aliases[name]
        known = ", ".join(self.names())
        raise UnknownNameError(f"unknown {self.kind} {name!r}; valid names: {known}")

    def get(self, name: str) -> T:
        """Return the object registered under `name` (or an alias of it)."""
        return self._items[self.canonical(name)]

    def names(self, pattern: str = "*") -> list[str]:
        """Return the registered names in registration order, filtered by a glob pattern."""
        self._load()
        return [n for n in self._items if fnmatch(n, pattern)]

    def aliases_of(self, name: str) -> list[str]:
        """Every alias that points at `name`."""
        self._load()
        return [a for a, target in self._aliases.items() if target == name]

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._items or name in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())
