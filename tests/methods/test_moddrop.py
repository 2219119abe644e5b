"""ModDrop: subsets are drawn with the stated probabilities, never empty; both fill modes."""

from __future__ import annotations

import pytest
import torch

from benchmark.core.method import evaluation_mode, modality_inputs
from benchmark.core.scenarios import all_scenarios
from benchmark.system.errors import BenchmarkError
from methods.components.training.dropout import SubsetSampler, zero_features, zero_inputs
from tests.methods.zoo_helpers import build_method


@pytest.mark.parametrize("names", [("dsm", "optical"), ("dsm", "optical", "sar")])
@pytest.mark.parametrize("per", ["sample", "batch"])
def test_never_samples_the_empty_set_and_covers_every_subset(names, per):
    torch.manual_seed(0)
    sampler = SubsetSampler(names, per=per)
    draws = torch.cat([sampler.sample(16) for _ in range(100)])
    assert draws.any(1).all()
    seen = {frozenset(n for n, k in zip(names, row, strict=True) if k) for row in draws.tolist()}
    assert seen == {s.present for s in all_scenarios(names)}
    if per == "batch":
        one = sampler.sample(16)
        assert (one == one[0]).all()


def test_explicit_probabilities_are_honoured():
    torch.manual_seed(0)
    names = ("dsm", "optical")  # subsets in order: dsm+optical, dsm, optical
    assert SubsetSampler(names, (1, 0, 0)).sample(64).all()
    only_dsm = SubsetSampler(names, (0, 1, 0)).sample(64)
    assert only_dsm[:, 0].all() and not only_dsm[:, 1].any()
    share = SubsetSampler(names, (2, 1, 1)).sample(20_000).all(1).float().mean()
    assert abs(float(share) - 0.5) < 0.02
    with pytest.raises(BenchmarkError, match="3 non-negative"):
        SubsetSampler(names, (1, 1))


def test_masks_zero_exactly_the_dropped_samples():
    x = {"a": torch.ones(3, 2, 4, 4), "b": torch.ones(3, 1, 4, 4)}
    keep = {"a": torch.tensor([True, False, True]), "b": torch.tensor([False, True, True])}
    out = zero_inputs(x, keep)
    assert out["a"][1].abs().sum() == 0 and out["a"][0].eq(1).all()
    assert out["b"][0].abs().sum() == 0 and out["b"][1:].eq(1).all()
    pyramids = [[torch.ones(3, 4, 8, 8), torch.ones(3, 8, 4, 4)] for _ in range(2)]
    masked = zero_features(pyramids, [keep["a"], keep["b"]])
    for level in masked[0]:
        assert level[1].abs().sum() == 0 and level[[0, 2]].eq(1).all()


@pytest.mark.parametrize("fill", ["input_zero", "feature_zero"])
def test_fill_modes_train_and_predict_every_scenario(data_root, fill):
    method, sampler, spec = build_method("moddrop", data_root, {"fill": fill})
    losses = method.update(sampler.batch(0), 0)
    assert 1 <= losses["kept_modalities"] <= len(spec.modality_names)
    inputs = modality_inputs(sampler.batch(1))
    with evaluation_mode(method):
        outs = [method.predict(s.select(inputs)) for s in all_scenarios(list(inputs))]
    assert all(torch.isfinite(o).all() for o in outs)
    assert not torch.allclose(outs[0], outs[1])


def test_feature_zero_predict_matches_zeroed_training_path(data_root):
    """At test time a missing modality's features are exactly the zeros training used."""
    method, sampler, _ = build_method("moddrop", data_root, {"fill": "feature_zero"})
    inputs = modality_inputs(sampler.batch(0))
    first, second = method.modalities
    with evaluation_mode(method):
        keep = torch.tensor([[True, False]]).expand(inputs[first].shape[0], -1)
        pyramids = zero_features(method.net.encode(inputs), keep.unbind(1))
        reference = method.net.decode(method.net.fusion(pyramids), inputs[first].shape[-2:])
        torch.testing.assert_close(method.predict({first: inputs[first]}), reference)
