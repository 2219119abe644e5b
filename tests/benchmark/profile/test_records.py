"""The shared profile columns: a row's origin and measurement expand where their fields stand."""

from __future__ import annotations

import math
from dataclasses import dataclass

from benchmark.profile.records import ProfileOrigin, profile_frame
from benchmark.profile.step import StepRow
from benchmark.profile.timing import Measurement

ORIGIN = ProfileOrigin(device="cpu (1 threads)", preset="smoke", commit="abc1234")
TIMING = Measurement(median_s=0.002, q1_s=0.001, q3_s=0.004, repeats=5, peak_mb=12.5)


def test_origin_and_measurement_expand_in_place_and_other_fields_stay_as_they_are():
    @dataclass(frozen=True)
    class Row:
        origin: ProfileOrigin
        component: str
        timing: Measurement
        pixels: int

    frame = profile_frame([Row(ORIGIN, "sampling", TIMING, 128)])
    assert frame.iloc[0].to_dict() == {
        "device": "cpu (1 threads)",
        "preset": "smoke",
        "commit": "abc1234",
        "component": "sampling",
        "median_ms": 2.0,
        "q1_ms": 1.0,
        "q3_ms": 4.0,
        "repeats": 5,
        "calls_per_repeat": 1,
        "peak_mb": 12.5,
        "pixels": 128,
    }
    assert list(frame.columns)[:3] == ["device", "preset", "commit"]


def test_the_step_profile_keeps_its_published_columns():
    """`step_profile.csv`'s header, column for column, as before rows shared their columns."""
    phases = {f"{p}_ms": math.nan for p in ("data", "forward", "backward", "optimiser")}
    row = StepRow(
        origin=ORIGIN,
        method="baseline",
        window="late",
        first_step=3,
        timing=TIMING,
        parameters=10,
        **phases,
        method_other_ms=0.0,
        metrics_ms=0.0,
    )
    assert list(profile_frame([row]).columns) == [
        "device",
        "preset",
        "commit",
        "method",
        "window",
        "first_step",
        "median_ms",
        "q1_ms",
        "q3_ms",
        "repeats",
        "calls_per_repeat",
        "peak_mb",
        "parameters",
        "data_ms",
        "forward_ms",
        "backward_ms",
        "optimiser_ms",
        "method_other_ms",
        "metrics_ms",
    ]
