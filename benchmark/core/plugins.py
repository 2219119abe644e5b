"""The method and dataset registries, filled from entry points in every process that asks.

MissBench's own methods and datasets register exactly as a third-party package's do: a package
declares entry points in the groups `missbench.methods` and `missbench.datasets`, each naming a
module; importing that module registers what it defines with `register_method` /
`register_dataset`. The first lookup in a process (the CLI, a `--workers` process, a Ray task)
imports every such module once, MissBench's own first, so a user's package adds a method or a
dataset without editing this repository. `EntryPointLoader` is that loading for any group: the
corruption registry (`benchmark.corrupt.registry`, group `missbench.corruptions`) uses it too.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterable
from importlib.metadata import EntryPoint, entry_points
from typing import TypeVar

from benchmark.core.dataset import MultiModalDataset
from benchmark.core.method import Method
from benchmark.core.registry import Registry
from benchmark.system.errors import BenchmarkError
from benchmark.system.packages import check_own_packages

METHOD_GROUP = "missbench.methods"
DATASET_GROUP = "missbench.datasets"
GROUPS = (METHOD_GROUP, DATASET_GROUP)
OWN_DISTRIBUTION = "missbench"

M = TypeVar("M", bound=type[Method])
D = TypeVar("D", bound=type[MultiModalDataset])


class EntryPointLoader:
    """Imports every entry-point module of `groups`, once per process: a registry's loader.

    MissBench's own entry points come first (registry order = README order) and must exist in
    each group, or the checkout is not installed. Re-entrant: a plugin module that looks a name
    up while it is being imported sees what is registered so far instead of starting the load
    again. A failed import is reported, as one line, on every later lookup too.
    """

    def __init__(self, *groups: str) -> None:
        self.groups = groups
        self._lock = threading.RLock()
        self._loaded = self._loading = False
        self._error: BenchmarkError | None = None

    def __call__(self) -> None:
        """Load the groups unless this process has already (or is loading them now)."""
        if self._loaded:
            return
        with self._lock:
            if self._loaded or self._loading:
                return
            if self._error is not None:
                raise BenchmarkError(str(self._error))
            self._loading = True
            try:
                check_own_packages()  # our entry points name `methods` and `datasets`
                for group in self.groups:
                    points = _ordered(entry_points(group=group))
                    if not any(_distribution(p) == OWN_DISTRIBUTION for p in points):
                        raise BenchmarkError(
                            f"no {group!r} entry points of the {OWN_DISTRIBUTION!r} package: "
                            'install this checkout first (pip install -e ".[fast]", README line 1)'
                        )
                    for point in points:
                        _import(point, group)
                self._loaded = True
            except BenchmarkError as error:
                self._error = error
                raise
            finally:
                self._loading = False


load_plugins = EntryPointLoader(*GROUPS)
"""Import every method and dataset plugin module (both groups), once per process."""


def _distribution(point: EntryPoint) -> str:
    dist = getattr(point, "dist", None)
    return (dist.metadata["Name"] or "").lower() if dist is not None else ""


def _ordered(points: Iterable[EntryPoint]) -> list[EntryPoint]:
    """MissBench's own entry points first (registry order = README order), then by name."""
    unique = {(p.name, p.value, _distribution(p)): p for p in points}
    return sorted(
        unique.values(),
        key=lambda p: (_distribution(p) != OWN_DISTRIBUTION, _distribution(p), p.name),
    )


IMPORT_FAILURES = (Exception, SystemExit, KeyboardInterrupt)
"""What a plugin module's import may raise and be named for in one line. `SystemExit` and
`KeyboardInterrupt` are not `Exception`s: uncaught, a plugin calling `sys.exit(0)` at import
would end every command with status 0 and no output."""


def _failure(error: BaseException) -> str:
    """`Type: first line` of what a plugin's import raised (`sys.exit()` has no text)."""
    reason = str(error).splitlines()[0] if str(error) else ""
    if isinstance(error, SystemExit):
        reason = f"{reason} (the module exits at import; a plugin must not call sys.exit)"
    elif isinstance(error, KeyboardInterrupt):
        reason = f"{reason} (interrupted while importing it)"
    return f"{type(error).__name__}: {reason.strip()}"


def _import(point: EntryPoint, group: str) -> None:
    try:
        point.load()
    except IMPORT_FAILURES as error:
        origin = _distribution(point) or "unknown package"
        raise BenchmarkError(
            f"plugin {point.name!r} of {origin} (entry point {point.value!r} in {group}) failed "
            f"to import: {_failure(error)}"
        ) from error


def importable_modules(objects: Iterable[object]) -> tuple[str, ...]:
    """Modules that define `objects`, for a worker process to import before it runs them.

    Covers what entry points cannot: a method registered by a module the user imported by hand.
    `__main__` is left out: a spawned `--workers` process re-runs the main script itself, while
    a Ray task cannot (its methods must live in an importable module or a plugin package).
    """
    modules = (getattr(obj, "__module__", "") for obj in objects)
    return tuple(dict.fromkeys(m for m in modules if m and m != "__main__"))


def import_modules(modules: Iterable[str]) -> None:
    """Import `modules` (see `importable_modules`); a missing one is a one-line error."""
    for module in modules:
        try:
            importlib.import_module(module)
        except IMPORT_FAILURES as error:
            raise BenchmarkError(
                f"module {module!r}, which registers a method, dataset or corruption of this "
                f"sweep, cannot be imported in a worker ({_failure(error)}); make it a plugin "
                f"package (entry points {', '.join(GROUPS)} or missbench.corruptions)"
            ) from error


METHODS: Registry[type[Method]] = Registry("method", loader=load_plugins)
DATASETS: Registry[type[MultiModalDataset]] = Registry("dataset", loader=load_plugins)


def register_method(name: str, *, aliases: tuple[str, ...] = ()) -> Callable[[M], M]:
    """Register a `Method` subclass under `name` (a class decorator).

    By convention `name` is the defining module's name, snake_case; aliases are optional.
    """
    add = METHODS.register(name, aliases=aliases)

    def decorate(cls: M) -> M:
        if not (isinstance(cls, type) and issubclass(cls, Method)):
            raise TypeError(f"register_method({name!r}) decorates Method subclasses, not {cls!r}")
        return add(cls)

    return decorate


def register_dataset(name: str, *, aliases: tuple[str, ...] = ()) -> Callable[[D], D]:
    """Register a `MultiModalDataset` subclass under `name` (a class decorator)."""
    add = DATASETS.register(name, aliases=aliases)

    def decorate(cls: D) -> D:
        if not (isinstance(cls, type) and issubclass(cls, MultiModalDataset)):
            raise TypeError(
                f"register_dataset({name!r}) decorates MultiModalDataset subclasses, not {cls!r}"
            )
        cls.NAME = name
        return add(cls)

    return decorate
