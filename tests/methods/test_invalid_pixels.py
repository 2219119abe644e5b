"""Partial absence handled like absence: for every registered method, pixels a corruption marks
invalid go through the method's own missing-modality mechanism (`Method.predict_partial`),
reached the way the harness reaches it (`predict_views` with validity masks)."""

from __future__ import annotations

import pytest
import torch

from benchmark.core.method import evaluation_mode, modality_inputs
from benchmark.core.plugins import METHODS
from benchmark.core.records import MEAN_FILL, OWN_FILL
from benchmark.core.scenarios import all_scenarios
from benchmark.run.evaluate import VALID_PREFIX, views_predictor
from tests.methods.zoo_helpers import build_method

MEAN_IS_OWN = ("baseline", "unimodal", "distill", "moddrop")
"""Methods whose own answer to a missing modality is the zero (= mean) fill at the input: their
own handling of invalid pixels is the mean fill, exactly."""


_TRAINED: dict[tuple, tuple] = {}


def trained(name: str, data_root, dataset: str = "synthetic", overrides=None):
    """The method after two updates and the modality inputs of a fresh batch (built once per
    module: the tests only predict, in eval mode)."""
    key = (name, dataset, tuple(sorted((overrides or {}).items())))
    if key not in _TRAINED:
        method, sampler, _ = build_method(name, data_root, overrides, dataset=dataset)
        for step in range(2):
            method.update(sampler.batch(step), step)
        _TRAINED[key] = (method, modality_inputs(sampler.batch(2)))
    return _TRAINED[key]


def half_invalid(x: torch.Tensor) -> torch.Tensor:
    """A validity mask [B, 1, H, W] with the left half of every window invalid (a cloud)."""
    valid = torch.ones(x.shape[0], 1, *x.shape[-2:], dtype=torch.bool)
    valid[..., : x.shape[-1] // 2] = False
    return valid


def own(method, view, validity):
    """The logits the harness gets under `--invalid-fill own`."""
    (logits,) = method.predict_views([view], [validity])
    return logits


def mean_filled(view, validity):
    """`view` with its invalid pixels at zero (the training mean), computed here, not by the
    harness: what every method predicted from before it had its own handling."""
    return {m: torch.where(validity[m], x, 0.0) if m in validity else x for m, x in view.items()}


@pytest.mark.parametrize("name", METHODS.names())
def test_partial_absence_is_absence_at_the_invalid_pixels(name, data_root):
    method, inputs = trained(name, data_root)
    target, *rest = list(inputs)
    without = {m: x for m, x in inputs.items() if m != target}
    everywhere = torch.ones(inputs[target].shape[0], 1, *inputs[target].shape[-2:], dtype=bool)
    with evaluation_mode(method):
        clean = method.predict(inputs)
        absent = method.predict(without)
        intact = own(method, inputs, {target: everywhere})
        gone = own(method, inputs, {target: ~everywhere})
        cloud = half_invalid(inputs[target])
        partial = own(method, inputs, {target: cloud})
        mean = method.predict(mean_filled(inputs, {target: cloud}))
    # no invalid pixel: exactly the clean prediction
    assert torch.equal(intact, clean), f"{name}: max diff {(intact - clean).abs().max()}"
    # every pixel invalid: the prediction without the modality (up to rounding)
    torch.testing.assert_close(gone.softmax(1), absent.softmax(1), rtol=1e-4, atol=1e-5)
    assert torch.isfinite(partial).all() and partial.shape == clean.shape
    if name in MEAN_IS_OWN:
        assert torch.equal(partial, mean), name
    else:  # its own mechanism is not the mean fill
        assert not torch.allclose(partial, mean), name
    # what lets the harness evaluate `own` once and write `mean` from it
    assert method.own_fill_is_mean() == (name in MEAN_IS_OWN), name


@pytest.mark.parametrize("fill", ["input_zero", "feature_zero"])
def test_moddrop_own_fill_is_the_mean_fill_only_at_the_input(fill, data_root):
    """ModDrop's own handling depends on its `fill`: `own_fill_is_mean` asks the instance."""
    method, inputs = trained("moddrop", data_root, overrides={"fill": fill})
    target = next(iter(inputs))
    cloud = half_invalid(inputs[target])
    with evaluation_mode(method):
        partial = own(method, inputs, {target: cloud})
        mean = method.predict(mean_filled(inputs, {target: cloud}))
    assert method.own_fill_is_mean() == (fill == "input_zero") == torch.equal(partial, mean)


@pytest.mark.parametrize(
    ("name", "overrides"), [("moddrop", {"fill": "feature_zero"}), ("stars", None)]
)
def test_three_modalities_sources_weighted_by_validity(name, overrides, data_root):
    """With three modalities, an absent one is recovered from the valid sources only: a
    wholly invalid modality gives the two-modality prediction, while a third is absent."""
    method, inputs = trained(name, data_root, "synthetic_3m", overrides)
    first, second, third = list(inputs)
    kept = {m: inputs[m] for m in (first, second)}
    gone = torch.zeros(inputs[first].shape[0], 1, *inputs[first].shape[-2:], dtype=bool)
    with evaluation_mode(method):
        absent = method.predict({second: inputs[second]})
        result = own(method, kept, {first: gone})
        partial = own(method, kept, {first: half_invalid(inputs[first])})
        mean = method.predict(mean_filled(kept, {first: half_invalid(inputs[first])}))
    torch.testing.assert_close(result.softmax(1), absent.softmax(1), rtol=1e-4, atol=1e-5)
    assert not torch.allclose(partial, mean)


@pytest.mark.parametrize("name", METHODS.names())
def test_mean_variant_is_the_old_mean_fill_and_own_is_the_default(name, data_root):
    """`--invalid-fill mean` predicts from the mean-filled inputs for every method (what every
    corrupted record measured before the choice existed); `own` is the default."""
    method, inputs = trained(name, data_root)
    target = next(iter(inputs))
    cloud = half_invalid(inputs[target])
    windows = {**inputs, VALID_PREFIX + target: cloud.float()}
    with evaluation_mode(method):
        old = method.predict(mean_filled(inputs, {target: cloud}))
        (mean,) = views_predictor(method, fills=[MEAN_FILL])([windows])
        (default,) = views_predictor(method)([windows])
        (chosen,) = views_predictor(method, fills=[OWN_FILL])([windows])
        (direct,) = method.predict_views([inputs], [{target: cloud}])
    assert torch.equal(mean, old)
    assert torch.equal(default, chosen) and torch.equal(chosen, direct)


@pytest.mark.parametrize("name", METHODS.names())
def test_views_with_invalid_pixels_equal_each_view_alone(name, data_root):
    """The shared path (`predict_views`, validity per view) gives every scenario with a cloud
    exactly what `predict_partial` gives it alone."""
    method, inputs = trained(name, data_root)
    target = next(iter(inputs))
    cloud = half_invalid(inputs[target])
    scenarios = all_scenarios(list(inputs))
    views = [s.select(inputs) for s in scenarios]
    masks = [{target: cloud} if target in s.present else {} for s in scenarios]
    with evaluation_mode(method):
        alone = [
            method.predict_partial(v, m) if m else method.predict(v)
            for v, m in zip(views, masks, strict=True)
        ]
        together = method.predict_views(views, masks)
    for scenario, a, b in zip(scenarios, alone, together, strict=True):
        assert torch.equal(a, b), f"{name} {scenario}: max diff {(a - b).abs().max()}"


def test_every_method_says_what_it_does_with_invalid_pixels():
    """Each method states its own handling (`INVALID_PIXELS`, listed by `run_benchmark.py
    list`); the baseline's is the default, the mean fill."""
    for name in METHODS.names():
        cls = METHODS.get(name)
        assert "INVALID_PIXELS" in vars(cls) or name == "baseline", name
        if name in MEAN_IS_OWN:
            assert "mean fill" in cls.INVALID_PIXELS, name
