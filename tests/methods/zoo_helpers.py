"""Helpers shared by the method tests: one builder of a method on a tiny dataset, its
predictions for every scenario, and parameter snapshots."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from benchmark.core.hparams import resolve_hparams
from benchmark.core.method import Method, TrainContext, evaluation_mode, modality_inputs
from benchmark.core.plugins import DATASETS, METHODS
from benchmark.core.presets import PRESETS
from benchmark.core.scenarios import all_scenarios
from benchmark.core.spec import DatasetSpec
from benchmark.data.pipeline import PatchSampler
from tests.conftest import TINY


def build_method(
    name: str,
    data_root: Path,
    overrides: Mapping[str, Any] | None = None,
    dataset: str = "synthetic",
    *,
    seed: int = 0,
    steps: int = 4,
    modalities: Sequence[str] | None = None,
    options: Mapping[str, Any] | None = None,
) -> tuple[Method, PatchSampler, DatasetSpec]:
    """(method, sampler, spec): `name` with the smoke preset and `overrides`, on the training
    split of `dataset` (TINY unless `options`), for `modalities` (all of them unless given);
    `seed` seeds both the initialisation and the sampler, as a run's seed does."""
    cls = DATASETS.get(dataset)
    train = cls(data_root, "train", cls.make_options(TINY if options is None else options))
    method_cls = METHODS.get(name)
    hparams = resolve_hparams(
        method_cls.hparam_space(), PRESETS.get("smoke").hparams, overrides or {}
    )
    modalities = tuple(modalities or train.spec.modality_names)
    classes = train.spec.num_classes
    context = TrainContext(
        total_steps=steps, class_frequencies=(1 / classes,) * classes, train_modalities=modalities
    )
    torch.manual_seed(seed)
    method = method_cls(train.spec, hparams, context)
    sampler = PatchSampler(train, hparams["batch_size"], hparams["crop_size"], seed, modalities)
    return method, sampler, train.spec


class NoLabels(dict):
    """An input mapping that fails loudly if anything looks for labels."""

    def __getitem__(self, key):
        if key == "mask":
            raise AssertionError("predict read the labels")
        return super().__getitem__(key)

    def get(self, key, default=None):
        if key == "mask":
            raise AssertionError("predict read the labels")
        return super().get(key, default)


def predictions(method: Method, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The method's logits for every scenario of the batch's modalities, by scenario name;
    the labels are out of its reach."""
    inputs = modality_inputs(batch)
    with evaluation_mode(method):
        return {
            str(s): method.predict(NoLabels(s.select(inputs))) for s in all_scenarios(list(inputs))
        }


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Copies of every parameter and buffer (batch-norm statistics included)."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed(before: dict[str, torch.Tensor], module: torch.nn.Module) -> list[str]:
    after = module.state_dict()
    return [k for k, v in before.items() if v.is_floating_point() and not torch.equal(v, after[k])]
