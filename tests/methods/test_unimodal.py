"""Unimodal: a dedicated model built, trained and evaluated on exactly its own modalities."""

from __future__ import annotations

import pytest
import torch

from benchmark.core.method import evaluation_mode, modality_inputs
from benchmark.core.options import NamedConfig
from benchmark.core.plugins import METHODS
from benchmark.core.presets import PRESETS
from benchmark.run.sweep import SweepRequest, expand
from tests.methods.zoo_helpers import build_method


def test_is_dedicated_and_the_sweep_expands_one_run_per_subset():
    assert METHODS.get("unimodal").DEDICATED
    request = SweepRequest(
        methods=(NamedConfig("unimodal"),),
        datasets=(NamedConfig("synthetic"),),
        seeds=(0,),
        preset=PRESETS.get("smoke"),
        steps=2,
        missing="all",
    )
    subsets = sorted(tuple(s.train_modalities) for s in expand(request).specs)
    assert subsets == [("dsm",), ("dsm", "optical"), ("optical",)]


@pytest.mark.parametrize("own", [("dsm",), ("optical",)])
def test_single_modality_model_sees_only_its_modality(data_root, own):
    method, sampler, _ = build_method("unimodal", data_root, modalities=own)
    assert set(method.net.encoders) == set(own)
    batch = sampler.batch(0)
    assert set(modality_inputs(batch)) == set(own)  # the harness samples only its modalities
    assert torch.isfinite(torch.tensor(method.update(batch, 0)["loss"]))
    with evaluation_mode(method):
        logits = method.predict(modality_inputs(sampler.batch(1)))
    assert logits.shape[-2:] == batch["mask"].shape[-2:]
