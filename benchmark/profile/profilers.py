"""The profiler registry: `run_benchmark.py profile <name>`.

A profiler measures into a DataFrame and writes it out (CSV, Markdown, figure) with a few
headline lines for the terminal. The harness registers `step` (every method's training step);
a method package registers profilers of its own parts (MissBench's STARS registers `psa` next
to the code it profiles), so the harness imports no specific method.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from benchmark.core.plugins import load_plugins
from benchmark.core.registry import Registry
from benchmark.profile.output import write_step_outputs
from benchmark.profile.setup import ProfileSettings
from benchmark.profile.step import profile_steps

Measure = Callable[[ProfileSettings, Sequence[str]], pd.DataFrame]
"""(settings, method labels) -> one row per measurement."""
Write = Callable[[pd.DataFrame, Path], tuple[list[str], list[Path]]]
"""(frame, output folder) -> (headline lines, files written)."""


@dataclass(frozen=True)
class Profiler:
    """A named profile: what it measures, and how its results are written."""

    description: str
    measure: Measure
    write: Write
    uses_methods: bool = False
    """Whether `--methods` selects what it profiles."""


PROFILERS: Registry[Profiler] = Registry("profiler", loader=load_plugins)


def register_profiler(name: str, profiler: Profiler) -> Profiler:
    """Add `profiler` as `run_benchmark.py profile <name>`."""
    return PROFILERS.register(name)(profiler)


def _write_step(frame: pd.DataFrame, out: Path) -> tuple[list[str], list[Path]]:
    headline, files = write_step_outputs(frame, out)
    return headline.lines(), files


register_profiler(
    "step",
    Profiler(
        description="every method's training step split into data loading, forward, backward, "
        "optimiser and bookkeeping, and the harness against a bare PyTorch loop",
        measure=lambda settings, methods: profile_steps(list(methods), settings),
        write=_write_step,
        uses_methods=True,
    ),
)
