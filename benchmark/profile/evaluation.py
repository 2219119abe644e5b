"""`run_benchmark.py profile eval`: where evaluation time goes, for every method.

Training is measured by `profile step`; evaluation is what grows with the number of modalities
(2^M - 1 scenarios) and with corruptions (severities x scenarios). Every method is built as a
run builds it and evaluated by the harness's own functions on the first `EVAL_TILES` tiles of
each split (fewer if the preset evaluates fewer), in the preset's windows:

* `validation`, `test`: a run's evaluation pass, every scenario of a tile in one pass (each
  distinct modality tensor of a window encoded once, `Method.predict_views`);
* `test_per_scenario`: the same tiles with each scenario evaluated on its own (the harness before
  scenarios shared encoder passes), the yardstick of that sharing;
* `test_bare_forward`: only the method's `predict_views` on the same windows, already cropped and
  on the device (no loading, normalising, stitching or confusion matrices): what the harness
  adds is `test` minus this;
* `corrupted`, `corrupted_per_severity`: every severity of one corruption that leaves a modality
  alone, in one pass or one pass per severity.

Each row carries the pass's median seconds over the repeats, and per tile, per view (a tile
under one scenario and severity) and per window of one view.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
import torch

from benchmark.core.dataset import MultiModalDataset
from benchmark.core.method import Method, evaluation_mode
from benchmark.core.plugins import METHODS
from benchmark.core.records import RunSpec
from benchmark.core.scenarios import Scenario
from benchmark.core.spec import MASK
from benchmark.corrupt.registry import CORRUPTIONS
from benchmark.corrupt.tile import TileCorruption
from benchmark.data.transforms import Normalizer
from benchmark.profile.records import ProfileOrigin, profile_frame
from benchmark.profile.setup import ProfiledRun, ProfileSettings
from benchmark.profile.timing import Measurement, measure
from benchmark.run.evaluate import Plan, evaluate_run_plan
from benchmark.run.inference import map_distinct, window_grid, windows_of

log = logging.getLogger(__name__)

EVAL_TILES = 4
"""Tiles per split a pass evaluates: enough to average over tiles, few enough for every method."""
SEVERITIES = (1, 2, 3, 4, 5)
MAX_REPEATS = 3
"""Timed passes per row at most (a pass is seconds long; `--repeats` above this is capped)."""


@dataclass(frozen=True)
class EvalRow:
    """One evaluation pass of one method: its time, and that time per tile, view and window."""

    origin: ProfileOrigin
    method: str
    evaluation: str
    corruption: str
    window: int
    overlap: float
    tiles: int
    views: int
    """Views per tile: scenarios, times severities under a corruption."""
    windows_per_tile: int
    timing: Measurement
    """The whole pass over `tiles` tiles."""
    ms_per_tile: float
    ms_per_view: float
    ms_per_window: float
    """Per window of one view."""


def profile_method(run: ProfiledRun, settings: ProfileSettings) -> list[EvalRow]:
    """Every pass of one method (see the module docstring)."""
    data, method, device = run.data, run.method, settings.device
    tiles = min(EVAL_TILES, run.spec.eval_tiles or EVAL_TILES)
    spec = replace(run.spec, eval_tiles=tiles)
    scenarios = METHODS.get(spec.method).evaluation_scenarios(spec.train_modalities)
    repeats, warmup = min(settings.repeats, MAX_REPEATS), min(settings.warmup, 1)
    origin = settings.origin()
    val, test = data.val, data.test
    windows = len(window_grid(*test.tile_shape(0), spec.window, spec.eval_overlap)[2])

    def row(evaluation: str, corruption: str, views: int, dataset, fn: Callable) -> EvalRow:
        count = spec.tiles_evaluated(len(dataset))
        timing = measure(fn, device, repeats, warmup, memory=False)
        per_tile = timing.median_ms / count
        return EvalRow(
            origin,
            spec.label,
            evaluation,
            corruption,
            spec.window,
            spec.eval_overlap,
            count,
            views,
            windows,
            timing,
            per_tile,
            per_tile / views,
            per_tile / views / windows,
        )

    def passes(dataset: MultiModalDataset, plans: Sequence[Plan]) -> Callable[[], None]:
        return lambda: [evaluate_run_plan(method, dataset, p, spec, device) for p in plans]

    clean: Plan = [(None, scenarios)]
    rows = [
        row("validation", "none", len(scenarios), val, passes(val, [clean])),
        row("test", "none", len(scenarios), test, passes(test, [clean])),
        row(
            "test_per_scenario",
            "none",
            len(scenarios),
            test,
            passes(test, [[(None, [s])] for s in scenarios]),
        ),
        row(
            "test_bare_forward",
            "none",
            len(scenarios),
            test,
            bare_forward(method, test, scenarios, spec, device),
        ),
    ]
    corruption = partial_corruption(test)
    if corruption is not None:
        plan: Plan = [(TileCorruption(corruption, s), scenarios) for s in SEVERITIES]
        views = len(SEVERITIES) * len(scenarios)
        rows.append(row("corrupted", corruption, views, test, passes(test, [plan])))
        per_severity = passes(test, [[entry] for entry in plan])
        rows.append(row("corrupted_per_severity", corruption, views, test, per_severity))
    return rows


def bare_forward(
    method: Method,
    dataset: MultiModalDataset,
    scenarios: Sequence[Scenario],
    spec: RunSpec,
    device: torch.device,
) -> Callable[[], None]:
    """A pass of `predict_views` alone over the windows the harness evaluates on the run's
    first `eval_tiles` tiles, cropped and batched beforehand (outside the timed call)."""
    normalize = Normalizer(dataset.spec)
    window, overlap = spec.window, spec.eval_overlap
    batches = []
    for index in range(spec.tiles_evaluated(len(dataset))):
        raw = dataset.load(index)
        raw.pop(MASK)
        tensors = {k: torch.from_numpy(v).to(device) for k, v in normalize(raw).items()}
        views = [s.select(tensors) for s in scenarios]
        win_h, win_w, boxes = window_grid(*dataset.tile_shape(index), window, overlap)
        for start in range(0, len(boxes), spec.eval_batch_size):
            chunk = boxes[start : start + spec.eval_batch_size]
            batches.append(map_distinct(views, windows_of(chunk, win_h, win_w)))

    def run() -> None:
        with evaluation_mode(method):
            for batch in batches:
                method.predict_views(batch)

    return run


def partial_corruption(dataset: MultiModalDataset) -> str | None:
    """A registered corruption that touches some but not all of the dataset's modalities (the
    case where sharing untouched modalities pays), else one that touches any, else None."""
    modalities = set(dataset.spec.modality_names)
    touching = []
    for name in CORRUPTIONS.names():
        touched = set(TileCorruption(name, 1).touches(dataset.spec))
        if touched and touched < modalities:
            return name
        if touched:
            touching.append(name)
    return touching[0] if touching else None


def profile_evaluation(methods: Sequence[str], settings: ProfileSettings) -> pd.DataFrame:
    """Every method's evaluation passes, as one DataFrame."""
    rows: list[EvalRow] = []
    for name in methods:
        log.info("profiling %s evaluation (%s preset)", name, settings.preset.name)
        with settings.open(name) as run:
            rows.extend(profile_method(run, settings))
    return profile_frame(rows)


def run_profile(settings: ProfileSettings, methods: Sequence[str]) -> pd.DataFrame:
    """`profile eval`'s measurements (the profiler registry's entry point)."""
    return profile_evaluation(list(methods), settings)


def write_profile(frame: pd.DataFrame, out: Path) -> tuple[list[str], list[Path]]:
    """`profile eval`'s CSV, Markdown and figure, and its headline lines."""
    from benchmark.profile.output import EVAL_REPORT

    return EVAL_REPORT.write(frame, out)
