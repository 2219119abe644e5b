"""Builders shared by the baseline-zoo tests: a method with overrides on the tiny dataset."""

from __future__ import annotations

import torch

from benchmark.core.hparams import resolve_hparams
from benchmark.core.method import TrainContext
from benchmark.core.plugins import DATASETS, METHODS
from benchmark.core.presets import PRESETS
from benchmark.data.pipeline import PatchSampler
from tests.conftest import TINY


def build_method(name, data_root, overrides=None, dataset="synthetic", steps=4, modalities=None):
    """(method, sampler, spec) with the smoke preset, `overrides` and `modalities` to train on."""
    cls = DATASETS.get(dataset)
    train = cls(data_root, "train", cls.make_options(TINY))
    method_cls = METHODS.get(name)
    hparams = resolve_hparams(
        method_cls.hparam_space(), PRESETS.get("smoke").hparams, overrides or {}
    )
    modalities = tuple(modalities or train.spec.modality_names)
    context = TrainContext(
        total_steps=steps, class_frequencies=(1 / 6,) * 6, train_modalities=modalities
    )
    torch.manual_seed(0)
    method = method_cls(train.spec, hparams, context)
    sampler = PatchSampler(train, hparams["batch_size"], hparams["crop_size"], 0, modalities)
    return method, sampler, train.spec


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Copies of every parameter and buffer (batch-norm statistics included)."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed(before: dict[str, torch.Tensor], module: torch.nn.Module) -> list[str]:
    after = module.state_dict()
    return [k for k, v in before.items() if v.is_floating_point() and not torch.equal(v, after[k])]
