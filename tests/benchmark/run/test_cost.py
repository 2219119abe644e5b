"""Cost accounting: FLOPs counted on real calls without disturbing the run, parameters,
compute-matched budgets, and the oracle rule of the tables."""

from __future__ import annotations

import dataclasses

import pandas as pd
import torch

from benchmark.core.options import NamedConfig, parse_named
from benchmark.core.presets import PRESETS
from benchmark.core.scenarios import Scenario
from benchmark.report import tables
from benchmark.run.budget import match_flops
from benchmark.run.cost import count_flops, inference_cost, measure_run_cost, trained_parameters
from benchmark.run.sweep import SweepRequest, expand
from tests.conftest import tiny_dataset_arg
from tests.methods.zoo_helpers import build_method, snapshot


def test_flop_counter_counts_a_matmul():
    a, b = torch.randn(8, 16), torch.randn(16, 4)
    assert count_flops(lambda: a @ b) == 2 * 8 * 16 * 4


def test_counting_a_step_changes_neither_the_method_nor_the_random_stream(data_root):
    method, sampler, spec = build_method("stars", data_root, steps=6)
    before, rng = snapshot(method), torch.get_rng_state()
    cost = measure_run_cost(method, sampler, 6, [Scenario(frozenset(spec.modality_names))], "cpu")
    assert cost.train_gflops_per_step > 0
    assert torch.equal(torch.get_rng_state(), rng)
    after = method.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in before.items())


def test_parameters_at_inference_follow_the_scenario(data_root):
    stars, sampler, _ = build_method("stars", data_root)
    window = {k: v[:1] for k, v in sampler.batch(0).items()}
    full = inference_cost(stars, window, Scenario(frozenset({"optical", "dsm"})))
    alone = inference_cost(stars, window, Scenario(frozenset({"optical"})))
    assert alone.parameters < full.parameters <= trained_parameters(stars)
    assert alone.gflops < full.gflops
    baseline, _, _ = build_method("baseline", data_root)
    zero_filled = inference_cost(baseline, window, Scenario(frozenset({"optical"})))
    assert zero_filled.parameters == trained_parameters(baseline)  # both encoders still run


def test_flops_budget_scales_steps_to_the_baselines_flops(data_root):
    request = SweepRequest(
        methods=(NamedConfig("baseline"), NamedConfig("stars"), NamedConfig("unimodal")),
        datasets=(parse_named(tiny_dataset_arg()),),
        seeds=(0,),
        preset=PRESETS.get("smoke"),
        steps=20,
        missing="all",
    )
    specs = expand(request).specs
    scaled = {(s.label, s.train_modalities): s for s in match_flops(specs, data_root)}
    baseline = scaled[("baseline", ("dsm", "optical"))]
    assert baseline.steps == 20 and baseline.budget_ratio == 1.0
    stars = scaled[("stars", ("dsm", "optical"))]
    assert stars.budget == "flops" and 0 < stars.budget_ratio < 1 and stars.steps < 20
    assert stars.steps == round(20 * stars.budget_ratio)
    single = scaled[("unimodal", ("optical",))]
    assert single.budget_ratio > 1 and single.steps > 20  # one encoder: more steps
    # the ratio is part of the run's identity; the default budget hashes as before
    assert stars.run_id != dataclasses.replace(stars, budget_ratio=0.5).run_id
    plain = {s.run_id for s in specs}
    assert not plain & {s.run_id for s in scaled.values()}


def test_tables_never_mark_an_oracle_best():
    rows = []
    methods = (("baseline", "single-model", 0.6), ("moddrop", "single-model", 0.5),
               ("unimodal", "oracle", 0.9))  # fmt: skip
    for method, kind, score in methods:
        rows.append(
            {
                "dataset": "d",
                "method": method,
                "kind": kind,
                "imbalance": 1.0,
                "scenario": "a+b",
                "missing": "none",
                "n_present": 2,
                "seed": 0,
                "status": "ok",
                "miou": score,
            }  # fmt: skip
        )
    board = pd.DataFrame(rows)
    names = [m for m, _k, _s in methods]
    expected = {("d", 1.0, m): 1 for m in names}
    table = tables.scenario_table(board, "d", names, "miou", expected)
    (_, base_cells), (_, other_cells), (oracle_stub, oracle_cells) = table.rows
    assert oracle_stub[1] == "unimodal (oracle)" and not oracle_cells[0].bold
    assert base_cells[0].bold  # the best of the single models, though the oracle scores more
    assert not other_cells[0].bold
    assert "never marked best" in table.caption
