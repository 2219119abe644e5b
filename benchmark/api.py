"""The stable surface for people who extend MissBench.

Import from here, not from the harness's internals (whose module layout may change between
versions).

A method is a `Method` subclass decorated with `register_method("name")`; a dataset is a
`MultiModalDataset` subclass decorated with `register_dataset("name")`. MissBench's own methods
and datasets are registered exactly this way. To add them from your own package, declare an
entry point in the group `missbench.methods` or `missbench.datasets` that names the module
holding the decorated classes::

    [project.entry-points."missbench.methods"]
    my_methods = "my_package.methods"

Every process that runs a run (the CLI, `--workers` processes, Ray tasks) imports those modules
before it looks a name up. A test-time corruption is a `Corruption` record passed to
`register_corruption`, in a module named by an entry point of the group
`missbench.corruptions` (docs/corruptions.md, "Adding a corruption"). A method's profiler of
its own parts is a module registered with `register_profiler` that measures and writes through
`profiling` (STARS's `methods/components/psa/profiler.py` is one).

To script the suite: `run` (a sweep, returning its leaderboard), `tune` (the same
hyperparameter search for every method, returning its cost), `report` (tables and figures
of a results directory), `freeze` (a results directory's records and report, without weights,
into a folder to commit) and `load_model` (a finished run as a model for your own rasters);
`docs/api_example.py` is a worked example. They enter the suite as the command line does
(`benchmark.commands.entry`): the same request builders check every argument (types too), the
same write guard confines writes to `out`, the data root and the caches, and bad input raises
the same one-line `BenchmarkError` (naming the flag an argument stands for) before anything is
written.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from benchmark.core.dataset import (
    DatasetOptions,
    MultiModalDataset,
    RawSample,
    Window,
    current_data_root,
)
from benchmark.core.hparams import HParam, Params, Search
from benchmark.core.method import (
    AVAILABLE_PREFIX,
    Batch,
    Method,
    Paper,
    TrainContext,
    availability,
    availability_matrix,
    complete_samples,
    encode_present,
    evaluation_mode,
    labels_of,
    mean_fill_invalid,
    modality_inputs,
    place_rows,
    predict_per_pixel_scenario,
    select_rows,
    zero_fill_missing,
)
from benchmark.core.plugins import register_dataset, register_method
from benchmark.core.scenarios import Scenario, all_scenarios
from benchmark.core.sharing import encode_once, shared_encodings, sharing_active, zeros_once
from benchmark.core.spec import MASK, DatasetSpec, Modality
from benchmark.corrupt.blocks import Tile as CorruptionTile
from benchmark.corrupt.corruption import Corruption
from benchmark.corrupt.registry import register_corruption
from benchmark.profile.profilers import Profiler, register_profiler
from benchmark.report.samples import plot_sample
from benchmark.system.errors import BenchmarkError, DatasetNotFoundError

# isort: split
# What MissBench's own datasets use (`datasets/` reaches the harness only through this module,
# as a plugin's dataset must): the write guard and the user cache folder for decoded tiles,
# the channel statistics (the harness's, which `--train-missing` runs recompute) and atomic
# JSON to cache them, file digests for a run's id, a progress bar for generated data, error
# text for logs.
from benchmark.data.statistics import channel_stats
from benchmark.system.confine import write_target
from benchmark.system.environment import user_cache_dir
from benchmark.system.errors import describe
from benchmark.system.io import atomic_output, atomic_write_json, content_digest
from benchmark.system.progress import track

# isort: split
# What MissBench's own methods use (`methods/` reaches the harness only through this module, as
# a plugin's method must): timm encoders built as the `weights` hyperparameter says (NO_WEIGHTS:
# its random-initialisation value), the harness's NaN-skipping class mean for validation IoU, an
# environment variable declared where it is read (with the user cache folder above: the PSA
# kernel's), and `profiling` (below) for a method's profiler of its own parts.
from benchmark.core.weights import FEATURE_LEVELS, create_backbone
from benchmark.core.weights import NONE as NO_WEIGHTS
from benchmark.run.metrics import nan_mean
from benchmark.system.environment import register_env
from benchmark.system.packages import check_own_packages

# Where another `datasets` (Hugging Face's) or `methods` comes first on the import path, say so
# now, in one line (a `BenchmarkError` that is an `ImportError`), not at the first lookup.
check_own_packages()

if TYPE_CHECKING:
    import pandas as pd

    from benchmark.deploy.model import DeployedModel
    from benchmark.profile import kit as profiling


def run(
    methods: str | Sequence[str] = "baseline",
    dataset: str | Sequence[str] = "synthetic",
    missing: str = "all",
    seeds: str | Sequence[int] = (0,),
    out: str | Path = "results",
    preset: str = "quick",
    steps: int | None = None,
    budget: str = "steps",
    imbalance: str | Sequence[float] = (1.0,),
    train_missing: str | Sequence[str] = "none",
    corruptions: str | Sequence[str] = "none",
    severities: str | Sequence[int] | None = None,
    invalid_fill: str | Sequence[str] | None = None,
    selection: str = "full_val",
    device: str = "auto",
    data_root: str | Path | None = None,
    launcher: str = "local",
    workers: int = 1,
    threads: int | None = None,
    hparams_from: str | Path | None = None,
    address: str | None = None,
    retry_failed: bool = False,
    log: str = "none",
) -> pd.DataFrame:
    """Run a sweep as `run_benchmark.py run` does and return its leaderboard.

    The leaderboard is `out/leaderboard.csv`: the sweep's runs and every earlier run of `out`
    on the same data and budget (dataset and options, preset, steps). With
    `launcher="dry_run"`, nothing runs and nothing is written: the plan comes back instead, one
    row per run (`run_id`, `method`, `dataset`, `imbalance`, `train_missing`, `seed`, `steps`)
    with its `state` in `out` (done, failed, busy, incomplete or pending).

    Arguments take the command line's forms (`methods="stars,baseline[lr=3e-4]"`) or lists
    (`methods=["stars", "baseline"]`, `seeds=[0, 1, 2]`, `train_missing=["none", "dsm=0.3"]`).
    `hparams_from` (a `tune` folder or its best.json) gives each method its tuned values.
    `severities` (default 1-5) and `invalid_fill` (default own) apply to `corruptions` only,
    and are refused where they would change nothing, as on the command line.
    `address`, `retry_failed` and `log` are `--address`, `--retry-failed` and `--log`.
    Bad input raises `BenchmarkError` before anything runs; runs that fail are rows with
    `status` failed, as on the command line.
    """
    import dataclasses

    import pandas as pd

    from benchmark.commands import launch
    from benchmark.commands.entry import command_scope, output_roots
    from benchmark.commands.requests import (
        LOGS,
        choice,
        path_value,
        resolve_execution,
        sweep_request,
    )

    out, data_root = path_value("--out", out, required=True), path_value("--data-root", data_root)
    with command_scope(output_roots(out, data_root), data_root):
        request = sweep_request(
            methods=methods,
            datasets=dataset,
            seeds=seeds,
            preset=preset,
            steps=steps,
            imbalance=imbalance,
            missing=missing,
            budget=budget,
            train_missing=train_missing,
            selection=selection,
            corruptions=corruptions,
            severities=severities,
            invalid_fill=invalid_fill,
            hparams_from=hparams_from,
        )
        execution = resolve_execution(
            data_root,
            device,
            out=out,
            launcher=launcher,
            workers=workers,
            threads=threads,
            retry_failed=retry_failed,
            address=address,
            tensorboard=choice("--log", log, LOGS) == "tensorboard",
        )
        result = launch.run_sweep(request, execution)
    if result.leaderboard is None:  # a dry run: its plan
        fields = [f.name for f in dataclasses.fields(launch.PlannedRun)]
        return pd.DataFrame([dataclasses.astuple(r) for r in result.runs], columns=fields)
    return pd.read_csv(result.leaderboard)


def tune(
    methods: str | Sequence[str] = "all",
    dataset: str = "synthetic",
    preset: str = "quick",
    trials: int = 8,
    seed: int = 0,
    rungs: str | Sequence[int] | None = None,
    keep: float | None = None,
    selection: str = "full_val",
    out: str | Path = "results",
    device: str = "auto",
    data_root: str | Path | None = None,
    launcher: str = "local",
    workers: int = 1,
    threads: int | None = None,
    address: str | None = None,
    retry_failed: bool = False,
) -> pd.DataFrame:
    """Search every method's hyperparameters as `run_benchmark.py tune` does.

    The same `trials` random configurations per method, the same successive-halving `rungs`
    (step budgets; None = the preset's steps), ranked on validation only; rerunning resumes.
    `keep` (default 0.5) is the share of a rung's trials promoted, so it needs several rungs.
    Returns the search cost per method (`<out>/tune/search_cost.csv`); the best configurations
    are in `<out>/tune/best.json`, for `run(..., hparams_from=...)`. Bad input raises
    `BenchmarkError` before anything is written, as on the command line.
    """
    import pandas as pd

    from benchmark.commands.entry import command_scope, output_roots
    from benchmark.commands.requests import path_value, resolve_execution, tune_request
    from benchmark.commands.tune import tune as run_tune
    from benchmark.commands.tuning import COST_CSV, TUNE_DIR

    out, data_root = path_value("--out", out, required=True), path_value("--data-root", data_root)
    with command_scope(output_roots(out, data_root), data_root):
        request = tune_request(methods, dataset, preset, trials, seed, rungs, keep, selection)
        execution = resolve_execution(
            data_root,
            device,
            out=out,
            launcher=launcher,
            workers=workers,
            threads=threads,
            retry_failed=retry_failed,
            address=address,
        )
        run_tune(request, execution)
    return pd.read_csv(execution.out / TUNE_DIR / COST_CSV)


def report(
    results_dir: str | Path,
    reference: str | None = None,
    data_root: str | Path | None = None,
    qualitative: bool = True,
    selection: str | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    leaderboard_steps: int | None = None,
    flat_delta: float | None = None,
    split: str = "test",
    html: bool = False,
) -> list[Path]:
    """Write a results directory's report, as `run_benchmark.py report` does.

    `reference` (default baseline) is the method of the 'vs reference' columns; `selection`
    (default full_val) names the model-selection rule whose records the report reads (every
    rule's records are in every run); a frozen folder's own are its defaults. `out`: where the
    report goes (default `<results_dir>/report`); a frozen folder's committed report is
    replaced only with `overwrite`. `leaderboard_steps`, `flat_delta`, `split` and `html` are
    the command's `--leaderboard-steps`, `--flat-delta`, `--split` and `--html`. Returns the
    files written, the index `report.md` first. Bad input, or a report folder that leads out
    of `out` (a symlink), raises `BenchmarkError` before anything is written.
    """
    from benchmark.commands.entry import command_scope, report_command, report_roots
    from benchmark.commands.requests import path_value

    root = path_value("results_dir", results_dir, required=True)
    out, data_root = path_value("--out", out), path_value("--data-root", data_root)
    with command_scope(report_roots(root, out, None, data_root), data_root):
        result = report_command(
            root,
            reference=reference,
            selection=selection,
            leaderboard_steps=leaderboard_steps,
            flat_delta=flat_delta,
            data_root=data_root,
            qualitative=qualitative,
            overwrite=overwrite,
            out=out,
            split=split,
            html=html,
        )
    return [f.path for f in result.files]


def freeze(
    results_dir: str | Path,
    dest: str | Path,
    reference: str | None = None,
    data_root: str | Path | None = None,
    selection: str | None = None,
    overwrite: bool = False,
    qualitative: bool = True,
) -> list[Path]:
    """Freeze a results directory into `dest`, as `run_benchmark.py report --freeze` does.

    Its runs' records (gzipped), specs and training logs, no weights, and the report made from
    them in `dest/report` (`reference` default baseline, `selection` default full_val).
    Returns the report's files, the index first. Writes go to `dest` only.
    """
    from benchmark.commands.entry import command_scope, report_command, report_roots
    from benchmark.commands.requests import path_value

    root = path_value("results_dir", results_dir, required=True)
    dest, data_root = path_value("dest", dest, required=True), path_value("--data-root", data_root)
    with command_scope(report_roots(root, None, dest, data_root), data_root):
        result = report_command(
            root,
            reference=reference,
            selection=selection,
            data_root=data_root,
            qualitative=qualitative,
            overwrite=overwrite,
            freeze=dest,
        )
    return [f.path for f in result.files]


def load_model(
    run_dir: str | Path,
    device: str = "cpu",
    selection: str = "full_val",
    *,
    method: str | None = None,
    seed: int | None = None,
    dataset: str | None = None,
) -> DeployedModel:
    """Load a finished run's model from its card and weights alone (no dataset needed).

    `run_dir` is the run's folder, a unique prefix of its id, or a results directory with
    `method` (and `seed`/`dataset` where several runs match), as `predict` takes them.
    `load_model(d).predict({"optical": array})` labels raw rasters of any non-empty subset of
    its modalities; `selection` picks the checkpoint a named selection rule chose.
    """
    from benchmark.deploy.model import load_model as load
    from benchmark.run.pick import RunChoice, pick_run

    return load(pick_run(run_dir, RunChoice(method, seed, dataset)), device, selection)


__all__ = [
    "AVAILABLE_PREFIX",
    "MASK",
    "Batch",
    "BenchmarkError",
    "Corruption",
    "CorruptionTile",
    "DatasetNotFoundError",
    "DatasetOptions",
    "DatasetSpec",
    "HParam",
    "Method",
    "Modality",
    "MultiModalDataset",
    "Paper",
    "Profiler",
    "Params",
    "RawSample",
    "Scenario",
    "Search",
    "TrainContext",
    "Window",
    "all_scenarios",
    "availability",
    "availability_matrix",
    "complete_samples",
    "encode_once",
    "encode_present",
    "evaluation_mode",
    "freeze",
    "load_model",
    "labels_of",
    "mean_fill_invalid",
    "modality_inputs",
    "place_rows",
    "plot_sample",
    "predict_per_pixel_scenario",
    "register_corruption",
    "register_dataset",
    "register_method",
    "register_profiler",
    "report",
    "run",
    "tune",
    "select_rows",
    "shared_encodings",
    "sharing_active",
    "zero_fill_missing",
    "zeros_once",
    # what MissBench's own datasets use
    "atomic_output",
    "atomic_write_json",
    "channel_stats",
    "content_digest",
    "current_data_root",
    "describe",
    "track",
    "user_cache_dir",
    "write_target",
    # what MissBench's own methods use
    "FEATURE_LEVELS",
    "NO_WEIGHTS",
    "create_backbone",
    "nan_mean",
    "profiling",
    "register_env",
]


def __getattr__(name: str) -> ModuleType:
    """Import `profiling` (`benchmark/profile/kit.py`) on first use.

    It pulls in pandas, the plots and the training step, which defining a method or a dataset
    does not need.
    """
    if name == "profiling":
        return importlib.import_module("benchmark.profile.kit")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
