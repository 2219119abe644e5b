"""Where a command may write: every writer asks `write_target(path)` first.

The README promises that nothing is written outside `--out` and the cache. Identifiers are
validated where they are read (tile ids, cache keys), but a path can still leave its folder by
a route no validator sees: a symlink inside `--out` pointing elsewhere, a card's folder that is
itself a link. So each command declares its roots once (`confined_to`), and every function that
creates a file or folder checks the resolved target against them. Outside any `confined_to`
(library use, tests of single functions) nothing is checked.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmark.system.errors import BenchmarkError

_roots: tuple[Path, ...] | None = None


class OutsideRootsError(BenchmarkError):
    """A write would land outside the folders the command may write to."""


def _resolved(path: Path | str) -> Path:
    """Return the absolute path with every symlink of its existing part followed."""
    return Path(os.path.realpath(os.path.abspath(path)))


@contextmanager
def confined_to(roots: Iterable[Path | str | None]) -> Iterator[tuple[Path, ...]]:
    """Within the block, `write_target` refuses paths outside `roots` (None entries skipped)."""
    global _roots
    previous = _roots
    _roots = tuple(dict.fromkeys(_resolved(r) for r in roots if r is not None))
    try:
        yield _roots
    finally:
        _roots = previous


def active_roots() -> tuple[Path, ...] | None:
    """Return the roots in force, or None when writes are not confined."""
    return _roots


def write_target(path: Path | str) -> Path:
    """`path`, after checking that writing it stays inside the command's roots."""
    path = Path(path)
    if _roots is None:
        return path
    target = _resolved(path)
    if any(target == root or root in target.parents for root in _roots):
        return path
    where = ", ".join(str(r) for r in _roots)
    raise OutsideRootsError(
        f"refusing to write {path}: it resolves to {target}, outside the folders this command "
        f"writes to ({where}); a symlink or a path in the input leads elsewhere"
    )
