"""The corruption registry, filled from the `missbench.corruptions` entry points.

MissBench's own corruptions register exactly as a third-party package's do: a package declares
an entry point in the group `missbench.corruptions` naming a module, and importing that module
registers its records with `register_corruption`. The first lookup in a process (the CLI, a
`--workers` process, a Ray task) imports every such module once, MissBench's own
(`benchmark.corrupt.catalogue`) first, so the registry's order is the docs' order and a user's
package adds a corruption without editing this repository.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from benchmark.core.plugins import EntryPointLoader
from benchmark.core.registry import Registry
from benchmark.core.spec import DatasetSpec
from benchmark.corrupt.corruption import RESERVED_NAMES, Corrupted, Corruption
from benchmark.system.errors import BenchmarkError

CORRUPTION_GROUP = "missbench.corruptions"

load_corruptions = EntryPointLoader(CORRUPTION_GROUP)
"""Import every corruption plugin module, once per process."""

CORRUPTIONS: Registry[Corruption] = Registry("corruption", loader=load_corruptions)
"""Every corruption, in the order docs and reports list them."""


def register_corruption(corruption: Corruption) -> Corruption:
    """Register `corruption` under its name (a record, not a decorator); returns it."""
    if not isinstance(corruption, Corruption):
        raise TypeError(f"register_corruption takes a Corruption record, not {corruption!r}")
    return CORRUPTIONS.register(corruption.name)(corruption)


def parse_corruptions(text: str) -> tuple[str, ...]:
    """Corruption names from a CLI value: `clouds,haze` or `all`, in the order given."""
    items = [item.strip() for item in text.split(",")]
    names = CORRUPTIONS.names()
    if items == ["all"]:
        return tuple(names)
    choices = ", ".join(("all", *names))
    chosen: list[str] = []
    for item in items:
        if item not in CORRUPTIONS or item in RESERVED_NAMES:
            what = "'all' must stand alone" if item == "all" else "unknown corruption"
            raise BenchmarkError(f"{what}: {item!r} in {text!r}; choose from {choices}")
        if item not in chosen:
            chosen.append(item)
    return tuple(chosen)


def target_modalities(name: str, spec: DatasetSpec) -> tuple[str, ...]:
    """The modalities of `spec` that corruption `name` touches, in spec order (maybe none)."""
    return CORRUPTIONS.get(name).modalities(spec)


def corrupt(
    sample: Mapping[str, np.ndarray],
    spec: DatasetSpec,
    name: str,
    severity: int,
    seed: int,
    tile_name: str,
) -> Corrupted:
    """Apply corruption `name` at `severity` to one test tile (`Corruption.corrupt`)."""
    return CORRUPTIONS.get(name).corrupt(sample, spec, severity, seed, tile_name)
