"""The command line: argparse sub-commands, each a thin call into `run`, `report` or `profile`.

    run_benchmark.py [run] ...     train and evaluate a sweep, write the leaderboard (default)
    run_benchmark.py tune ...      the same hyperparameter search for every method
    run_benchmark.py list [METHOD] methods, datasets and presets (or a method's hyperparameters)
    run_benchmark.py report DIR    tables and figures from a results directory's records
    run_benchmark.py profile NAME  where training time goes (see `list` for the profilers)
    run_benchmark.py predict RUN   apply a finished run to your own GeoTIFF scene
    run_benchmark.py export RUN    a finished run as ONNX models (QGIS Deepness, onnxruntime)
    run_benchmark.py show-data     plot test scenes of a dataset

Flags shared by several sub-commands are declared once (parent parsers); `--debug` works with
every one. Bad input is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from rich.markup import escape

from benchmark.commands.entry import command_scope, report_command, report_roots
from benchmark.commands.requests import (
    default_data_root,
    positive,
    resolve_device,
    resolve_execution,
    sweep_request,
)
from benchmark.core.options import parse_named, parse_named_list
from benchmark.core.presets import PRESETS
from benchmark.core.records import SELECTION_FULL_VAL
from benchmark.run.execution import Execution
from benchmark.run.selection import SELECTION_DESCRIPTION
from benchmark.system.environment import run_roots
from benchmark.system.errors import BenchmarkError
from benchmark.system.io import check_output_folder
from benchmark.system.packages import check_own_packages
from benchmark.system.progress import console, print_wide, results_console, setup_logging

log = logging.getLogger("missbench")

EXAMPLES = """\
examples:
  python run_benchmark.py --methods baseline --missing all
  python run_benchmark.py --methods "baseline,baseline[lr=3e-4]" --seeds 0,1,2
  python run_benchmark.py --dataset synthetic_3m --missing dsm,sar --steps 200
  python run_benchmark.py --dataset "synthetic[train_tiles=32,seed=1]" --device cuda
  python run_benchmark.py list
  python run_benchmark.py list stars
  python run_benchmark.py report results
  python run_benchmark.py tune --methods all --trials 8 --rungs 100,200,400
  python run_benchmark.py --methods all --hparams-from results/tune
  python run_benchmark.py profile psa
  python run_benchmark.py predict results/runs/<run_id> --input optical=a.tif,dsm=b.tif --out l.tif
  python run_benchmark.py export results/runs/<run_id> --format onnx --out exports/stars
  python run_benchmark.py show-data --dataset synthetic_3m --out docs/synthetic_sample.png
"""


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad flag as one line (plus exit status 2), not a usage dump."""

    def error(self, message: str):  # noqa: ANN201  (argparse's signature; never returns)
        """Print `message` as one line and exit with status 2."""
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def parent_parsers() -> dict[str, argparse.ArgumentParser]:
    """Flags shared by several sub-commands, each declared once."""

    def parent() -> argparse.ArgumentParser:
        return argparse.ArgumentParser(add_help=False)

    debug, data, device, preset, methods, dataset, threads = (parent() for _ in range(7))
    debug.add_argument(
        "--debug", action="store_true", help="show full tracebacks instead of one-line errors"
    )
    data.add_argument(
        "--data-root",
        type=Path,
        default=None,
        help="where datasets live or are generated (default: $MISSBENCH_DATA or ./data)",
    )
    device.add_argument(
        "--device",
        default="auto",
        choices=("auto", "cpu", "cuda"),
        help="auto = cuda when available, else cpu (default: auto)",
    )
    preset.add_argument(
        "--preset",
        default="quick",
        help=f"training budget: {', '.join(PRESETS.names())} (default: quick)",
    )
    methods.add_argument(
        "--methods",
        help="comma-separated methods, each optionally with hyperparameter overrides in "
        "brackets, e.g. 'baseline,baseline[lr=3e-4]'; 'all' = every registered method (see "
        "`list`)",
    )
    dataset.add_argument(
        "--dataset",
        help="dataset(s), comma-separated, options in brackets, e.g. 'synthetic_3m' or "
        "'synthetic[train_tiles=32]'",
    )
    threads.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (per run; default: cores / workers)",
    )
    return {
        "debug": debug,
        "data": data,
        "device": device,
        "preset": preset,
        "methods": methods,
        "dataset": dataset,
        "threads": threads,
    }


Commands = "argparse._SubParsersAction[OneLineParser]"


def build_parser() -> OneLineParser:
    """The top-level parser with every sub-command."""
    parser = OneLineParser(
        prog="run_benchmark.py",
        description="MissBench: missing-modality segmentation benchmark. Without a sub-command, "
        "`run` is meant.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[parent_parsers()["debug"]],
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    for add_command in (
        add_run,
        add_tune,
        add_list,
        add_report,
        add_profile,
        add_predict,
        add_export,
        add_show_data,
    ):
        add_command(commands)
    return parser


def subcommand(
    commands: Commands, name: str, parents: Sequence[str], help_text: str, **kwargs: str
) -> argparse.ArgumentParser:
    """A sub-command parser with `--debug` and the named shared flags."""
    # Fresh parents for every sub-command: argparse shares a parent's actions, so one
    # sub-command's set_defaults would otherwise change another's defaults.
    flags = parent_parsers()
    return commands.add_parser(
        name,
        help=help_text,
        description=kwargs.pop("description", help_text),
        parents=[flags["debug"], *(flags[p] for p in parents)],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        **kwargs,
    )


def add_run(commands: Commands) -> None:
    """`run` (the default sub-command)."""
    run = subcommand(
        commands,
        "run",
        ["methods", "dataset", "preset", "device", "data", "threads"],
        "train and evaluate methods on every missing-modality scenario, write a leaderboard",
        description="Train and evaluate missing-modality segmentation methods on every "
        "missing-modality scenario and write a leaderboard. Other sub-commands: `list` "
        "(methods, datasets, presets, profilers; `list METHOD`: its hyperparameters), "
        "`show-data` (plot a dataset's modalities and labels), `report` (tables and figures "
        "from a results directory), `profile` (where training time goes), `tune` (the same "
        "hyperparameter search for every method), `predict` (apply a finished run to your own "
        "GeoTIFF scene), `export` (a finished run as ONNX models for QGIS or onnxruntime). "
        "`run` may be left out; `run_benchmark.py --help` lists them all.",
        epilog=EXAMPLES,
    )
    run.set_defaults(handler=command_run, methods="baseline", dataset="synthetic")
    add_run_flags(run)


def add_tune(commands: Commands) -> None:
    """`tune`."""
    tune = subcommand(
        commands,
        "tune",
        ["methods", "dataset", "preset", "device", "data", "threads"],
        "search every method's hyperparameters the same way (random search, validation only)",
        description="DomainBed's protocol: the same number of random trials for every method "
        "over the distributions it declares beside its hyperparameters, the same successive-"
        "halving schedule, trials ranked by validation mIoU only. One Optuna study per method "
        "in <out>/tune/<method>.db; each trial at each rung is ordinary runs in <out>/tune/runs, "
        "so rerunning the command resumes. Writes <out>/tune/search_cost.csv and .md (trials, "
        "runs, steps, CPU/GPU seconds per method), trials.csv and best.json (for `run "
        "--hparams-from`).",
        epilog="example:\n  python run_benchmark.py tune --methods all --trials 8 "
        "--rungs 100,200,400 --keep 0.5 --out results",
    )
    tune.set_defaults(handler=command_tune, methods="all", dataset="synthetic")
    tune.add_argument(
        "--trials",
        type=int,
        default=8,
        help="random configurations per method, the same for every method (default: 8)",
    )
    tune.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seeds the sampler (the same seed proposes the same configurations) and every "
        "trial's training (default: 0)",
    )
    tune.add_argument(
        "--rungs",
        default=None,
        help="successive halving: increasing step budgets, e.g. 100,200,400; every trial trains "
        "the first, the best --keep share of them the next, and so on (default: the preset's "
        "steps alone, no halving)",
    )
    tune.add_argument(
        "--keep",
        type=float,
        default=None,
        help="share of a rung's trials that go on to the next (at least one); only with "
        "several --rungs (default: 0.5)",
    )
    tune.add_argument(
        "--selection",
        default=SELECTION_FULL_VAL,
        choices=tuple(SELECTION_DESCRIPTION),
        help="the validation score trials are ranked by: that of the checkpoint the rule "
        "chooses (full_val: with every modality; mean_val: the mean over scenarios) "
        "(default: full_val)",
    )
    tune.add_argument(
        "--out",
        type=Path,
        default=Path("results"),
        help="results directory: studies, tables and the trials' runs go into <out>/tune "
        "(default: results)",
    )
    tune.add_argument(
        "--launcher",
        default="local",
        choices=("local", "ray"),
        help="how each rung's runs are executed (see `run --help`) (default: local)",
    )
    tune.add_argument(
        "--workers", type=int, default=1, help="local launcher: runs at once (default: 1)"
    )
    tune.add_argument("--address", default=None, help="ray launcher: cluster address")
    tune.add_argument(
        "--retry-failed", action="store_true", help="rerun trial runs recorded as failed"
    )


def add_list(commands: Commands) -> None:
    """`list`."""
    listing = subcommand(
        commands,
        "list",
        [],
        "list methods, datasets, presets and profilers, or one method's hyperparameters",
        epilog="examples:\n  python run_benchmark.py list\n  python run_benchmark.py list stars",
    )
    listing.set_defaults(handler=command_list)
    listing.add_argument(
        "method",
        nargs="?",
        default=None,
        help="a method: print its hyperparameters (default, valid values, what `tune` searches, "
        "what each sets), to override as METHOD[name=value]",
    )
    listing.add_argument(
        "--markdown",
        action="store_true",
        help="print Markdown tables (docs/registry.md's tables are made this way)",
    )
    listing.add_argument(
        "--update-readme",
        type=Path,
        default=None,
        metavar="REGISTRY_MD",
        help="rewrite the generated tables between the markers in REGISTRY_MD (docs/registry.md)",
    )
    listing.add_argument(
        "--update-docs",
        type=Path,
        default=None,
        metavar="CORRUPTIONS_MD",
        help="rewrite the corruption table and sections between the markers in "
        "docs/corruptions.md (from the corruption registry)",
    )


def add_report(commands: Commands) -> None:
    """`report DIR`."""
    report = subcommand(
        commands,
        "report",
        ["data"],
        "regenerate every table, CSV and figure of a results directory from its records",
        description="Regenerate every table, CSV and figure of a results directory from its "
        "records alone, into <results-dir>/report/ (index: report.md).",
    )
    report.set_defaults(handler=command_report)
    report.add_argument("results_dir", type=Path, help="the --out of one or more sweeps")
    report.add_argument(
        "--reference",
        default=None,
        help="method label for 'vs reference' columns and significance (default: baseline, or "
        "a frozen folder's own)",
    )
    report.add_argument(
        "--selection",
        default=None,
        choices=tuple(SELECTION_DESCRIPTION),
        help=f"which model-selection rule's records the report shows (default: "
        f"{SELECTION_FULL_VAL}, or a frozen folder's own)",
    )
    report.add_argument(
        "--no-qualitative",
        action="store_true",
        help="skip the qualitative grid (the one output that needs the model weights and the data)",
    )
    report.add_argument(
        "--out",
        type=Path,
        default=None,
        help="write the report here instead of <results-dir>/report/ (e.g. to regenerate a "
        "frozen folder's report beside the committed one)",
    )
    report.add_argument(
        "--freeze",
        type=Path,
        default=None,
        metavar="DEST",
        help="copy what the report reads of every run (spec, records gzipped, training log; no "
        "weights) into the frozen folder DEST and write its report into DEST/report/ "
        "(results/README.md)",
    )
    report.add_argument(
        "--overwrite",
        action="store_true",
        help="rewrite a frozen folder's committed report in place, or freeze again into DEST",
    )
    report.add_argument(
        "--leaderboard-steps",
        type=int,
        default=None,
        metavar="N",
        help="where a method was trained at several step budgets (`run --steps`), the budget "
        "the main tables show (default: each one's largest); every budget is in the budget "
        "section",
    )
    report.add_argument(
        "--flat-delta",
        type=float,
        default=None,
        metavar="POINTS",
        help="budget section: a method's validation curve is flat from the smallest budget "
        "whose mIoU, and every larger one's, is within POINTS of the largest budget's "
        "(default: 1.0)",
    )
    report.add_argument(
        "--split",
        default="test",
        choices=("test", "val"),  # benchmark.report.frames.SPLIT_NAMES
        help="which split's records of the selected checkpoints the tables and figures show "
        "(default: test); val writes <results-dir>/report/val/ (or --out) and leaves out the "
        "test-only sections (corruptions, failure model, findings, budgets, compute, qualitative "
        "grid)",
    )
    report.add_argument(
        "--html",
        action="store_true",
        help="also write a static web leaderboard into <report>/site/ (index.html opens from "
        "disk, no server or network): sortable, filterable scores, a page per method, the "
        "figures",
    )


def add_profile(commands: Commands) -> None:
    """`profile NAME`."""
    profile = subcommand(
        commands,
        "profile",
        ["methods", "dataset", "preset", "device", "data", "threads"],
        "measure where training and evaluation time goes (profilers: see `list`)",
        description="Measure where training and evaluation time goes and write a CSV, a "
        "Markdown summary and a figure into --out. `step`: every method's training step split "
        "into data loading, forward, backward, optimiser and bookkeeping, and the harness "
        "against a bare PyTorch loop. `eval`: every method's validation, test and corrupted "
        "evaluation per tile, view and window, shared passes against one per scenario and "
        "against a bare forward pass. `psa` (registered by STARS): PSA sampling and loss "
        "against a whole STARS step.",
    )
    # --methods: None = not given (every method, for a profiler that selects methods)
    profile.set_defaults(handler=command_profile, methods=None, dataset="synthetic")
    profile.add_argument("what", help="which profiler to run, e.g. step or psa")
    profile.add_argument(
        "--out", type=Path, default=Path("results/profile"), help="(default: results/profile)"
    )
    profile.add_argument(
        "--repeats", type=int, default=10, help="timed calls per measurement (default: 10)"
    )
    profile.add_argument(
        "--warmup", type=int, default=3, help="untimed calls before timing (default: 3)"
    )


def add_run_target(parser: argparse.ArgumentParser) -> None:
    """The run `predict` and `export` load: a folder, a unique id prefix, or a results directory
    narrowed by method, seed and dataset (`benchmark.run.pick`)."""
    parser.add_argument(
        "run_dir",
        type=Path,
        metavar="RUN",
        help="a finished run: <out>/runs/<run_id> (a unique prefix of the id is enough), or a "
        "results directory <out> with --method",
    )
    pick = parser.add_argument_group("picking a run from a results directory")
    pick.add_argument("--method", default=None, help="the run's method (or its label)")
    pick.add_argument("--seed", type=int, default=None, help="the run's seed")
    pick.add_argument("--dataset", default=None, help="the run's dataset")


def add_predict(commands: Commands) -> None:
    """`predict RUN_DIR`."""
    predict = subcommand(
        commands,
        "predict",
        ["device"],
        "apply a finished run to your own GeoTIFF scene (any subset of its modalities)",
        description="Apply a finished run to a georeferenced scene: one GeoTIFF per modality "
        "(any non-empty subset of the run's modalities, sharing CRS, transform and size), "
        "streamed in windows; writes a uint8 GeoTIFF of class indices with the dataset's "
        "palette (nodata 255 where any input is nodata).",
        epilog="examples:\n  python run_benchmark.py predict results/runs/<run_id> "
        "--input optical=scene.tif,dsm=scene_dsm.tif --out labels.tif\n"
        "  python run_benchmark.py predict results --method stars --seed 0 "
        "--input optical=scene.tif --out labels.tif",
    )
    predict.set_defaults(handler=command_predict, device="cpu")
    add_run_target(predict)
    predict.add_argument(
        "--input",
        required=True,
        action="append",
        help="modality=path.tif pairs, comma-separated or one per --input, e.g. "
        "optical=scene.tif,dsm=scene_dsm.tif",
    )
    predict.add_argument("--out", type=Path, required=True, help="the labels GeoTIFF to write")
    predict.add_argument(
        "--probabilities",
        type=Path,
        default=None,
        metavar="TIF",
        help="also write per-class probabilities (float32, one band per class) here",
    )
    predict.add_argument("--force", action="store_true", help="overwrite existing outputs")
    predict.add_argument(
        "--max-scene-gib",
        type=float,
        default=None,
        metavar="GIB",
        help="the size rule: refuse scenes whose decoded inputs and outputs (bands x height x "
        "width x dtype size, labels, probabilities) exceed GIB GiB, before reading (default: 64)",
    )


def add_export(commands: Commands) -> None:
    """`export RUN_DIR --format onnx`."""
    export = subcommand(
        commands,
        "export",
        [],
        "write a finished run as ONNX models, one per scenario (QGIS Deepness, onnxruntime)",
        description="Write a finished run as ONNX models, one per missing-modality scenario "
        "(<out>/<scenario>.onnx, its bands stacked in the dataset's modality order): dynamic "
        "batch, height and width, softmax probabilities out, and the metadata QGIS's Deepness "
        "plugin reads (class names, tile size, overlap, standardisation, resolution). Each is "
        "checked against PyTorch with onnxruntime before it is written. Needs the `export` "
        'extra: pip install -e ".[export]".',
        epilog="example:\n  python run_benchmark.py export results/runs/<run_id> --format onnx "
        "--resolution 5 --out exports/stars",
    )
    export.set_defaults(handler=command_export)
    add_run_target(export)
    export.add_argument(
        "--format", choices=("onnx",), default="onnx", help="the model format (default: onnx)"
    )
    export.add_argument(
        "--out", type=Path, default=None, help="the folder to write (default: exports/<run_id>)"
    )
    export.add_argument(
        "--resolution",
        type=float,
        default=None,
        metavar="CM",
        help="ground resolution of the training data in centimetres per pixel, written for "
        "Deepness (a run does not know it; without it, set it in Deepness's panel)",
    )
    export.add_argument("--force", action="store_true", help="overwrite existing models")


def add_show_data(commands: Commands) -> None:
    """`show-data`."""
    show = subcommand(commands, "show-data", ["dataset", "data"], "plot test scenes of a dataset")
    show.set_defaults(handler=command_show_data, dataset="synthetic_3m")
    show.add_argument("--out", type=Path, default=Path("synthetic_sample.png"))
    show.add_argument("--n", type=int, default=3, help="number of scenes (rows)")


def add_run_flags(run: argparse.ArgumentParser) -> None:
    """The flags only `run` has."""
    run.add_argument(
        "--missing",
        default="all",
        help="scenarios to report: 'all' (every non-empty subset of the modalities), 'none' "
        "(all present), or modalities to remove, e.g. 'dsm' or 'dsm,sar' (one scenario each; "
        "'dsm+sar' removes both). The all-present scenario is always reported (default: all)",
    )
    run.add_argument(
        "--seeds", default="0", help="comma-separated integer seeds, e.g. 0,1,2 (default: 0)"
    )
    run.add_argument(
        "--imbalance",
        default="1",
        help="controlled-imbalance factors for the training labels, e.g. 1,10,100: the tail "
        "classes' labelled share is reduced about F-fold by hiding their labels in random 16 px "
        "blocks (same for every method and seed; see benchmark/data/imbalance.py) (default: 1)",
    )
    run.add_argument(
        "--train-missing",
        action="append",
        default=None,
        metavar="MODALITY=SHARE[,...]",
        help="train with that share of training tiles lacking the modality, e.g. dsm=0.3 or "
        "dsm=0.3,sar=0.5 (the same tiles for every method, drawn from the seed; a tile never "
        "loses every modality; a share must remove at least one training tile and leave at "
        "least one); repeat the flag to sweep settings, 'none' = complete data (default: none)",
    )
    run.add_argument(
        "--corruptions",
        default="none",
        help="also evaluate every finished run on the test split under these corruptions: "
        "comma-separated registered names, e.g. clouds,haze (the catalogue: "
        "docs/corruptions.md), or all; trained models are reused (default: none)",
    )
    run.add_argument(
        "--severities",
        default=None,
        help="corruption severities, e.g. 1-5, 1,3,5 or 3; only with --corruptions (default: 1-5)",
    )
    run.add_argument(
        "--invalid-fill",
        default=None,
        help="how methods handle the pixels a corruption marks invalid (clouds, DSM voids): own "
        "(each method's missing-modality mechanism at those pixels), mean (the training mean "
        "for every method), or own,mean (both, recorded apart; the same trained models); only "
        "with a --corruptions entry that marks pixels invalid (default: own)",
    )
    run.add_argument(
        "--selection",
        default=SELECTION_FULL_VAL,
        choices=tuple(SELECTION_DESCRIPTION),
        help="which model-selection rule's records the leaderboard and corrupted evaluation use: "
        "full_val (best validation mIoU with every modality) or mean_val (best mean validation "
        "mIoU over every scenario). Every run records every rule, so another rule trains "
        "nothing new (runs finished before that are trained again) (default: full_val)",
    )
    run.add_argument(
        "--steps", type=int, default=None, help="override the preset's training steps, e.g. 200"
    )
    run.add_argument(
        "--hparams-from",
        type=Path,
        default=None,
        metavar="TUNE",
        help="give each method the best configuration of its `tune` study: a tune folder "
        "(<out>/tune), the --out of `tune`, or its best.json; bracket overrides still win, and "
        "a method the study did not tune is refused (default: none)",
    )
    run.add_argument(
        "--budget",
        default="steps",
        choices=("steps", "flops"),
        help="steps: every method trains for the preset's steps; flops: each method's steps are "
        "scaled so its training FLOPs equal the baseline's at those steps (measured with "
        "PyTorch's FLOP counter; the ratio is stored in the run spec) (default: steps)",
    )
    run.add_argument(
        "--out",
        type=Path,
        default=Path("results"),
        help="output directory for leaderboard.csv and runs/ (default: results)",
    )
    run.add_argument(
        "--launcher",
        default="local",
        help="local (this machine; see --workers), dry_run (print runs and their state, run "
        "nothing), ray (one Ray task per run; pip install -e '.[ray]') (default: local)",
    )
    run.add_argument(
        "--workers",
        type=int,
        default=1,
        help="local launcher: runs at once, one process each (default: 1, in this process)",
    )
    run.add_argument(
        "--address",
        default=None,
        help="ray launcher: cluster address, e.g. auto or host:6379 (default: a local instance)",
    )
    run.add_argument(
        "--log",
        default="none",
        choices=("none", "tensorboard"),
        help="tensorboard: also log losses and validation scores for TensorBoard into "
        "runs/<run_id>/tensorboard/ (pip install -e '.[tensorboard]') (default: none)",
    )
    run.add_argument(
        "--retry-failed",
        action="store_true",
        help="rerun runs recorded as failed (default: report them as failed and go on)",
    )


# ------------------------------------------------------------------------------ commands
def command_run(args: argparse.Namespace) -> int:
    """Expand, check, launch, then write and print the leaderboard."""
    from benchmark.commands.launch import launch_sweep

    request = sweep_request(
        methods=args.methods,
        datasets=args.dataset,
        seeds=args.seeds,
        preset=args.preset,
        steps=args.steps,
        imbalance=args.imbalance,
        missing=args.missing,
        budget=args.budget,
        train_missing=args.train_missing,
        selection=args.selection,
        corruptions=args.corruptions,
        severities=args.severities,
        invalid_fill=args.invalid_fill,
        hparams_from=args.hparams_from,
    )
    return launch_sweep(request, execution(args))


def execution(args: argparse.Namespace) -> Execution:
    """Where and how `run` and `tune` execute their runs: the same flags mean the same for both
    (`tune` has no `--log`)."""
    return resolve_execution(
        args.data_root,
        args.device,
        out=args.out,
        launcher=args.launcher,
        workers=args.workers,
        threads=args.threads,
        retry_failed=args.retry_failed,
        address=args.address,
        tensorboard=getattr(args, "log", "none") == "tensorboard",
    )


def command_tune(args: argparse.Namespace) -> int:
    """Run or resume every method's study, then write and print the search cost."""
    from benchmark.commands.requests import tune_request
    from benchmark.commands.tune import tune

    request = tune_request(
        methods=args.methods,
        dataset=args.dataset,
        preset=args.preset,
        trials=args.trials,
        seed=args.seed,
        rungs=args.rungs,
        keep=args.keep,
        selection=args.selection,
    )
    return tune(request, execution(args))


def command_list(args: argparse.Namespace) -> int:
    """Print the registries (or write the README's generated tables)."""
    from benchmark.commands.listing import (
        markdown_tables,
        registry_tables,
        rich_table,
        update_docs,
        update_readme,
    )
    from benchmark.core.cards import hparam_tables

    rewrites = args.update_readme is not None or args.update_docs is not None
    if args.method is not None and rewrites:
        raise BenchmarkError(
            f"list {args.method}: --update-readme and --update-docs rewrite the whole registry "
            "tables; drop the method name"
        )
    if rewrites:
        if args.update_readme is not None:
            update_readme(args.update_readme)
            console.print(f"updated the registry tables in {args.update_readme}")
        if args.update_docs is not None:
            update_docs(args.update_docs)
            console.print(f"updated the corruption table and sections in {args.update_docs}")
        return 0
    tables = registry_tables() if args.method is None else hparam_tables(args.method)
    if args.markdown:
        sys.stdout.write(markdown_tables(tables))
        return 0
    for title, columns, rows in tables:
        table, width = rich_table(title, columns, rows)
        print_wide(table, width)
    return 0


def command_show_data(args: argparse.Namespace) -> int:
    """Plot `--n` test scenes of a dataset into `--out`."""
    from benchmark.report.samples import save_example_figure

    positive("--n", args.n)
    save_example_figure(args.dataset, args.data_root or default_data_root(), args.out, n=args.n)
    console.print(f"wrote {args.out}")
    return 0


def command_report(args: argparse.Namespace) -> int:
    """Rebuild a results directory's report from its records (or freeze it first): the same
    `report_command` as `api.report` and `api.freeze`."""
    result = report_command(
        args.results_dir,
        reference=args.reference,
        selection=args.selection,
        leaderboard_steps=args.leaderboard_steps,
        flat_delta=args.flat_delta,
        data_root=args.data_root,
        qualitative=not args.no_qualitative,
        overwrite=args.overwrite,
        out=args.out,
        split=args.split,
        html=args.html,
        freeze=args.freeze,
    )
    frozen, files = result.frozen, result.files
    if frozen is not None:
        console.print(
            f"froze {frozen.runs} run(s) ({frozen.runs_done} finished) into "
            f"[bold]{escape(str(frozen.dest))}[/bold]: {frozen.run_bytes / 2**20:.2f} MiB, no "
            f"weights ({frozen.source_bytes / 2**20:.2f} MiB before gzip)"
        )
    console.print(f"report: [bold]{escape(str(files[0].path))}[/bold] ({len(files)} files)")
    return 0


def command_profile(args: argparse.Namespace) -> int:
    """Run one registered profiler and write its outputs."""
    from benchmark.core.plugins import DATASETS
    from benchmark.profile.profilers import PROFILERS
    from benchmark.profile.setup import ProfileSettings
    from benchmark.run.sweep import expand_method_names

    positive("--repeats", args.repeats)
    positive("--warmup", args.warmup, allow_zero=True)
    positive("--threads", args.threads)
    profiler = PROFILERS.get(args.what)
    preset = PRESETS.get(args.preset)
    DATASETS.canonical(parse_named(args.dataset).name)
    methods = []
    if profiler.uses_methods:
        given = args.methods if args.methods is not None else "all"
        methods = [m.label() for m in expand_method_names(parse_named_list(given))]
    elif args.methods is not None:
        raise BenchmarkError(
            f"profile {args.what}: --methods {args.methods} applies to nothing (this profiler "
            "measures fixed parts, not a choice of methods; leave --methods out)"
        )
    settings = ProfileSettings(
        preset,
        resolve_device(args.device),
        args.data_root or default_data_root(),
        args.dataset,
        args.repeats,
        args.warmup,
    )
    check_output_folder(args.out, "--out")  # before minutes of measuring, not after
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    frame = profiler.measure(settings, methods)
    headline, files = profiler.write(frame, args.out)
    for line in headline:
        results_console.print(f"[bold]{escape(line)}[/bold]")
    results_console.print(f"profile: {escape(str(files[1]))} ({len(files)} files)")
    return 0


def picked_run(args: argparse.Namespace) -> Path:
    """The run folder `predict`/`export` were pointed at (`benchmark.run.pick`)."""
    from benchmark.run.pick import RunChoice, pick_run

    return pick_run(args.run_dir, RunChoice(args.method, args.seed, args.dataset))


def command_predict(args: argparse.Namespace) -> int:
    """Predict a scene with a finished run."""
    from benchmark.deploy.predict import parse_inputs, predict_scene

    inputs = parse_inputs(",".join(args.input))  # the flags' own errors before any folder's
    summary = predict_scene(
        picked_run(args),
        inputs,
        args.out,
        probabilities=args.probabilities,
        device=resolve_device(args.device),
        force=args.force,
        **({} if args.max_scene_gib is None else {"max_scene_gib": args.max_scene_gib}),
    )
    extra = f" and {escape(str(summary.probabilities))}" if summary.probabilities else ""
    console.print(
        f"wrote [bold]{escape(str(summary.labels))}[/bold]{extra}: {summary.height} x "
        f"{summary.width} px from {'+'.join(summary.modalities)}, {summary.nodata_pixels} nodata "
        f"px, {summary.seconds:.0f} s, peak memory {summary.peak_rss_mb:.0f} MiB"
    )
    return 0


def command_export(args: argparse.Namespace) -> int:
    """Export a finished run as ONNX models."""
    from benchmark.deploy.export import export_onnx

    summary = export_onnx(picked_run(args), args.out, resolution=args.resolution, force=args.force)
    console.print(
        f"wrote [bold]{escape(str(summary.folder))}[/bold]: {len(summary.files)} ONNX model(s), "
        f"one per scenario ({', '.join(summary.scenarios)}); onnxruntime matches PyTorch within "
        f"{summary.max_difference:.1g}"
    )
    return 0


COMMANDS = ("run", "tune", "list", "report", "profile", "predict", "export", "show-data")
TOP_LEVEL_HELP = ("-h", "--help")
"""Without a sub-command or other flags (`--debug` aside), the top-level parser's help, which
lists every sub-command; with `run`'s flags, `run`'s help."""


STORAGE_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})
"""Write failures of the file system itself (full, over quota, read-only): one line."""


def write_roots(args: argparse.Namespace) -> list[Path | None]:
    """The folders (or, for `list --update-readme/--update-docs`, the files) a command may
    write to.

    Runs, reports and profiles also write the data root (generated synthetic data, the tile
    cache beside the data) and the caches; `predict` and `show-data` write beside their
    `--out` file.
    """
    command = args.command
    if command == "list":
        return [getattr(args, "update_readme", None), getattr(args, "update_docs", None)]
    if command == "predict":
        extra = args.probabilities.parent if args.probabilities else None
        return [args.out.parent, extra]
    if command == "export":
        from benchmark.deploy.export import default_out

        return [args.out or default_out(args.run_dir)]
    out = args.out
    if command == "report":  # the report's folder only: a frozen folder's runs stay untouched
        return report_roots(args.results_dir, args.out, args.freeze, args.data_root)
    if command == "show-data":
        out = args.out.parent
    return run_roots(out, getattr(args, "data_root", None) or default_data_root())


def print_error(error: Exception) -> None:
    """The one line a refused command prints."""
    console.print(f"[red]error:[/red] {escape(str(error))}", highlight=False, soft_wrap=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse, dispatch, and turn bad input into one line and exit status 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    top_level_help = set(argv) & set(TOP_LEVEL_HELP) and set(argv) <= {*TOP_LEVEL_HELP, "--debug"}
    if not argv or not (argv[0] in COMMANDS or top_level_help):
        argv = ["run", *argv]  # `run` is the default sub-command
    debug = "--debug" in argv
    setup_logging(logging.DEBUG if debug else logging.INFO)
    try:
        check_own_packages()  # before anything imports `methods` or `datasets`
        args = build_parser().parse_args(argv)
        handler: Callable[[argparse.Namespace], int] = args.handler
        # checked, confined, and a relative folder-card path resolved against --data-root, for
        # every command: the same scope as the API's (`commands.entry`)
        with command_scope(write_roots(args), getattr(args, "data_root", None)):
            return handler(args)
    except BenchmarkError as error:
        if debug:
            raise
        print_error(error)
        return 2
    except OSError as error:
        if debug or error.errno not in STORAGE_ERRORS:
            raise
        # The machine's storage, not the input: one line, status 1 (written results are intact:
        # every write is a temporary file renamed into place).
        print_error(error)
        return 1
    except KeyboardInterrupt:
        console.print("interrupted: finished runs are kept; rerun the same command to resume")
        return 130
