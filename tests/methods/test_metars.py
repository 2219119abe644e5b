"""MetaRS: only the stems of the content encoder are modality-specific, and the whitening mask
is built from training batches only (never validation or test data)."""

from __future__ import annotations

import numpy as np
import torch

from benchmark.core.method import evaluation_mode, modality_inputs
from methods.components.training.whitening import CovarianceMask, kmeans_1d, whitening_loss
from tests.methods.zoo_helpers import build_method, snapshot


def test_content_stems_are_the_only_modality_specific_part_of_the_content_encoder(data_root):
    method, sampler, _ = build_method("metars", data_root, steps=4)
    batch = sampler.batch(0)
    content = method.content
    grads = {}
    for m in method.modalities:
        method.zero_grad(set_to_none=True)
        content({m: batch[m]})[m][-1].sum().backward()
        grads[m] = {n for n, p in content.named_parameters() if p.grad is not None and p.grad.any()}
    dsm_only, optical_only = grads["dsm"] - grads["optical"], grads["optical"] - grads["dsm"]
    assert dsm_only and all(n.startswith("stems.dsm.") for n in dsm_only)
    assert optical_only and all(n.startswith("stems.optical.") for n in optical_only)
    shared = grads["dsm"] & grads["optical"]
    assert shared and all(n.startswith("trunk.") for n in shared)


def test_whitening_statistics_come_from_training_batches_only(data_root):
    overrides = {"begin_fraction": 0.5, "mask_batches": 2}
    method, sampler, _ = build_method("metars", data_root, overrides, steps=6)
    masks = [snapshot(m) for m in method.masks]
    inputs = modality_inputs(sampler.batch(7))
    for step in range(6):
        if step == 1:  # predicting (validation, test) in the middle changes nothing
            with evaluation_mode(method):
                for scenario in ({"dsm"}, {"optical"}, {"dsm", "optical"}):
                    method.predict({m: inputs[m] for m in scenario})
            assert all(
                torch.equal(v, m.state_dict()[k])
                for before, m in zip(masks, method.masks, strict=True)
                for k, v in before.items()
            )
        losses = method.update(sampler.batch(step), step)
        if step < 3:
            assert losses["mmr"] == 0 and losses["align"] == 0
    batch_size = sampler.batch(0)["mask"].shape[0]
    assert [int(m.images) for m in method.masks] == [2 * batch_size] * 2  # steps 1 and 2
    assert all(bool(m.built) and int(m.mask.sum()) > 0 for m in method.masks)
    assert losses["mmr"] > 0 and losses["align"] > 0


def test_kmeans_and_mask_rules():
    values = np.array([0.0, 0.01, 0.02, 5.0, 5.1, 9.0])
    labels = kmeans_1d(values, 3)
    assert list(labels) == [0, 0, 0, 1, 1, 2]
    mask = CovarianceMask(3, clusters=2)
    a = torch.randn(4, 3, 5, 5)
    b = a.clone()
    b[:, 2] = torch.randn(4, 5, 5)  # channel 2 relates differently in the other modality
    mask.observe([a, b])
    count = mask.build()
    assert count > 0 and not mask.mask.diagonal().any() and torch.equal(mask.mask, mask.mask.T)
    assert bool(mask.mask[0, 2]) and not bool(mask.mask[0, 1])
    assert float(whitening_loss(a, torch.zeros(3, 3, dtype=torch.bool))) == 0.0
