"""Training with missing modalities (`--train-missing`): every method, on every embedded dataset.

Absent samples arrive as NaN with `available:<modality>` flags; a method that reads them
diverges, and one that reads them at all (whatever their value) changes its losses.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.core.method import AVAILABLE_PREFIX, availability_matrix, zero_fill_missing
from benchmark.core.plugins import METHODS
from benchmark.core.spec import MASK
from benchmark.data.pipeline import PatchSampler, tile_availability
from tests.methods.zoo_helpers import build_method, predictions

STEPS = 6
"""Enough for both stages of the two-stage methods and the switch-on of delayed losses."""


def missing_sampler(sampler: PatchSampler, rate: float = 0.5, seed: int = 0) -> PatchSampler:
    """The same sampler with `rate` of the training tiles lacking each modality."""
    names = sampler.dataset.spec.modality_names
    have = tile_availability(names, len(sampler.dataset), dict.fromkeys(names, rate), seed)
    return PatchSampler(
        sampler.dataset,
        sampler.batch_size,
        sampler.crop,
        sampler.seed,
        sampler.modalities,
        availability=have,
    )


def with_absent_values(batch: dict, value: float) -> dict:
    """The batch with every absent sample's tensor set to `value` (what no method may read)."""
    out = dict(batch)
    for key, present in batch.items():
        if key.startswith(AVAILABLE_PREFIX):
            name = key.removeprefix(AVAILABLE_PREFIX)
            tensor = batch[name].clone()
            tensor[~present] = value
            out[name] = tensor
    return out


@pytest.fixture(
    params=[(m, d) for m in METHODS.names() for d in ("synthetic", "synthetic_3m")],
    ids=lambda p: f"{p[0]}-{p[1]}",
)
def case(request, data_root):
    """`build_method`'s arguments for one method on one dataset."""
    name, dataset = request.param
    return {"name": name, "dataset": dataset, "data_root": data_root}


def test_trains_with_half_of_each_modality_missing_and_predicts_every_scenario(case):
    method, complete_sampler, spec = build_method(**case, steps=STEPS)
    sampler = missing_sampler(complete_sampler)
    batches = [sampler.batch(step) for step in range(STEPS)]
    flags = torch.stack([availability_matrix(b, spec.modality_names) for b in batches])
    assert not flags.all() and flags.any(-1).all()  # some absent, never a sample with nothing
    for step, batch in enumerate(batches):
        losses = method.update(batch, step)
        assert all(np.isfinite(v) for v in losses.values()), (step, losses)
    assert all(torch.isfinite(p).all() for p in method.parameters())
    outputs = predictions(method, complete_sampler.batch(STEPS))  # test data are complete
    assert len(outputs) == 2 ** len(spec.modality_names) - 1
    for scenario, logits in outputs.items():
        assert torch.isfinite(logits).all(), scenario


@pytest.mark.parametrize("method_name", METHODS.names())
def test_absent_samples_are_never_read(method_name, data_root):
    """Two runs that differ only in what absent samples hold must be identical (three
    modalities: samples lacking one, two, or none of them)."""
    results = []
    for value in (float("nan"), 123.0):
        method, sampler, _ = build_method(
            method_name, data_root, dataset="synthetic_3m", seed=1, steps=STEPS
        )
        sampler = missing_sampler(sampler)
        losses = [
            method.update(with_absent_values(sampler.batch(s), value), s) for s in range(STEPS)
        ]
        results.append((losses, [p.detach().clone() for p in method.parameters()]))
    assert results[0][0] == results[1][0]
    for a, b in zip(results[0][1], results[1][1], strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("method_name", METHODS.names())
def test_method_documents_its_training_with_missing_data(method_name):
    assert METHODS.get(method_name).TRAIN_MISSING


def test_tile_availability_is_seeded_nested_and_never_empty():
    names = ("dsm", "optical")
    low = tile_availability(names, 100, {"dsm": 0.3}, seed=4)
    high = tile_availability(names, 100, {"dsm": 0.7}, seed=4)
    assert (~low["dsm"]).sum() == 30 and (~high["dsm"]).sum() == 70
    assert np.all(high["dsm"] <= low["dsm"])  # 0.7 removes a superset of what 0.3 removes
    assert low["optical"].all()
    again = tile_availability(names, 100, {"dsm": 0.3}, seed=4)
    assert np.array_equal(again["dsm"], low["dsm"])
    other = tile_availability(names, 100, {"dsm": 0.3}, seed=5)
    assert not np.array_equal(other["dsm"], low["dsm"])
    both = tile_availability(names, 100, {"dsm": 0.9, "optical": 0.9}, seed=0)
    assert np.any(np.stack(list(both.values())), axis=0).all()


def test_sampler_fills_absent_samples_with_nan(data_root):
    method, sampler, spec = build_method("baseline", data_root)
    sampler = missing_sampler(sampler, rate=0.5)
    batch = next(
        b for b in (sampler.batch(s) for s in range(20)) if not b[AVAILABLE_PREFIX + "dsm"].all()
    )
    present = batch[AVAILABLE_PREFIX + "dsm"]
    assert torch.isnan(batch["dsm"][~present]).all()
    assert torch.isfinite(batch["dsm"][present]).all()
    filled = zero_fill_missing(batch, spec.modality_names)
    assert torch.isfinite(filled["dsm"]).all() and (filled["dsm"][~present] == 0).all()
    assert MASK in batch and torch.isfinite(filled["optical"]).all()


def test_sampler_marks_absent_samples_without_torch_kernels(data_root):
    """The sampler runs in the prefetching thread, where a torch kernel starts a second
    OpenMP team that competes with training (it cost every train-missing run 25 % of its step
    time on 2 cores): the NaN fill must stay in numpy."""
    from torch.profiler import ProfilerActivity, profile

    _method, sampler, _spec = build_method("baseline", data_root)
    sampler = missing_sampler(sampler, rate=0.5)
    with profile(activities=[ProfilerActivity.CPU]) as recorded:
        for step in range(4):
            batch = sampler.batch(step)
    kernels = {e.name for e in recorded.events()}
    compute = {k for k in kernels if any(w in k for w in ("fill", "index", "bitwise", "copy_"))}
    assert not compute, f"torch kernels in the sampler: {sorted(compute)}"
    assert batch[AVAILABLE_PREFIX + "dsm"].dtype == torch.bool
