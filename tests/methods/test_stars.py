"""STARS: stop-gradient, shared trunk, translation at inference, and the ablation variants.

The contract suite (test_contract.py) tests `stars` with its defaults; its ablation variants
are run through the same checks here (the contract builds every method without overrides).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.core.method import labels_of, modality_inputs
from benchmark.core.spec import MASK
from benchmark.system.errors import BenchmarkError
from methods.components.shared_encoder import SharedEncoder
from tests.methods.zoo_helpers import build_method, predictions

VARIANTS = {
    "default": {},
    "no_stop_grad": {"stop_grad": False},
    "no_psa": {"psa": False},
    "uniform": {"sampling": "uniform"},
    "hard_l1_coarse": {
        "hard_fraction": 0.5,
        "align_loss": "l1",
        "translate_levels": (1, 3),
        "psa_level": 1,
    },
}
ALIGNED = {"warmup": 0}
"""STARS's alignment terms on from the first step (its default waits for a warm-up)."""


def forward_parts(method, batch):
    features_in = modality_inputs(batch)
    _, features = method.encode(features_in)
    return features, method.translators.translate_all(features)


def grads_of(module) -> float:
    return sum(float(p.grad.abs().sum()) for p in module.parameters() if p.grad is not None)


# ----------------------------------------------------------------------- stop-gradient
@pytest.mark.parametrize("stop_grad", [True, False])
@pytest.mark.parametrize("loss", ["align", "psa"])
def test_stop_gradient_blocks_the_target_branch(data_root, stop_grad, loss):
    """Only A->B: B's stem and specific encoder get gradient iff stop_grad is off."""
    method, sampler, spec = build_method("stars", data_root, {**ALIGNED, "stop_grad": stop_grad})
    source, target = spec.modality_names
    batch = sampler.batch(0)
    features, translations = forward_parts(method, batch)
    one_way = {(source, target): translations[(source, target)]}
    both = {(source, target): torch.ones(batch[MASK].shape[0], dtype=torch.bool)}
    method.zero_grad(set_to_none=True)
    if loss == "align":
        value = method.translation_loss(features, one_way, both)
    else:
        value = method.psa_loss(features, one_way, labels_of(batch), torch.zeros(1), both)
    value.backward()
    assert grads_of(method.translators.translators[f"{source}_to_{target}"]) > 0
    assert grads_of(method.specific[source]) > 0 and grads_of(method.shared.stems[source]) > 0
    target_grad = grads_of(method.specific[target]) + grads_of(method.shared.stems[target])
    if stop_grad:
        assert target_grad == 0
    else:
        assert target_grad > 0


# ----------------------------------------------------------------------- architecture
def test_shared_trunk_is_weight_tied_with_per_modality_stems():
    encoder = SharedEncoder("resnet10t", {"optical": 3, "dsm": 1, "sar": 2})
    assert set(encoder.stems) == {"optical", "dsm", "sar"}
    first_convs = {
        m: next(p for p in stem.parameters() if p.dim() == 4) for m, stem in encoder.stems.items()
    }
    assert {m: w.shape[1] for m, w in first_convs.items()} == {"optical": 3, "dsm": 1, "sar": 2}
    inputs = {"optical": torch.randn(2, 3, 64, 64), "dsm": torch.randn(2, 1, 64, 64)}
    out = encoder(inputs)
    assert set(out) == {"optical", "dsm"}
    assert [f.shape[1] for f in out["dsm"]] == encoder.channels == [64, 128, 256, 512]
    assert [64 // f.shape[-1] for f in out["dsm"]] == [4, 8, 16, 32]
    # one trunk: a gradient from either modality lands in the same trunk parameters
    trunk_params = {id(p) for p in encoder.trunk.parameters()}
    stem_params = {id(p) for p in encoder.stems.parameters()}
    assert not trunk_params & stem_params
    assert {id(p) for p in encoder.parameters()} == trunk_params | stem_params


def test_predict_recovers_missing_features_by_translation(data_root):
    """A single-modality prediction depends on the translators; the full one does not."""
    method, sampler, spec = build_method("stars", data_root, ALIGNED)
    method.update(sampler.batch(0), 0)
    batch = sampler.batch(1)
    before = predictions(method, batch)
    with torch.no_grad():
        for p in method.translators.parameters():
            p.add_(0.5)
    after = predictions(method, batch)
    full = "+".join(sorted(spec.modality_names))
    torch.testing.assert_close(before[full], after[full])
    for scenario in before:
        if scenario != full:
            assert not torch.allclose(before[scenario], after[scenario]), scenario


@pytest.mark.parametrize("dataset", ["synthetic", "synthetic_3m"])
def test_predict_every_scenario(data_root, dataset):
    method, sampler, spec = build_method("stars", data_root, ALIGNED, dataset)
    method.update(sampler.batch(0), 0)
    batch = sampler.batch(1)
    outputs = predictions(method, batch)
    assert len(outputs) == 2 ** len(spec.modality_names) - 1
    for scenario, logits in outputs.items():
        assert logits.shape == (batch["mask"].shape[0], spec.num_classes, *batch["mask"].shape[-2:])
        assert torch.isfinite(logits).all(), scenario


def test_warmup_switches_alignment_on(data_root):
    method, sampler, _ = build_method("stars", data_root, {"warmup": 1})
    early = method.update(sampler.batch(0), 0)
    late = method.update(sampler.batch(1), 1)
    assert early["align_active"] == 0.0 and late["align_active"] == 1.0
    assert early["loss"] == pytest.approx(early["ce"] + early["ce_recovered"], rel=1e-5)


def test_diagnostics_report_collapse_gauge(data_root):
    method, sampler, _ = build_method("stars", data_root, ALIGNED)
    method.update(sampler.batch(0), 0)
    diag = method.diagnostics()
    for key in ("align_loss", "psa_loss", "collapse_std_shared", "collapse_std_ref"):
        assert np.isfinite(diag[key]), key
    assert 0 < diag["collapse_std_shared"] <= 1
    assert diag["collapse_std_ref"] == pytest.approx(1 / np.sqrt(512))


def test_bad_levels_fail_with_a_one_line_error(data_root):
    with pytest.raises(BenchmarkError):
        build_method("stars", data_root, {**ALIGNED, "translate_levels": (5,)})
    with pytest.raises(BenchmarkError):
        build_method("stars", data_root, {**ALIGNED, "translate_levels": (2, 3), "psa_level": 1})


# ----------------------------------------------------------------------- ablation contract
@pytest.mark.parametrize("dataset", ["synthetic", "synthetic_3m"])
@pytest.mark.parametrize("variant", list(VARIANTS), ids=list(VARIANTS))
def test_variant_honours_the_contract(data_root, dataset, variant):
    """The contract checks (finite losses, every scenario, determinism, exact resume)."""
    overrides = {**ALIGNED, **VARIANTS[variant]}
    method, sampler, spec = build_method("stars", data_root, overrides, dataset, seed=3)
    losses = [method.update(sampler.batch(s), s) for s in range(2)]
    assert all(np.isfinite(v) for step in losses for v in step.values())
    state = method.checkpoint()
    rng = torch.get_rng_state()
    uninterrupted = method.update(sampler.batch(2), 2)
    outputs = predictions(method, sampler.batch(7))
    assert len(outputs) == 2 ** len(spec.modality_names) - 1
    values = list(outputs.values())
    assert any(not torch.allclose(values[0], other) for other in values[1:])

    again, _, _ = build_method("stars", data_root, overrides, dataset, seed=3)
    assert [again.update(sampler.batch(s), s) for s in range(2)] == losses  # same seed

    restored, _, _ = build_method("stars", data_root, overrides, dataset, seed=99)
    restored.restore(state)
    torch.set_rng_state(rng)
    assert restored.update(sampler.batch(2), 2) == uninterrupted
    for key, value in predictions(restored, sampler.batch(7)).items():
        torch.testing.assert_close(value, outputs[key])
