"""The environment variables the suite reads, each checked before anything runs.

A bad value used to surface inside a run (recorded as failed, the leaderboard replaced by an
all-failed board, exit status 1); every variable now has a check that runs at start-up, and a
bad value is one line naming the variable, the value and what was expected (exit status 2).
Modules that read a variable register it here (`register_env`), so the check knows them all:
the PSA kernel's `MISSBENCH_PSA_KERNEL` is registered by `methods/components/psa/sampler.py`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmark.system.errors import BenchmarkError


@dataclass(frozen=True)
class EnvVar:
    """A variable, what it means, and a check returning what is wrong with a value (or '')."""

    name: str
    meaning: str
    check: Callable[[str], str]


ENV_VARS: dict[str, EnvVar] = {}


def register_env(name: str, meaning: str, check: Callable[[str], str]) -> None:
    """Declare that the suite reads `name`; `check(value)` says what is wrong with a value."""
    ENV_VARS[name] = EnvVar(name, meaning, check)


def check_environment() -> None:
    """Refuse, in one line, the first registered variable whose value is bad."""
    for var in ENV_VARS.values():
        value = os.environ.get(var.name)
        if value is None:
            continue
        problem = var.check(value)
        if problem:
            raise BenchmarkError(f"{var.name}={value!r} ({var.meaning}): {problem}")


def directory_problem(value: str, *, must_exist: bool = False) -> str:
    """Return what keeps `value` from being a directory the suite reads and writes, or ''."""
    if not value.strip():
        return "empty; expected a directory path"
    path = Path(value).expanduser()
    if path.exists() and not path.is_dir():
        return "is a file; expected a directory"
    if must_exist and not path.is_dir():
        return "no such directory"
    return ""


def user_cache_dir() -> Path:
    """Return `$XDG_CACHE_HOME/missbench` (default `~/.cache/missbench`).

    What cannot be written beside the data or the source goes here: tiles of a read-only data
    root, numba's kernel cache.
    """
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "missbench"


def cache_folders() -> tuple[Path, ...]:
    """Return the caches any command may write.

    `$MISSBENCH_CACHE` when set, and the user's cache folder (tiles of a read-only data root,
    numba's kernels).
    """
    env = os.environ.get("MISSBENCH_CACHE")
    return (*((Path(env),) if env else ()), user_cache_dir())


def run_roots(out: Path | str | None, data_root: Path | str) -> list[Path | str | None]:
    """Return where a command that trains, reports or profiles may write.

    Its output folder, the data root (generated synthetic data, the tile cache beside the data)
    and the caches; the CLI and every worker process confine their writes to the same list.
    """
    return [out, data_root, *cache_folders()]


def check_data_root(path: Path, source: str) -> None:
    """Refuse a data root that is not a directory.

    One that does not exist yet is fine: the synthetic data are generated into it.
    """
    problem = directory_problem(str(path))
    if problem:
        raise BenchmarkError(f"{source} {path}: {problem}")


def choices_problem(*choices: str) -> Callable[[str], str]:
    """Return a check that accepts exactly `choices`."""

    def check(value: str) -> str:
        return "" if value in choices else f"expected one of {', '.join(map(repr, choices))}"

    return check


register_env(
    "MISSBENCH_DATA",
    "default --data-root",
    lambda value: directory_problem(value),
)
register_env(
    "MISSBENCH_CACHE",
    "decoded-tile cache folder",
    lambda value: directory_problem(value),
)
register_env("MISSBENCH_PROGRESS", "force progress bars", choices_problem("", "0", "1"))
