"""Compute-matched budgets (`--budget flops`): every method trains for as many FLOPs as the
baseline does at the preset's steps.

A method's FLOPs per training step are counted on its own real steps (`benchmark.run.cost`),
the baseline's likewise (the preset's `baseline` on the run's dataset, with every modality),
and the method's steps are scaled by the ratio. The ratio is stored in the run spec, so it is
part of the run's hash; every schedule inside a method (warm-ups, stage splits) scales with the
step count it is given. A method with a teacher pays for it here: its FLOPs per step count the
teacher's calls too (`Method.update_calls`), so its student gets fewer steps under this budget.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

import torch

from benchmark.core.options import NamedConfig
from benchmark.core.plugins import DATASETS
from benchmark.core.presets import PRESETS
from benchmark.core.records import RunSpec
from benchmark.data.pipeline import prepare_data, training_batches
from benchmark.run.cost import training_flops_per_step
from benchmark.run.sweep import make_run_spec
from benchmark.run.train import build_method

log = logging.getLogger(__name__)

BUDGETS = ("steps", "flops")
REFERENCE_METHOD = "baseline"
CPU = torch.device("cpu")


def flops_per_step(spec: RunSpec, data_root: Path) -> float:
    """Training FLOPs per budget step of `spec`'s method (a teacher's calls included), counted
    on the CPU (FLOP counts do not depend on the device)."""
    data = prepare_data(spec, data_root)
    method = build_method(spec, data, CPU)
    batches = training_batches(
        data.train,
        spec.hparams,
        spec.seed,
        spec.train_modalities,
        data.label_filter,
        CPU,
        None,
        data.availability,
    )
    with batches:
        return training_flops_per_step(method, batches.sampler, spec.steps, CPU)


def reference_spec(spec: RunSpec) -> RunSpec:
    """The preset's baseline on `spec`'s dataset, seed and step count, with every modality."""
    preset = PRESETS.get(spec.preset)
    dataset = NamedConfig(spec.dataset, spec.dataset_options)
    modalities = DATASETS.get(spec.dataset).modalities_for(
        DATASETS.get(spec.dataset).make_options(spec.dataset_options)
    )
    reference = make_run_spec(
        NamedConfig(REFERENCE_METHOD), dataset, spec.seed, preset, spec.steps, modalities,
        spec.imbalance,
    )  # fmt: skip
    return dataclasses.replace(
        reference, train_missing=spec.train_missing, selection=spec.selection
    )


def match_flops(specs: Sequence[RunSpec], data_root: Path) -> tuple[RunSpec, ...]:
    """`specs` with their steps scaled so that each trains for the baseline's FLOPs."""
    measured: dict[tuple, float] = {}

    def flops(spec: RunSpec) -> float:
        key = (spec.method, spec.hparams, spec.dataset, spec.dataset_options,
               spec.train_modalities, spec.imbalance, spec.steps)  # fmt: skip
        if key not in measured:
            measured[key] = flops_per_step(spec, data_root)
            log.info("%s: %.2f GFLOPs per training step", spec.label, measured[key] / 1e9)
        return measured[key]

    scaled = []
    for spec in specs:
        ratio = flops(reference_spec(spec)) / flops(spec)
        steps = max(1, round(spec.steps * ratio))
        scaled.append(
            dataclasses.replace(spec, steps=steps, budget="flops", budget_ratio=round(ratio, 6))
        )
    return tuple(scaled)
