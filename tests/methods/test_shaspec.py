"""ShaSpec: the fill uses only present modalities; alignment and modality-classifier losses."""

from __future__ import annotations

import pytest
import torch

from benchmark.core.method import evaluation_mode, modality_inputs
from methods.components.training.fill import shared_fill
from tests.methods.zoo_helpers import build_method


def test_shared_fill_is_the_mean_over_kept_modalities():
    a, b = torch.full((2, 3, 4, 4), 1.0), torch.full((2, 3, 4, 4), 3.0)
    keep = {"a": torch.tensor([True, True]), "b": torch.tensor([False, True])}
    (fill,) = shared_fill({"a": [a], "b": [b]}, keep)
    assert fill[0].eq(1.0).all() and fill[1].eq(2.0).all()


@pytest.mark.parametrize("dataset", ["synthetic", "synthetic_3m"])
def test_missing_features_depend_only_on_present_modalities(data_root, dataset):
    """Per sample: a dropped modality's input gets no gradient from the fused features, and
    its features equal the mean of the kept modalities' shared features."""
    method, sampler, _ = build_method("shaspec", data_root, dataset=dataset)
    inputs = {
        m: x.clone().requires_grad_(True) for m, x in modality_inputs(sampler.batch(0)).items()
    }
    dropped = method.modalities[-1]
    batch = inputs[dropped].shape[0]
    keep = {m: torch.ones(batch, dtype=torch.bool) for m in method.modalities}
    keep[dropped] = torch.tensor([False] + [True] * (batch - 1))
    method.eval()  # running statistics: no coupling of samples through batch norm
    shared, _, features = method.masked_features(inputs, keep)
    present = [m for m in method.modalities if m != dropped]
    for level, value in enumerate(features[dropped]):
        expected = torch.stack([shared[m][level][0] for m in present]).mean(0)
        torch.testing.assert_close(value[0], expected)
    sum(level[0].sum() for pyramid in features.values() for level in pyramid).backward()
    assert inputs[dropped].grad[0].abs().sum() == 0
    assert all(inputs[m].grad[0].abs().sum() > 0 for m in present)


def test_predict_fills_from_the_present_shared_features(data_root):
    method, sampler, _ = build_method("shaspec", data_root)
    inputs = modality_inputs(sampler.batch(0))
    first, second = method.modalities
    with evaluation_mode(method):
        shared, _, composed = method.encode({first: inputs[first]})
        expected = method.decode({first: composed[first], second: shared[first]}, (64, 64))
        torch.testing.assert_close(method.predict({first: inputs[first]}), expected)


def test_losses_and_warm_up(data_root):
    method, sampler, _ = build_method("shaspec", data_root, {"full_fraction": 0.5}, steps=4)
    assert method.random_from == 2
    losses = method.update(sampler.batch(0), 0)
    assert losses["dao"] > 0 and losses["dco"] > 0
    inputs = modality_inputs(sampler.batch(0))
    with torch.no_grad():
        shared, specific, _ = method.encode(inputs)
        same = {m: shared[method.modalities[0]] for m in method.modalities}
        everyone = {m: torch.ones(len(same[m][0]), dtype=torch.bool) for m in same}
        assert float(method.alignment_loss(same, everyone)) == 0.0
    weight = method.modality_classifier.weight
    assert weight.shape[0] == len(method.modalities)
