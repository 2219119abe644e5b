"""Evaluating every scenario of one input at once (`Method.predict_views`) gives each scenario
exactly what `predict` gives it alone, for every registered method, and the methods with
per-modality encoders encode each modality once instead of once per scenario."""

from __future__ import annotations

import pytest
import torch

from benchmark.core.method import evaluation_mode, modality_inputs
from benchmark.core.plugins import METHODS
from benchmark.core.scenarios import all_scenarios
from methods.components.encoders import ModalityEncoder
from methods.components.shared_encoder import SharedEncoder
from tests.methods.zoo_helpers import build_method

DATASET = "synthetic_3m"
"""Three modalities: seven scenarios, the smallest case where scenarios overlap in pairs."""
SHARING = ("baseline", "moddrop", "stars", "shaspec", "metars", "lckd", "mmanet", "distill")
"""Methods whose per-modality encoders see only their own modality: each is encoded once (or,
for a zero-filled modality, its zeros once) across all scenarios."""
IMPUTING = ("generative",)
"""Encodes each present modality once; an imputed modality differs per scenario."""


def trained(name: str, data_root):
    """The method after two updates (non-trivial weights and batch-norm statistics), and the
    modality inputs of a fresh batch."""
    method, sampler, _ = build_method(name, data_root, dataset=DATASET)
    for step in range(2):
        method.update(sampler.batch(step), step)
    return method, modality_inputs(sampler.batch(2))


def encoded_samples(monkeypatch) -> list[int]:
    """A list that grows by the batch size of every per-modality encoder pass."""
    counts: list[int] = []
    pyramid, shared_encode, trunk = (
        ModalityEncoder._pyramid,
        SharedEncoder._encode,
        SharedEncoder.trunk_forward,
    )

    def counted_pyramid(self, x):
        counts.append(x.shape[0])
        return pyramid(self, x)

    def counted_encode(self, modality, x):
        counts.append(x.shape[0])
        return shared_encode(self, modality, x)

    def counted_trunk(self, x):
        if not getattr(self, "_inside_encode", False):
            counts.append(x.shape[0])  # a joint pass over concatenated modalities
        return trunk(self, x)

    def flagged_encode(self, modality, x):
        self._inside_encode = True
        try:
            return counted_encode(self, modality, x)
        finally:
            self._inside_encode = False

    monkeypatch.setattr(ModalityEncoder, "_pyramid", counted_pyramid)
    monkeypatch.setattr(SharedEncoder, "_encode", flagged_encode)
    monkeypatch.setattr(SharedEncoder, "trunk_forward", counted_trunk)
    return counts


@pytest.mark.parametrize("name", METHODS.names())
def test_shared_views_equal_each_scenario_alone_and_encode_once(name, data_root, monkeypatch):
    method, inputs = trained(name, data_root)
    scenarios = all_scenarios(list(inputs))
    views = [s.select(inputs) for s in scenarios]
    batch, modalities = next(iter(inputs.values())).shape[0], len(inputs)
    counts = encoded_samples(monkeypatch)
    with evaluation_mode(method):
        alone = [method.predict(view) for view in views]
        unshared = sum(counts)
        counts.clear()
        together = method.predict_views(views)
        shared = sum(counts)
    assert len(together) == len(views)
    for scenario, a, b in zip(scenarios, alone, together, strict=True):
        # bit-identical on CPU: a shared encoding is the same computation on the same tensor
        assert torch.equal(a, b), f"{name} {scenario}: max diff {(a - b).abs().max()}"
    if name in SHARING + IMPUTING:
        assert shared < unshared, (shared, unshared)
    if name in SHARING:  # every modality once, plus at most its zero fill once, per encoder
        encoders = sum(isinstance(m, ModalityEncoder | SharedEncoder) for m in method.modules())
        assert shared <= 2 * modalities * batch * encoders, (shared, unshared)
