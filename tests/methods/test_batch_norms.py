"""Batch norms see in training what they see at inference (issue: STARS and ShaSpec trained
each pass and modality with its own statistics but evaluated with blended ones)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from benchmark.core.method import evaluation_mode, modality_inputs
from methods.components.compose import Composer
from methods.components.translators import TranslatorBank
from tests.methods.zoo_helpers import build_method


def norm_updates(module: nn.Module) -> dict[str, int]:
    """How many batches each BatchNorm of `module` has folded into its running statistics."""
    return {
        name: int(m.num_batches_tracked)
        for name, m in module.named_modules()
        if isinstance(m, nn.BatchNorm2d)
    }


@pytest.mark.parametrize(
    ("decode_norm", "updates_per_step"), [("joint", 1), ("separate", 2), ("private", 1)]
)
def test_stars_decoder_norms_see_one_batch_per_pass_kind(data_root, decode_norm, updates_per_step):
    """joint: one decode of full + recovered, so each norm folds one (mixed) batch per step;
    separate (the first implementation): two decodes through the same norms, two batches with
    different statistics; private: each pass's own norms, one batch each."""
    method, sampler, _ = build_method("stars", data_root, {"decode_norm": decode_norm})
    method.update(sampler.batch(0), 0)
    counts = norm_updates(method.decoder) | norm_updates(method.head)
    assert counts and set(counts.values()) == {updates_per_step}


def test_stars_private_decode_norms_are_picked_by_scenario(data_root):
    method, sampler, _ = build_method("stars", data_root, {"decode_norm": "private"})
    method.update(sampler.batch(0), 0)
    inputs = modality_inputs(sampler.batch(1))
    seen = []
    hooks = [
        bn.register_forward_hook(lambda mod, *_, key=key: seen.append(key))
        for switch in method._pass_norms
        for key, bn in switch.norms.items()
    ]
    with evaluation_mode(method):
        method.predict(inputs)
        assert set(seen) == {"full"}
        seen.clear()
        method.predict({"optical": inputs["optical"]})
        assert set(seen) == {"recovered"}
    for hook in hooks:
        hook.remove()


@pytest.mark.parametrize(("norm", "per_modality"), [("private", True), ("joint", False)])
def test_composer_norms(norm, per_modality):
    torch.manual_seed(0)
    composer = Composer([8, 16], [4, 4], ("a", "b"), kernel=3, norm=norm)
    shared = {m: [torch.randn(2, 8, 6, 6), torch.randn(2, 16, 3, 3)] for m in "ab"}
    specific = {m: [torch.randn(2, 4, 6, 6), torch.randn(2, 4, 3, 3)] for m in "ab"}
    out = composer(shared, specific)
    assert [x.shape for x in out["a"]] == [(2, 8, 6, 6), (2, 16, 3, 3)]
    counts = norm_updates(composer)
    if per_modality:  # one norm per modality and level, each folding its own modality once
        assert len(counts) == 4 and set(counts.values()) == {1}
    else:  # one norm per level folding both modalities as one batch
        assert len(counts) == 2 and set(counts.values()) == {1}
    with torch.no_grad():  # at inference a modality alone gets the same normalisation rule
        composer.eval()
        alone = composer({"a": shared["a"]}, {"a": specific["a"]})
        assert torch.isfinite(alone["a"][0]).all()


def test_per_sample_recovery_mixes_scenarios_within_a_batch():
    torch.manual_seed(0)
    bank = TranslatorBank(("a", "b", "c"), [4, 4], levels=(0,))
    pyramids = {m: [torch.randn(3, 4, 5, 5), torch.randn(3, 4, 2, 2)] for m in "abc"}
    translations = bank.translate_all(pyramids)
    keep = {
        "a": torch.tensor([True, False, True]),
        "b": torch.tensor([False, True, True]),
        "c": torch.tensor([False, False, False]),
    }
    out = bank.recover_per_sample(pyramids, translations, keep)
    # sample 0 keeps only a: b is a's translation at level 0 and a's own features at level 1
    torch.testing.assert_close(out["b"][0][0], translations[("a", "b")][0][0])
    torch.testing.assert_close(out["b"][1][0], pyramids["a"][1][0])
    torch.testing.assert_close(out["a"][0][0], pyramids["a"][0][0])  # kept: its own
    # sample 2 keeps a and b: c is the mean of both translations, as the batch rule gives
    last = {m: [level[2:] for level in pyramids[m]] for m in "ab"}
    sliced = {
        pair: {lv: t[2:] for lv, t in levels.items()} for pair, levels in translations.items()
    }
    whole = bank.recover("c", last, sliced)
    torch.testing.assert_close(out["c"][0][2:], whole[0], rtol=1e-5, atol=1e-6)
