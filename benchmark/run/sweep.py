"""The sweep: what the user asked for, expanded into run specs by the one validator.

`expand` checks every name and value once (methods, datasets and their options, hyperparameter
overrides, the step budget, imbalance factors, `--missing`), before anything runs or is written,
and returns the runs together with the scenarios to report; `preflight` then opens the data
and checks existing checkpoints, still writing nothing under `--out`.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from benchmark.core.hparams import Params, resolve_hparams
from benchmark.core.options import NamedConfig
from benchmark.core.plugins import DATASETS, METHODS, importable_modules
from benchmark.core.presets import Preset
from benchmark.core.records import DATASET_FILES, HPARAMS, SELECTION_FULL_VAL, RunSpec
from benchmark.core.scenarios import scenarios_for_missing
from benchmark.core.spec import DatasetSpec
from benchmark.core.weights import NONE, check_weights, weights_file
from benchmark.corrupt.registry import CORRUPTIONS
from benchmark.corrupt.tile import TileCorruption
from benchmark.data.imbalance import validate_factor
from benchmark.data.pipeline import check_train_missing, open_dataset, tiles_without
from benchmark.run.selection import SELECTIONS
from benchmark.run.store import RunStore
from benchmark.system.environment import check_environment
from benchmark.system.errors import BenchmarkError
from benchmark.system.io import content_digest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepRequest:
    """The product the user asked for: methods x datasets x imbalance factors x seeds under one
    preset, and the scenarios to report (`--missing`)."""

    methods: tuple[NamedConfig, ...]
    datasets: tuple[NamedConfig, ...]
    seeds: tuple[int, ...]
    preset: Preset
    steps: int | None = None
    imbalances: tuple[float, ...] = (1.0,)
    missing: str = "all"
    budget: str = "steps"
    """`steps` (the preset's) or `flops` (each method's steps scaled to the baseline's FLOPs,
    after the data are open: `benchmark.run.budget`)."""
    train_missing: tuple[tuple[tuple[str, float], ...], ...] = ((),)
    """Training-data settings to sweep (`--train-missing`, repeatable): each a set of
    (modality, share of training tiles without it); () = complete training data."""
    selection: str = SELECTION_FULL_VAL
    """Which model-selection rule's records to read (`--selection`, `selection.SELECTIONS`):
    not part of a run (every run records every rule), but a finished run without its records
    is trained again."""
    corruptions: tuple[TileCorruption, ...] = ()
    """Test-time corruptions x severities each finished run is also evaluated under."""
    every_corruption: bool = False
    """`--corruptions all`: a corruption that touches none of the data is left out with a log
    line, where one named on its own is refused (`check_corruption_targets`)."""
    tuned: Mapping[str, Params] | None = None
    """`--hparams-from`: method -> its tuned values (a `tune` study's best trial), applied
    over the preset and under the method's explicit overrides; None = none applied."""
    tuned_from: str = ""
    """Where `tuned` was read (for the error that names a method it lacks)."""

    def tuned_for(self, method: str) -> Params:
        """The tuned values of `method` (none without `--hparams-from`); a method the study
        did not tune is refused, never run with its defaults instead."""
        if self.tuned is None:
            return Params()
        if method not in self.tuned:
            tuned = ", ".join(sorted(self.tuned)) or "none"
            raise BenchmarkError(
                f"--hparams-from {self.tuned_from}: no tuned configuration for method "
                f"{method!r} (tuned: {tuned}); tune it first or leave it out"
            )
        return self.tuned[method]


@dataclass(frozen=True)
class Sweep:
    """The validated sweep: its runs, in order, and what to report of them."""

    specs: tuple[RunSpec, ...]
    reported: dict[str, tuple[str, ...]]
    """Dataset name as rows show it (`RunSpec.dataset_label`) -> the scenarios to report
    (`--missing`), full scenario first."""
    modalities: dict[str, tuple[str, ...]]
    """Dataset name as rows show it -> its modalities."""
    modules: tuple[str, ...]
    """Modules that registered the sweep's methods, datasets and corruptions (for worker
    processes)."""
    selection: str = SELECTION_FULL_VAL
    """The selection rule whose records the leaderboard shows (`--selection`)."""

    @property
    def labels(self) -> list[str]:
        """Method labels in sweep order (the order of tables)."""
        return list(dict.fromkeys(spec.label for spec in self.specs))


def expand(request: SweepRequest) -> Sweep:
    """Validate the request and expand it into runs.

    A dedicated method (e.g. `unimodal`) gets one run per reported scenario, trained on exactly
    that scenario's modalities (`Method.training_subsets`).
    """
    methods = expand_method_names(request.methods)
    method_classes = [METHODS.get(m.name) for m in methods]
    tuned = {m.name: request.tuned_for(m.name) for m in methods}
    total = request.steps if request.steps is not None else request.preset.steps
    if total < 1:
        raise BenchmarkError(f"--steps must be a positive integer, got {total}")
    factors = [validate_factor(f) for f in request.imbalances]
    SELECTIONS.get(request.selection)  # an unknown rule: one line listing the rules
    specs, reported, modalities, dataset_classes = [], {}, {}, []
    dataset_digests: dict[tuple, Mapping[str, str]] = {}
    for given in request.datasets:
        name = DATASETS.canonical(given.name)
        dataset = NamedConfig(name, given.overrides)
        cls = DATASETS.get(name)
        dataset_classes.append(cls)
        check_run_seed(dataset, cls)
        options = cls.make_options(
            dataset_for_seed(dataset, min(request.seeds, default=0)).overrides
        )
        names = cls.modalities_for(options)
        scenarios = scenarios_for_missing(request.missing, names)
        shown = cls.report_name(options) or name  # the rows' name (a folder card's)
        reported[shown] = tuple(str(s) for s in scenarios)
        modalities[shown] = tuple(names)
        for missing in request.train_missing:
            check_train_missing(dict(missing), names)
        for factor, missing in itertools.product(factors, request.train_missing):
            for method, method_cls in zip(methods, method_classes, strict=True):
                for subset in method_cls.training_subsets(names, scenarios):
                    for seed in request.seeds:
                        spec = make_run_spec(
                            method,
                            dataset_for_seed(dataset, seed),
                            seed,
                            request.preset,
                            total,
                            subset,
                            factor,
                            tuned=tuned[method.name],
                            dataset_digests=dataset_digests,
                        )
                        specs.append(
                            replace(spec, train_missing=missing, selection=request.selection)
                        )
    models = [c.record.apply for c in request.corruptions]  # a corruption registered by hand
    modules = importable_modules([*method_classes, *dataset_classes, *models])
    return Sweep(tuple(specs), reported, modalities, modules, request.selection)


DATA_SEED = "seed"
RUN_SEED = "run"
"""`--dataset "synthetic[seed=run]"`: each run trains and is tested on the dataset generated
with the run's own seed, so seeds vary the data as well as the training. The resolved seed is
in the run spec's dataset options (and every record's), so run i's id and records say which
data it saw: run i is the very run that `seed=i` given by hand makes."""


def dataset_for_seed(dataset: NamedConfig, seed: int) -> NamedConfig:
    """`dataset` with `seed=run` resolved to the run's `seed` (any other dataset unchanged)."""
    if dataset.overrides.get(DATA_SEED) != RUN_SEED:
        return dataset
    return NamedConfig(dataset.name, Params({**dataset.overrides, DATA_SEED: seed}))


def check_run_seed(dataset: NamedConfig, cls: type) -> None:
    """Refuse `seed=run` for a dataset that is not generated from a seed."""
    if dataset.overrides.get(DATA_SEED) != RUN_SEED:
        return
    if DATA_SEED not in {f.name for f in dataclasses.fields(cls.Options)}:
        raise BenchmarkError(
            f"dataset {dataset.name!r}: seed=run draws each run's data from its seed, but "
            f"{dataset.name} has no seed option (only generated datasets, e.g. synthetic, do)"
        )


def make_run_spec(
    method: NamedConfig,
    dataset: NamedConfig,
    seed: int,
    preset: Preset,
    steps: int,
    train_modalities: Sequence[str],
    imbalance: float = 1.0,
    tuned: Mapping[str, Any] | None = None,
    dataset_digests: dict[tuple, Mapping[str, str]] | None = None,
) -> RunSpec:
    """Resolve a (canonical) method and dataset with their overrides into a frozen spec; unknown
    hyperparameters and options raise here, before anything runs. `tuned` (a study's best
    values) lies between the preset and the explicit overrides. `dataset_digests` keeps the
    digests of each dataset's files across the specs of one sweep (`dataset_file_digests`:
    the same files, stated and digested once, not once per method and seed)."""
    hparams = resolve_hparams(
        METHODS.get(method.name).hparam_space(),
        preset.hparams,
        tuned or {},
        method.overrides,
        owner=f"method {method.name!r}",
    )
    cls = DATASETS.get(dataset.name)
    options = cls.make_options(dataset.overrides)
    shown = cls.report_name(options) or dataset.name
    return RunSpec(
        method=method.name,
        hparams=hparams,
        dataset=dataset.name,
        dataset_name=shown if shown != dataset.name else "",
        dataset_options=options.as_params(),
        seed=seed,
        steps=steps,
        val_checks=preset.val_checks,
        eval_overlap=preset.eval_overlap,
        eval_batch_size=preset.eval_batch_size,
        # a window the size of the crop is the crop rule: the same runs, the same ids
        eval_window=0 if preset.eval_window == hparams["crop_size"] else preset.eval_window,
        eval_tiles=preset.eval_tiles,
        file_digests=file_digests(hparams, cls, options, dataset_digests),
        train_modalities=tuple(sorted(train_modalities)),
        imbalance=imbalance,
        label=method.label(),
        preset=preset.name,
    )


def file_digests(
    hparams: Params,
    dataset_cls: type,
    options: Any,
    dataset_digests: dict[tuple, Mapping[str, str]] | None = None,
) -> tuple[tuple[str, str], ...]:
    """The content digest of every file a run reads (`RunSpec.file_digests`): the `weights`
    file and the dataset's (`dataset_file_digests`, taken from `dataset_digests` when an
    earlier spec of the sweep computed them). A missing weights file is the one-line error of
    `weights_file`; a run that reads no such file gets () and keeps the id it had before files
    were hashed."""
    weights = weights_file(hparams.get("weights", NONE))
    key = (dataset_cls, options.as_params())
    digests = dataset_digests.get(key) if dataset_digests is not None else None
    if digests is None:
        digests = dataset_file_digests(dataset_cls, options)
        if dataset_digests is not None:
            dataset_digests[key] = digests
    digests = dict(digests)
    if weights is not None:
        digests[f"{HPARAMS}weights"] = content_digest(weights)
    return tuple(sorted(digests.items()))


def dataset_file_digests(dataset_cls: type, options: Any) -> dict[str, str]:
    """The digests of the files a dataset reads under `options`: those its options name
    (`files_read`: a `folder` card) and, for a dataset that opts in (`data_digest`: a `folder`
    card's tiles), its data files as one `dataset_files` entry. A missing file is the dataset's
    one-line `DatasetNotFoundError`."""
    files = dataset_cls.files_read(options)
    digests = {f"dataset_options.{k}": content_digest(path) for k, path in files.items()}
    data = dataset_cls.data_digest(options)
    if data is not None:
        digests[DATASET_FILES] = data
    return digests


def expand_method_names(entries: Sequence[NamedConfig]) -> list[NamedConfig]:
    """Check every name once and return the methods under their registered names (an alias is
    the method it names; `all` stands for every registered method, in registry order)."""
    out: list[NamedConfig] = []
    for entry in entries:
        if entry.name == "all":
            if entry.overrides:
                raise BenchmarkError("--methods all takes no overrides; name the methods instead")
            out += [NamedConfig(name) for name in METHODS.names()]
        else:
            out.append(NamedConfig(METHODS.canonical(entry.name), entry.overrides))
    return list(dict.fromkeys(out))


def check_backbones(spec: RunSpec) -> None:
    """Every `*backbone` hyperparameter names a timm model (an empty one means "the same as
    `backbone`"), so a typo is one line now instead of a failed run later."""
    import timm

    for name, value in spec.hparams.items():
        named = name.endswith("backbone") and isinstance(value, str) and value
        if named and not timm.is_model(value):
            raise BenchmarkError(
                f"{spec.label}: {name}={value!r} is not a timm model (e.g. resnet10t, "
                "resnet18, resnet50; timm.list_models() lists them)"
            )


def preflight(
    specs: Sequence[RunSpec],
    data_root: Path,
    store: RunStore,
    corruptions: Sequence[TileCorruption] = (),
    every_corruption: bool = False,
) -> None:
    """Surface bad input before anything is written: every dataset split opens (and decodes
    or generates its cache under the data root), encoder weights can be had, every
    `--train-missing` share removes some training tiles but not all, every named corruption
    touches a modality of some dataset, and every existing checkpoint is this run's."""
    opened: dict[tuple[str, Params], DatasetSpec] = {}
    check_environment()  # the CLI checked it already; the Python API comes in here
    check_train_missing_counts(specs, data_root)
    for spec in specs:
        check_backbones(spec)
    for backbone, weights in dict.fromkeys(
        (s.hparams["backbone"], s.hparams["weights"]) for s in specs
    ):
        check_weights(backbone, weights)
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
            opened[key] = dataset.spec
        store.validate_checkpoint(spec)
    check_corruption_targets(corruptions, opened.values(), every_corruption)


def check_train_missing_counts(specs: Sequence[RunSpec], data_root: Path) -> None:
    """`--train-missing` against each dataset's training tile count, before any data is
    restated or any run starts (`pipeline.check_train_missing`: every share removes at least
    one tile and leaves at least one).

    Two settings of one command that remove the same number of tiles of every modality draw
    the very same tiles (one seeded order per modality), so they are the same training data
    under two run ids: refused as asking for one run twice. Across commands the share stays
    what the user typed (it is in the run id), so `dsm=0.3` and `dsm=0.31` run apart there.
    """
    settings: dict[tuple[str, Params], list[tuple[tuple[str, float], ...]]] = {}
    for spec in specs:
        if spec.train_missing:
            key = (spec.dataset, spec.dataset_options)
            settings.setdefault(key, [])
            if spec.train_missing not in settings[key]:
                settings[key].append(spec.train_missing)
    for (name, options), missing in settings.items():
        cls = DATASETS.get(name)
        made = cls.make_options(options)
        tiles, names = len(cls(data_root, "train", made)), cls.modalities_for(made)
        drawn: dict[tuple[tuple[str, int], ...], str] = {}
        for setting in missing:
            check_train_missing(dict(setting), names, tiles, name)
            text = ",".join(f"{m}={rate:g}" for m, rate in setting)
            counts = tuple((m, tiles_without(rate, tiles)) for m, rate in setting)
            if counts in drawn:
                removed = ", ".join(f"{m} from {n}" for m, n in counts)
                raise BenchmarkError(
                    f"--train-missing {drawn[counts]} and {text} remove the same training tiles "
                    f"of {name} ({removed} of {tiles}): one training set under two run ids; "
                    "give one of them"
                )
            drawn[counts] = text


def check_corruption_targets(
    corruptions: Sequence[TileCorruption],
    datasets: Iterable[DatasetSpec],
    every_corruption: bool = False,
) -> None:
    """A corruption named on the command line that touches no modality of any dataset of the
    command would evaluate nothing (`speckle` without SAR): refused in one line. One that
    misses some datasets only is evaluated where it applies, and a warning names the others.
    Under `--corruptions all` (`every_corruption`) nothing was named: one that touches none of
    the data is left out with a log line."""
    specs = list(datasets)
    for corruption in {c.name: c for c in corruptions}.values():
        missed = [d for d in specs if not corruption.touches(d)]
        if not missed:
            continue
        kinds = ", ".join(corruption.record.kinds)
        if every_corruption:
            log.info(
                "--corruptions all: %s acts on %s modalities and is left out for %s",
                corruption.name,
                kinds,
                ", ".join(d.name for d in missed),
            )
            continue
        if len(missed) < len(specs):
            log.warning(
                "--corruptions %s: touches no modality of %s (it acts on %s modalities); "
                "evaluated on the other datasets only",
                corruption.name,
                ", ".join(d.name for d in missed),
                kinds,
            )
            continue
        have = "; ".join(
            f"{d.name} has {', '.join(f'{m.name} ({m.kind})' for m in d.modalities)}" for d in specs
        )
        others = [
            n for n in CORRUPTIONS.names() if any(TileCorruption(n, 1).touches(d) for d in specs)
        ]
        raise BenchmarkError(
            f"--corruptions {corruption.name}: acts on {kinds} modalities and touches none of "
            f"this command's data ({have}); nothing would be evaluated (corruptions that apply: "
            f"{', '.join(others) or 'none'})"
        )
