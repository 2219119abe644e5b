"""The profiler registry: `run_benchmark.py profile <name>`.

A profiler is a module with two functions: `run_profile(settings, methods) -> DataFrame` and
`write_profile(frame, out) -> (headline lines, files written)`. The registry holds the module's name
and imports it only when that profiler runs, so registering one costs nothing. The harness
registers `step` (every method's training step); a method registers profilers of its own parts
next to its code (MissBench's STARS registers `psa`), so the harness imports no specific method.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from benchmark.core.plugins import load_plugins
from benchmark.core.registry import Registry

if TYPE_CHECKING:
    import pandas as pd

    from benchmark.profile.setup import ProfileSettings


@dataclass(frozen=True)
class Profiler:
    """A named profile: what it measures, and the module that measures and writes it."""

    description: str
    module: str
    """Importable module with `run_profile(settings, methods)` and `write_profile(frame, out)`."""
    uses_methods: bool = False
    """Whether `--methods` selects what it profiles."""

    def measure(self, settings: ProfileSettings, methods: Sequence[str]) -> pd.DataFrame:
        """Run the measurements: one row each."""
        return importlib.import_module(self.module).run_profile(settings, methods)

    def write(self, frame: pd.DataFrame, out: Path) -> tuple[list[str], list[Path]]:
        """Write CSV, Markdown and figure under `out`; the headline lines and the files."""
        return importlib.import_module(self.module).write_profile(frame, out)


PROFILERS: Registry[Profiler] = Registry("profiler", loader=load_plugins)


def register_profiler(name: str, profiler: Profiler) -> Profiler:
    """Add `profiler` as `run_benchmark.py profile <name>`."""
    return PROFILERS.register(name)(profiler)


register_profiler(
    "step",
    Profiler(
        description="every method's training step split into data loading, forward, backward, "
        "optimiser and bookkeeping, and the harness against a bare PyTorch loop",
        module="benchmark.profile.step",
        uses_methods=True,
    ),
)
register_profiler(
    "eval",
    Profiler(
        description="every method's validation, test and corrupted evaluation per tile, view "
        "and window: every scenario in one pass against one pass each, and against the "
        "method's bare forward pass on the same windows",
        module="benchmark.profile.evaluation",
        uses_methods=True,
    ),
)
