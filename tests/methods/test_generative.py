"""Generative filling: translators learn from L1 (+GAN), the segmenter never trains them."""

from __future__ import annotations

import pytest
import torch

from benchmark.core.method import evaluation_mode, modality_inputs
from methods.components.unet import UNetGenerator
from methods.generative import imputation_quality
from tests.methods.zoo_helpers import build_method, changed, snapshot


def test_unet_keeps_any_size():
    net = UNetGenerator(3, 2, base=4, depth=3).eval()
    assert net(torch.randn(1, 3, 37, 50)).shape == (1, 2, 37, 50)


def test_imputation_quality():
    real = torch.linspace(0, 1, 100).view(1, 1, 10, 10)
    assert imputation_quality(real, real)[0] == 0.0
    l1, psnr = imputation_quality(real + 0.1, real)
    assert abs(l1 - 0.1) < 1e-6 and abs(psnr - 20.0) < 1e-3


def test_generator_gets_l1_gradient_and_segmenter_loss_does_not_reach_it(data_root):
    method, sampler, _ = build_method("generative", data_root, {"gan": False})
    batch = sampler.batch(0)
    inputs = modality_inputs(batch)
    target = method.modalities[0]
    fake = method.impute({m: x for m, x in inputs.items() if m != target}, target)
    method.zero_grad(set_to_none=True)
    (fake - inputs[target]).abs().mean().backward()
    assert sum(float(p.grad.abs().sum()) for p in method.generators[target].parameters()) > 0

    # the training step: the segmenter's CE is computed on detached imputations
    keep = {m: torch.tensor([m != target] * batch["mask"].shape[0]) for m in method.modalities}
    have = {m: torch.ones(batch["mask"].shape[0], dtype=torch.bool) for m in method.modalities}
    fakes, _ = method.translator_step(inputs, keep, have)
    assert all(not f.requires_grad for f in fakes.values())
    method.zero_grad(set_to_none=True)
    seg_inputs = {m: fakes[m] if m == target else x for m, x in inputs.items()}
    method.segmentation_loss(method.segmenter(seg_inputs), batch["mask"]).backward()
    assert all(p.grad is None for p in method.generators.parameters())
    assert any(p.grad is not None for p in method.segmenter.parameters())


def test_update_moves_generators_and_discriminators_and_records_quality(data_root):
    method, sampler, spec = build_method("generative", data_root, {"impute_after": 0.0})
    generators, discriminators = snapshot(method.generators), snapshot(method.discriminators)
    losses = method.update(sampler.batch(0), 0)
    assert {"g_loss", "d_loss", "ce"} <= set(losses)
    assert changed(generators, method.generators) and changed(discriminators, method.discriminators)
    assert all(p.requires_grad for p in method.discriminators.parameters())
    stats = method.diagnostics()
    for m in spec.modality_names:
        assert stats[f"impute_l1_{m}"] > 0 and stats[f"impute_psnr_{m}"] != 0


@pytest.mark.parametrize("dataset", ["synthetic", "synthetic_3m"])
def test_imputation_uses_only_present_modalities(data_root, dataset):
    method, sampler, _ = build_method("generative", data_root, dataset=dataset)
    inputs = modality_inputs(sampler.batch(0))
    target, *others = method.modalities
    with evaluation_mode(method):
        present = {m: inputs[m] for m in others}
        imputed = method.complete(present)
        assert set(imputed) == set(method.modalities)
        torch.testing.assert_close(imputed[target], method.impute(present, target))
        torch.testing.assert_close(method.predict(present), method.segmenter(imputed))
