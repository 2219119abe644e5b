"""The teacher rule in the harness: a method with a teacher makes more update calls than its
budget (`Method.update_calls`), its deployed student still trains for the whole budget, only
the student is validated and selected, and the teacher's cost is recorded and counted."""

from __future__ import annotations

import json

import pytest

from benchmark.core.plugins import METHODS
from benchmark.run.cost import training_flops
from benchmark.run.train import CallPlan
from tests.benchmark.cli.cli_helpers import invoke
from tests.methods.zoo_helpers import build_method


def test_call_plan_puts_the_teacher_first_and_reuses_the_batches():
    plan = CallPlan(steps=4, prelude=4)
    assert plan.calls == 8
    assert [plan.batch_index(c) for c in range(8)] == [0, 1, 2, 3, 0, 1, 2, 3]
    assert [plan.deployed_step(c) for c in (0, 4, 5, 8)] == [0, 0, 1, 4]
    assert [c for c in range(1, 9) if plan.validates_after(c, every=2)] == [6, 8]
    alone = CallPlan(steps=4, prelude=0)
    assert [c for c in range(1, 5) if alone.validates_after(c, every=3)] == [3, 4]


def test_teacher_flops_are_counted_per_budget_step(data_root):
    method, sampler, _ = build_method("distill", data_root, steps=2)
    flops = training_flops(method, sampler, 2, "cpu")
    assert flops.prelude > 0 and flops.deployed > 0
    assert flops.per_step == pytest.approx((flops.prelude + flops.deployed) / 2)


def test_a_distill_run_trains_the_student_for_the_budget_and_records_the_teacher(
    data_root, tmp_path
):
    out = tmp_path / "out"
    args = ["--methods", "distill", "--steps", "2", "--missing", "all", "--seeds", "0"]
    assert invoke(args, data_root, out) == 0
    (run,) = out.glob("runs/*/records.jsonl")
    records = [json.loads(line) for line in run.read_text().splitlines()]
    validations = [r for r in records if r["split"] == "val" and not r["selection"]]
    assert {r["checkpoint_step"] for r in validations} == {1, 2}  # student steps only
    chosen = {r["checkpoint_step"] for r in records if r["selection"]}
    assert chosen <= {1, 2}
    last = next(r for r in validations if r["checkpoint_step"] == 2)["extra"]
    assert last["teacher_updates"] == 2 and last["student_updates"] == 2
    extra = records[-1]["extra"]
    assert extra["teacher_steps"] == 2 and extra["student_steps"] == 2
    assert extra["teacher_train_gflops"] > 0 and extra["student_train_gflops"] > 0
    assert extra["teacher_train_seconds"] > 0 and extra["student_train_seconds"] > 0
    total = (extra["teacher_train_gflops"] + extra["student_train_gflops"]) / 2
    assert records[-1]["train_gflops_per_step"] == pytest.approx(total, rel=1e-3)
    assert records[-1]["train_seconds"] >= extra["teacher_train_seconds"]
    log = [json.loads(line) for line in (run.parent / "train_log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == METHODS.get("distill").update_calls(2)
