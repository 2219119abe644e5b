"""The profilers (`run_benchmark.py profile psa|step`) and the timing tools under them.

Timings themselves are never asserted (they belong in benchmarks and the closing note); these
tests check that every measurement is made and written, and the invariants that must hold
whatever the machine: the loop and the vectorised sampler draw the same pixels per class, the
bare loop runs the baseline's own network, phases are recorded where the method marks them.
"""

from __future__ import annotations

import time

import pandas as pd
import pytest
import torch

from benchmark.cli import main
from benchmark.core.presets import PRESETS
from benchmark.profile.setup import open_profiled_run
from benchmark.profile.timing import PhaseClock, measure
from benchmark.run.train import train_step
from methods.components.psa.profiler import SAMPLERS
from tests.conftest import tiny_dataset_arg

CPU = torch.device("cpu")


def test_measure_reports_the_median_and_the_peak_memory_a_call_allocates():
    def allocate() -> None:
        block = torch.ones(10 * 2**20 // 4)  # 10 MiB of float32
        block.add_(1)

    m = measure(allocate, CPU, repeats=5, warmup=1)
    assert m.repeats == 5
    assert m.q1_s <= m.median_s <= m.q3_s
    assert 9.5 <= m.peak_mb <= 30, m.peak_mb


def test_a_fast_call_is_timed_in_back_to_back_batches_and_a_slow_one_alone():
    calls = []
    m = measure(lambda: calls.append(1), CPU, repeats=4, warmup=2, memory=False, min_repeat_s=1e-3)
    assert m.calls_per_repeat > 10  # appending to a list takes well under 0.1 ms
    assert len(calls) == 2 + 4 * m.calls_per_repeat  # warm-up, then every repeat's calls
    assert m.median_s < 1e-4  # per call, not per repeat
    slow = measure(
        lambda: time.sleep(2e-3), CPU, repeats=3, warmup=1, memory=False, min_repeat_s=1e-3
    )
    assert slow.calls_per_repeat == 1 and slow.median_s >= 2e-3
    # Without min_repeat_s (the step profiler's setting), every repeat is exactly one call.
    calls.clear()
    assert measure(lambda: calls.append(1), CPU, 3, 1, memory=False).calls_per_repeat == 1
    assert len(calls) == 4


def test_phase_clock_sees_the_phases_a_method_marks(data_root):
    run = open_profiled_run("baseline", tiny_dataset_arg(), PRESETS.get("smoke"), CPU, data_root)
    clock = PhaseClock(CPU)
    clock.start()
    train_step(run.method, run.sampler, 0, CPU, clock=clock)
    assert set(clock.phases) == {
        "data",
        "forward",
        "backward",
        "optimiser",
        "method_other",
        "metrics",
    }
    # every phase was marked (an unmarked one reads 0), in the order the step runs them
    assert all(clock.phases[p] > 0 for p in ("data", "forward", "backward", "optimiser"))
    before = dict(clock.phases)
    train_step(run.method, run.sampler, 1, CPU)  # no clock passed: nothing more is marked
    assert clock.phases == before
    assert not hasattr(run.method, "phase_clock")  # no profiler state on the method


def test_profile_psa_writes_every_measurement(profiled):
    run = profiled("psa")
    out, printed = run.out, run.printed
    assert run.status == 0
    assert "% of a" in printed and "faster than the loop" in printed
    frame = pd.read_csv(out / "psa_profile.csv")
    for axis in ("preset", "headline", "pixels_per_class", "num_classes", "feature_size"):
        sub = frame[frame.axis == axis]
        assert set(sub[sub.component == "psa_sampling"].sampler) == set(SAMPLERS), axis
    assert {"step", "step_no_psa", "translation_alignment"} <= set(frame.component)
    assert (frame.median_ms > 0).all()
    sampling = frame[frame.component == "psa_sampling"]
    for _, point in sampling.groupby(
        ["axis", "pixels_per_class", "num_classes", "feature_size", "batch_size"]
    ):
        drawn = point.set_index("sampler").sampled_pixels
        # balanced, loop and hard_easy take the same per-class budget; uniform the same total.
        assert drawn["balanced"] == drawn["loop"] == drawn["hard_easy"]
        assert drawn["uniform"] >= drawn["balanced"]
    text = (out / "psa_profile.md").read_text()
    assert "## Sweeps" in text and "loop / balanced" in text
    assert (out / "psa_profile.png").stat().st_size > 0


def test_profile_step_splits_steps_and_compares_with_a_bare_loop(profiled):
    run = profiled("step")  # with --methods stars,distill (conftest.METHODS)
    out, printed = run.out, run.printed
    assert run.status == 0
    assert "bare PyTorch loop" in printed
    frame = pd.read_csv(out / "step_profile.csv")
    methods = set(frame.method)
    assert {"baseline", "stars", "distill", "bare_loop (baseline network)"} == methods
    runs = frame[~frame.method.str.startswith("bare_loop")]
    assert set(runs.window) == {"early", "late"}
    phases = runs[["data_ms", "forward_ms", "backward_ms", "optimiser_ms", "metrics_ms"]]
    marked = runs[["forward_ms", "backward_ms", "optimiser_ms"]]
    assert (marked > 0).all().all()  # every method marks its phases (unmarked reads 0)
    assert (phases.sum(axis=1) <= 3 * runs.median_ms).all()  # the split adds up to a step
    params = frame.set_index(["method", "window"]).parameters
    assert params[("bare_loop (baseline network)", "-")] == params[("baseline", "late")]
    assert (out / "step_profile.md").exists() and (out / "step_profile.png").exists()


def test_profile_eval_times_every_pass_per_tile_view_and_window(profiled):
    run = profiled("eval")  # with --methods stars,distill (conftest.METHODS)
    assert run.status == 0
    frame = pd.read_csv(run.out / "eval_profile.csv")
    assert set(frame.method) == {"stars", "distill"}
    passes = {
        "validation",
        "test",
        "test_per_scenario",
        "test_bare_forward",
        "corrupted",
        "corrupted_per_severity",
    }
    for _, rows in frame.groupby("method"):
        assert set(rows.evaluation) == passes
        clean = rows[rows.corruption == "none"]
        corrupted = rows[rows.corruption != "none"]
        assert (clean.views == 3).all()  # every scenario of two modalities
        assert (corrupted.views == 5 * 3).all()  # five severities of each
    assert (frame.median_ms > 0).all() and (frame.tiles >= 1).all()
    per_view = frame.ms_per_tile / frame.views
    assert ((frame.ms_per_view - per_view).abs() < 1e-6 * frame.ms_per_tile).all()
    assert "faster than one each" in run.printed
    assert (run.out / "eval_profile.md").exists() and (run.out / "eval_profile.png").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["profile", "psa", "--repeats", "0"], "--repeats"),
        (["profile", "psa", "--preset", "nope"], "nope"),
        (["profile", "step", "--methods", "nope"], "nope"),
        (["profile", "memory"], "memory"),
    ],
)
def test_profile_rejects_bad_input_in_one_line(args, message, tmp_path, capsys):
    try:
        status = main([*args, "--out", str(tmp_path / "p")])
    except SystemExit as exit_:  # argparse's own one-line refusal
        status = exit_.code
    assert status == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "p").exists()
