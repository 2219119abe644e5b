"""`run_benchmark.py profile step`: where a training step's time goes, for every method.

Each method is built and stepped exactly as a run would (`benchmark.profile.setup`: the harness's
own `train_step`). Two kinds of measurement, kept apart so that the split cannot
distort the total:

* **step**: median wall time of unclocked harness steps (data loading included), and the peak
  memory of one step;
* **phases**: the same steps with a `PhaseClock` attached, which synchronises at the end of
  data loading, forward, backward, optimiser, the method's bookkeeping after its optimiser step
  (`method_other`, e.g. STARS's collapse gauges) and the harness's loss check (`metrics`).

Methods change what a step does during a run (distill trains its teacher first and its student
after; generative starts imputing after a warm-up), so every method is timed in two windows:
the run's first steps (`early`) and its last steps (`late`).

Finally the harness's `baseline` step is set against a bare PyTorch loop on the same network
and a batch already on the device: forward, cross-entropy, backward, AdamW, nothing else.
"""

from __future__ import annotations

import copy
import itertools
import logging
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F

from benchmark.core.method import adamw, modality_inputs
from benchmark.core.spec import MASK
from benchmark.profile.records import ProfileOrigin, profile_frame
from benchmark.profile.setup import ProfiledRun, ProfileSettings
from benchmark.profile.timing import PHASES, Measurement, PhaseClock, measure

log = logging.getLogger(__name__)

WINDOWS = ("early", "late")


@dataclass(frozen=True)
class StepRow:
    """One method (or the bare loop) in one window: step time, its phases, memory, size."""

    origin: ProfileOrigin
    method: str
    window: str
    first_step: int
    timing: Measurement
    """Wall time of one harness step (unclocked) and its peak memory."""
    parameters: int
    data_ms: float
    forward_ms: float
    backward_ms: float
    optimiser_ms: float
    method_other_ms: float
    metrics_ms: float


def phase_medians(run: ProfiledRun, device: torch.device, steps: Sequence[int]) -> dict:
    """Median milliseconds per phase over clocked harness steps."""
    clock = PhaseClock(device)
    samples: dict[str, list[float]] = {p: [] for p in PHASES}
    for step in steps:
        clock.start()
        run.train_step(step, device, clock=clock)
        for phase in PHASES:
            samples[phase].append(1e3 * clock.phases.get(phase, 0.0))
    return {f"{p}_ms": statistics.median(v) for p, v in samples.items()}


def profile_method(
    run: ProfiledRun, device: torch.device, repeats: int, warmup: int, origin: ProfileOrigin
) -> list[StepRow]:
    per_window = warmup + 2 * repeats + 1  # timed + memory + clocked steps
    rows = []
    next_step = 0
    for window in WINDOWS:
        # Steps only move forward, as in a run: a method may freeze parts at a stage change.
        first = next_step if window == "early" else max(next_step, run.spec.steps - per_window)
        counter = itertools.count(first)
        m = measure(
            lambda counter=counter: run.train_step(next(counter), device),
            device,
            repeats,
            warmup,
        )
        start = next(counter)
        phases = phase_medians(run, device, range(start, start + repeats))
        next_step = start + repeats
        rows.append(
            StepRow(
                origin=origin,
                method=run.spec.label,
                window=window,
                first_step=first,
                timing=m,
                parameters=run.method.num_parameters(),
                **phases,
            )
        )
    return rows


def bare_loop_row(
    run: ProfiledRun, device: torch.device, repeats: int, warmup: int, origin: ProfileOrigin
) -> StepRow:
    """Forward, cross-entropy, backward, AdamW on the baseline's network, batch on the device.

    The network is a copy of the profiled baseline's own (same architecture, weights and
    channels-last layout), so the two differ only in what the harness does around it.
    """
    hp = run.spec.hparams
    net = copy.deepcopy(run.method.net).train()
    optimizer = adamw(net.parameters(), hp["lr"], hp["weight_decay"], device)
    batch = run.batch(0, device)
    inputs, mask = modality_inputs(batch), batch[MASK]
    ignore = run.data.train.spec.ignore_index
    autocast = torch.autocast("cuda", torch.bfloat16, enabled=device.type == "cuda")

    def step() -> None:
        with autocast:
            logits = net(inputs)
        loss = F.cross_entropy(logits.float(), mask, ignore_index=ignore)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    m = measure(step, device, repeats, warmup)
    nothing = {f"{p}_ms": float("nan") for p in PHASES}
    return StepRow(
        origin=origin,
        method="bare_loop (baseline network)",
        window="-",
        first_step=0,
        timing=m,
        parameters=sum(p.numel() for p in net.parameters()),
        **nothing,
    )


def profile_steps(methods: Sequence[str], settings: ProfileSettings) -> pd.DataFrame:
    """Every method's step in both windows, then the bare loop, as one DataFrame.

    `baseline` is always profiled (first, if the list lacks it): the bare loop is its yardstick.
    """
    device, repeats, warmup = settings.device, settings.repeats, settings.warmup
    origin = settings.origin()
    names = list(methods) if "baseline" in methods else ["baseline", *methods]
    rows: list[StepRow] = []
    for name in names:
        log.info("profiling %s steps (%s preset, %s)", name, origin.preset, origin.device)
        with settings.open(name) as run:
            rows.extend(profile_method(run, device, repeats, warmup, origin))
            if name == "baseline":
                rows.append(bare_loop_row(run, device, repeats, warmup, origin))
    return profile_frame(rows)


def run_profile(settings: ProfileSettings, methods: Sequence[str]) -> pd.DataFrame:
    """`profile step`'s measurements (the profiler registry's entry point)."""
    return profile_steps(list(methods), settings)


def write_profile(frame: pd.DataFrame, out: Path) -> tuple[list[str], list[Path]]:
    """`profile step`'s CSV, Markdown and figure, and its headline lines."""
    from benchmark.profile.output import STEP_REPORT

    return STEP_REPORT.write(frame, out)
