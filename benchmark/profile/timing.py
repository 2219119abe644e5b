"""Honest timings for the profilers: warm-up, repeats, median, device synchronisation, peak memory.

A single wall-clock reading of a PyTorch call is noise (first-call allocation, lazy kernel
selection, asynchronous CUDA launches), so every measurement here synchronises the device around
the call, discards warm-up calls and reports the median and the interquartile range of the
repeats. Peak memory is measured in a separate, untimed call: on CUDA from the caching
allocator's high-water mark, on CPU from the profiler's allocation events (the only per-section
view of CPU tensor memory PyTorch exposes).
"""

from __future__ import annotations

import json
import math
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

PHASES = ("data", "forward", "backward", "optimiser", "method_other", "metrics")
"""The phases of a training step, in the order a step passes through them."""


@dataclass(frozen=True)
class Measurement:
    """Seconds per call (median and interquartile range over `repeats`) and peak memory."""

    median_s: float
    q1_s: float
    q3_s: float
    repeats: int
    peak_mb: float
    """Peak memory the call allocated above what was allocated before it (MiB); NaN if off."""
    calls_per_repeat: int = 1
    """Back-to-back calls timed together in each repeat (see `time_calls`)."""

    @property
    def median_ms(self) -> float:
        return 1e3 * self.median_s

    def row_fields(self) -> dict[str, float | int]:
        """The columns every profiler row carries for a measurement (milliseconds, MiB)."""
        return {
            "median_ms": 1e3 * self.median_s,
            "q1_ms": 1e3 * self.q1_s,
            "q3_ms": 1e3 * self.q3_s,
            "repeats": self.repeats,
            "calls_per_repeat": self.calls_per_repeat,
            "peak_mb": self.peak_mb,
        }


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


MAX_CALLS_PER_REPEAT = 10_000


def time_calls(
    fn: Callable[[], object],
    device: torch.device,
    repeats: int,
    warmup: int,
    min_repeat_s: float = 0.0,
) -> tuple[list[float], int]:
    """Seconds per call in each of `repeats` device-synchronised repeats after `warmup` calls,
    and the number of calls per repeat.

    A repeat is one call, or, with `min_repeat_s`, as many back-to-back calls as make it last
    that long by the fastest warm-up call (as `timeit` calibrates): 30 single calls of 0.1 ms
    span 3 ms, and one scheduler hiccup then moves the median.
    """
    warm = []
    for _ in range(warmup):
        tic = time.perf_counter()
        fn()
        synchronize(device)
        warm.append(time.perf_counter() - tic)
    calls = 1
    if min_repeat_s > 0 and warm:
        calls = min(MAX_CALLS_PER_REPEAT, max(1, math.ceil(min_repeat_s / max(min(warm), 1e-9))))
    seconds = []
    for _ in range(repeats):
        tic = time.perf_counter()
        for _ in range(calls):
            fn()
        synchronize(device)
        seconds.append((time.perf_counter() - tic) / calls)
    return seconds, calls


def summarise(seconds: list[float], peak_mb: float = float("nan"), calls: int = 1) -> Measurement:
    if len(seconds) >= 4:
        q1, _, q3 = statistics.quantiles(seconds, n=4)
    else:
        q1, q3 = min(seconds), max(seconds)
    return Measurement(statistics.median(seconds), q1, q3, len(seconds), peak_mb, calls)


def peak_memory_mb(fn: Callable[[], object], device: torch.device) -> float:
    """Peak bytes allocated by one call of `fn` above the allocation level before it, in MiB."""
    if device.type == "cuda":
        synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - before) / 2**20
    return _cpu_peak_mb(fn)


def _cpu_peak_mb(fn: Callable[[], object]) -> float:
    """Running sum of the profiler's CPU allocation events; its maximum is the call's peak."""
    from torch.profiler import ProfilerActivity, profile

    # Kineto writes two trace lines to stderr per profiler session (hundreds in one profile run)
    # at every level below 6 in current torch builds; a level the user set is kept.
    os.environ.setdefault("KINETO_LOG_LEVEL", "6")
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "trace.json"
        prof.export_chrome_trace(str(trace))
        events = json.loads(trace.read_text()).get("traceEvents", [])
    memory = sorted(
        (e["ts"], e["args"]["Bytes"])
        for e in events
        if e.get("name") == "[memory]" and e.get("args", {}).get("Device Type", 0) == 0
    )
    level = peak = 0
    for _, delta in memory:
        level += delta
        peak = max(peak, level)
    return peak / 2**20


def measure(
    fn: Callable[[], object],
    device: torch.device,
    repeats: int = 10,
    warmup: int = 3,
    memory: bool = True,
    min_repeat_s: float = 0.0,
) -> Measurement:
    """Median time of `fn` over synchronised `repeats` after `warmup` calls, and peak memory
    (`min_repeat_s`: see `time_calls`)."""
    seconds, calls = time_calls(fn, device, repeats, warmup, min_repeat_s)
    peak = peak_memory_mb(fn, device) if memory else float("nan")
    return summarise(seconds, peak, calls)


class PhaseClock:
    """Splits one call into named phases by synchronised timestamps (`mark` ends a phase).

    Used through `Method.phase_clock`: the method marks the end of its forward pass, backward
    pass and optimiser step, and the profiler reads how long each took. Marking synchronises the
    device, so a clock is attached only while profiling, never in a real run.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.phases: dict[str, float] = {}
        self._last = 0.0

    def start(self) -> None:
        synchronize(self.device)
        self.phases = {}
        self._last = time.perf_counter()

    def mark(self, phase: str) -> None:
        synchronize(self.device)
        now = time.perf_counter()
        self.phases[phase] = self.phases.get(phase, 0.0) + now - self._last
        self._last = now
