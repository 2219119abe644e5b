"""Expand the command line's grid into run specs, and run them (skipping finished ones)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from benchmark.errors import BenchmarkError
from benchmark.hparams import resolve_hparams
from benchmark.imbalance import validate_factor
from benchmark.options import NamedConfig
from benchmark.presets import Preset
from benchmark.progress import console
from benchmark.records import RunSpec
from benchmark.train import RunExecutor, RunOutcome
from datasets import DATASETS
from methods import METHODS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Grid:
    """The product the user asked for: methods x datasets x seeds under one preset."""

    methods: tuple[NamedConfig, ...]
    datasets: tuple[NamedConfig, ...]
    seeds: tuple[int, ...]
    preset: Preset
    steps: int | None = None
    imbalances: tuple[float, ...] = (1.0,)


def make_run_spec(
    method: NamedConfig,
    dataset: NamedConfig,
    seed: int,
    preset: Preset,
    steps: int | None,
    data_modalities: Sequence[str],
    imbalance: float = 1.0,
) -> RunSpec:
    """Resolve names and overrides into a frozen spec; unknown names raise here, early."""
    method_name = METHODS.canonical(method.name)
    method_cls = METHODS.get(method_name)
    hparams = resolve_hparams(
        method_cls.hparam_space(),
        preset.hparams,
        dict(method.overrides),
        owner=f"method {method_name!r}",
    )
    dataset_name = DATASETS.canonical(dataset.name)
    options = DATASETS.get(dataset_name).make_options(dict(dataset.overrides))
    total = steps if steps is not None else preset.steps
    if total < 1:
        raise BenchmarkError(f"--steps must be a positive integer, got {total}")
    label = NamedConfig(method_name, method.overrides).label()
    return RunSpec(
        method=method_name,
        hparams=tuple(sorted((k, _hashable(v)) for k, v in hparams.items())),
        dataset=dataset_name,
        dataset_options=tuple(sorted((k, _hashable(v)) for k, v in asdict(options).items())),
        seed=seed,
        steps=total,
        val_checks=preset.val_checks,
        eval_overlap=preset.eval_overlap,
        eval_batch_size=preset.eval_batch_size,
        train_modalities=tuple(sorted(data_modalities)),
        imbalance=validate_factor(imbalance),
        label=label,
        preset=preset.name,
    )


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def expand(grid: Grid) -> list[RunSpec]:
    specs = []
    for dataset in grid.datasets:
        modalities = dataset_modalities(dataset)
        for imbalance in grid.imbalances:
            for method in grid.methods:
                for seed in grid.seeds:
                    specs.append(
                        make_run_spec(
                            method, dataset, seed, grid.preset, grid.steps, modalities, imbalance
                        )
                    )
    return specs


def dataset_modalities(dataset: NamedConfig) -> tuple[str, ...]:
    cls = DATASETS.get(dataset.name)
    return cls.modalities_for(cls.make_options(dict(dataset.overrides)))


def run_local(
    specs: Sequence[RunSpec], data_root: Path, out: Path, device: torch.device
) -> list[RunOutcome]:
    """Run every spec in order in this process; finished runs are skipped in milliseconds."""
    outcomes = []
    for number, spec in enumerate(specs, 1):
        executor = RunExecutor(spec, data_root, out, device)
        outcome = executor.execute()
        state = "skipped (done)" if outcome.skipped else f"finished in {outcome.seconds:.0f} s"
        factor = f" · imbalance {spec.imbalance:g}" if spec.imbalance != 1 else ""
        console.log(
            f"[{number}/{len(specs)}] {spec.label} · {spec.dataset}{factor} · seed {spec.seed}"
            f" · run {spec.run_id}: {state}"
        )
        outcomes.append(outcome)
    return outcomes
