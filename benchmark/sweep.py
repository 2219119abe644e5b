"""Expand the command line's grid into run specs; validate them before anything runs."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmark.errors import BenchmarkError
from benchmark.hparams import resolve_hparams
from benchmark.imbalance import validate_factor
from benchmark.options import NamedConfig
from benchmark.presets import Preset
from benchmark.records import RunSpec
from benchmark.scenarios import scenarios_for_missing
from benchmark.train import RunOutcome, open_dataset, validate_checkpoint
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


def expand(grid: Grid, missing: str = "all") -> list[RunSpec]:
    """Runs of the grid. A dedicated method (e.g. `unimodal`) gets one run per reported
    scenario, trained on exactly that scenario's modalities."""
    specs = []
    for dataset in grid.datasets:
        modalities = dataset_modalities(dataset)
        reported = scenarios_for_missing(missing, modalities)
        for imbalance in grid.imbalances:
            for method in grid.methods:
                dedicated = METHODS.get(method.name).DEDICATED
                subsets = [sorted(s.present) for s in reported] if dedicated else [modalities]
                for subset in subsets:
                    for seed in grid.seeds:
                        specs.append(
                            make_run_spec(
                                method, dataset, seed, grid.preset, grid.steps, subset, imbalance
                            )
                        )
    return specs


def expand_method_names(text_entries: Sequence[NamedConfig]) -> list[NamedConfig]:
    """`all` stands for every registered method, in registry order."""
    out: list[NamedConfig] = []
    for entry in text_entries:
        if entry.name == "all":
            if entry.overrides:
                raise BenchmarkError("--methods all takes no overrides; name the methods instead")
            out += [NamedConfig(name) for name in METHODS.names()]
        else:
            out.append(entry)
    return list(dict.fromkeys(out))


def dataset_modalities(dataset: NamedConfig) -> tuple[str, ...]:
    cls = DATASETS.get(dataset.name)
    return cls.modalities_for(cls.make_options(dict(dataset.overrides)))


def preflight(specs: Sequence[RunSpec], data_root: Path, out: Path) -> None:
    """Surface bad input before anything is written: every dataset split opens (and decodes
    or generates its cache under the data root) and every existing checkpoint is this run's."""
    opened = set()
    for spec in specs:
        key = (spec.dataset, spec.dataset_options)
        if key not in opened:
            for split in ("train", "val", "test"):
                dataset = open_dataset(spec, split, data_root)
                if len(dataset) == 0:
                    raise BenchmarkError(
                        f"dataset {spec.dataset!r}: the {split} split is empty under {data_root}"
                    )
                dataset.spec  # noqa: B018  (train statistics: computed and cached once)
                for index in range(len(dataset)):  # decode-once caches, validated up front
                    dataset.load(index, (slice(0, 1), slice(0, 1)))
            opened.add(key)
        validate_checkpoint(out, spec)


def unfinished_rows(
    outcome: RunOutcome, scenarios: Sequence[str], modalities: Sequence[str]
) -> list[dict]:
    """Leaderboard rows for a run without results: shown as failed/missing, never dropped."""
    spec = outcome.spec
    status = {"failed": "failed", "busy": "running"}.get(outcome.status, "missing")
    if METHODS.get(spec.method).DEDICATED:
        own = "+".join(sorted(spec.train_modalities))
        scenarios = [s for s in scenarios if s == own]
    rows = []
    for scenario in scenarios:
        present = set(scenario.split("+"))
        gone = sorted(set(modalities) - present)
        rows.append(
            {
                "dataset": spec.dataset,
                "method": spec.label,
                "imbalance": spec.imbalance,
                "scenario": scenario,
                "missing": "+".join(gone) if gone else "none",
                "n_present": len(present),
                "seed": spec.seed,
                "split": "test",
                "status": status,
                "error": outcome.error,
                "steps": spec.steps,
                "preset": spec.preset,
                "method_name": spec.method,
                "run_id": spec.run_id,
            }
        )
    return rows
