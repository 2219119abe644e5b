"""Command line: `python run_benchmark.py [run flags]`, `... list`, `... show-data`."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from rich.markup import escape
from rich.table import Table

from benchmark.errors import BenchmarkError
from benchmark.options import parse_named, parse_named_list
from benchmark.presets import PRESETS
from benchmark.progress import console, results_console, setup_logging

log = logging.getLogger("missbench")

EXAMPLES = """\
examples:
  python run_benchmark.py --methods baseline --missing all
  python run_benchmark.py --methods "baseline,baseline[lr=3e-4]" --seeds 0,1,2
  python run_benchmark.py --dataset synthetic_3m --missing dsm,sar --steps 200
  python run_benchmark.py --dataset "synthetic[train_tiles=32,seed=1]" --device cuda
  python run_benchmark.py list
  python run_benchmark.py show-data --dataset synthetic_3m --out docs/synthetic_sample.png
"""


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad flag as one line (plus exit status 2), not a usage dump."""

    def error(self, message: str):  # noqa: D102
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def default_data_root() -> Path:
    return Path(os.environ.get("MISSBENCH_DATA", "data"))


def run_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="run_benchmark.py",
        description="Train and evaluate missing-modality segmentation methods on every "
        "missing-modality scenario and write a leaderboard. Subcommands: `list` (methods, "
        "datasets, presets), `show-data` (plot a dataset's modalities and labels), `report` "
        "(tables and figures from a results directory), `profile psa|step` (where training "
        "time goes).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--methods",
        default="baseline",
        help="comma-separated methods, each optionally with hyperparameter "
        "overrides in brackets, e.g. 'baseline,baseline[lr=3e-4]'; 'all' = every registered "
        "method (default: baseline; see `list`)",
    )
    parser.add_argument(
        "--missing",
        default="all",
        help="scenarios to report: 'all' (every non-empty subset of the "
        "modalities), 'none' (all present), or modalities to remove, e.g. "
        "'dsm' or 'dsm,sar' (one scenario each; 'dsm+sar' removes both). "
        "The all-present scenario is always reported (default: all)",
    )
    parser.add_argument(
        "--dataset",
        default="synthetic",
        help="dataset(s), comma-separated, options in brackets, e.g. "
        "'synthetic_3m' or 'synthetic[train_tiles=32]' (default: synthetic)",
    )
    parser.add_argument(
        "--preset",
        default="quick",
        help=f"training budget: {', '.join(PRESETS.names())} (default: quick)",
    )
    parser.add_argument(
        "--seeds", default="0", help="comma-separated integer seeds, e.g. 0,1,2 (default: 0)"
    )
    parser.add_argument(
        "--imbalance",
        default="1",
        help="controlled-imbalance factors for the training labels, e.g. 1,10,100: the tail "
        "classes' labelled share is reduced about F-fold by hiding their labels in random "
        "16 px blocks (same for every method and seed; see benchmark/imbalance.py) (default: 1)",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="override the preset's number of training steps, e.g. 200",
    )
    parser.add_argument(
        "--device",
        default="auto",
        choices=("auto", "cpu", "cuda"),
        help="auto = cuda when available, else cpu (default: auto)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("results"),
        help="output directory for leaderboard.csv and runs/ (default: results)",
    )
    parser.add_argument(
        "--data-root",
        type=Path,
        default=None,
        help="where datasets live or are generated (default: $MISSBENCH_DATA or ./data)",
    )
    parser.add_argument(
        "--launcher",
        default="local",
        help="local (this machine; see --workers), dry_run (print runs and their state, run "
        "nothing), ray (one Ray task per run; pip install -e '.[ray]') (default: local)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="local launcher: runs at once, one process each (default: 1, in this process)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads per run (default: cores / workers; Ray: 1)",
    )
    parser.add_argument(
        "--address",
        default=None,
        help="ray launcher: cluster address, e.g. auto or host:6379 (default: a local instance)",
    )
    parser.add_argument(
        "--retry-failed",
        action="store_true",
        help="rerun runs recorded as failed (default: report them as failed and go on)",
    )
    parser.add_argument(
        "--debug", action="store_true", help="show full tracebacks instead of one-line errors"
    )
    return parser


def parse_seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise BenchmarkError(f"--seeds {text!r}: expected comma-separated integers") from None
    if not seeds or any(s < 0 for s in seeds):
        raise BenchmarkError(f"--seeds {text!r}: expected non-negative integers")
    return tuple(dict.fromkeys(seeds))


def parse_factors(text: str) -> tuple[float, ...]:
    try:
        factors = tuple(float(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise BenchmarkError(
            f"--imbalance {text!r}: expected comma-separated numbers >= 1"
        ) from None
    if not factors or any(not f >= 1 or f == float("inf") for f in factors):
        raise BenchmarkError(f"--imbalance {text!r}: expected comma-separated numbers >= 1")
    return tuple(dict.fromkeys(factors))


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise BenchmarkError("--device cuda: no CUDA device is available (use cpu or auto)")
    return torch.device(name)


def command_run(args: argparse.Namespace) -> int:
    from benchmark import reporting
    from benchmark.launchers import LAUNCHERS, LaunchContext
    from benchmark.scenarios import scenarios_for_missing
    from benchmark.sweep import (
        Grid,
        dataset_modalities,
        expand,
        expand_method_names,
        preflight,
        unfinished_rows,
    )
    from datasets import DATASETS
    from methods import METHODS

    methods = expand_method_names(parse_named_list(args.methods))
    for method in methods:
        METHODS.canonical(method.name)
    datasets = parse_named_list(args.dataset)
    for dataset in datasets:
        DATASETS.canonical(dataset.name)
    preset = PRESETS.get(args.preset)
    launcher = LAUNCHERS.get(args.launcher)
    seeds = parse_seeds(args.seeds)
    device = resolve_device(args.device)
    if args.workers < 1 or (args.threads is not None and args.threads < 1):
        raise BenchmarkError("--workers and --threads must be positive integers")
    data_root = args.data_root or default_data_root()
    grid = Grid(
        tuple(methods), tuple(datasets), seeds, preset, args.steps, parse_factors(args.imbalance)
    )
    modalities = {DATASETS.canonical(d.name): dataset_modalities(d) for d in datasets}
    wanted = {
        name: [str(s) for s in scenarios_for_missing(args.missing, mods)]
        for name, mods in modalities.items()
    }
    specs = expand(grid, args.missing)  # validates every name and override before training
    check_out_dir(args.out)
    preflight(specs, data_root, args.out)  # data and checkpoints; writes nothing under --out
    context = LaunchContext(
        data_root=data_root,
        out=args.out,
        device=device,
        workers=args.workers,
        threads=args.threads,
        retry_failed=args.retry_failed,
        address=args.address,
    )
    if args.launcher == "dry_run":
        launcher(specs, context)
        return 0

    claim_out_dir(args.out)
    start = time.perf_counter()
    console.log(
        f"{len(specs)} run(s) on {device} · preset {preset.name} · launcher {args.launcher}"
        f" · out {args.out}"
    )
    outcomes = launcher(specs, context)
    records, placeholders = [], []
    for outcome in outcomes:
        if outcome.records:
            for rec in outcome.records:
                if rec["scenario"] in wanted[rec["dataset"]]:
                    records.append(dict(rec, method=outcome.spec.label))
        else:
            name = outcome.spec.dataset
            placeholders += unfinished_rows(outcome, wanted[name], modalities[name])
    board = reporting.leaderboard(records)
    if placeholders:
        board = reporting.pd.concat(
            [board, reporting.pd.DataFrame(placeholders)], ignore_index=True
        )
    path = args.out / "leaderboard.csv"
    reporting.write_csv(board, path)
    labels = list(dict.fromkeys(spec.label for spec in specs))
    for dataset, imbalance in dict.fromkeys((spec.dataset, spec.imbalance) for spec in specs):
        results_console.print(reporting.wide_table(board, labels, dataset, imbalance))
    failed = [o for o in outcomes if o.status in ("failed", "busy")]
    console.print(
        f"leaderboard: [bold]{path}[/bold] ({len(board)} rows) · runs: "
        f"{args.out / 'runs'}/<run_id>/ (spec.json, records.jsonl, train_log.jsonl, "
        f"model.pt) · wall {time.perf_counter() - start:.0f} s"
    )
    if failed:
        console.print(
            f"[red]{len(failed)} run(s) without results[/red] (failed or running elsewhere; "
            "reasons in runs/<run_id>/failed.json); rerun with --retry-failed to try again"
        )
        return 1
    return 0


OUT_MARKER = ".missbench"
"""File that marks a directory as a MissBench results directory."""


def check_out_dir(out: Path) -> None:
    """Refuse, before anything is written, an --out that is a file, unwritable, or a
    non-empty directory that is not a MissBench results directory."""
    if out.exists() and not out.is_dir():
        raise BenchmarkError(f"--out {out}: exists and is not a directory")
    probe = out if out.exists() else next((p for p in out.parents if p.exists()), Path("."))
    try:  # a real probe: os.access says yes to root even on read-only file systems
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError:
        raise BenchmarkError(f"--out {out}: not writable ({probe} refuses new files)") from None
    if out.is_dir() and any(out.iterdir()) and not (out / OUT_MARKER).exists():
        raise BenchmarkError(
            f"--out {out}: non-empty directory without a {OUT_MARKER} marker (not a MissBench "
            "results directory); choose a new or empty directory"
        )


def claim_out_dir(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    marker = out / OUT_MARKER
    if not marker.exists():
        marker.write_text("MissBench results directory (see results/README.md)\n")


def command_list(argv: Sequence[str]) -> int:
    from benchmark.listing import registry_markdown, registry_tables, update_readme

    parser = OneLineParser(
        prog="run_benchmark.py list", description="List registered methods, datasets and presets."
    )
    parser.add_argument(
        "--markdown",
        action="store_true",
        help="print Markdown tables (the README's tables are made this way)",
    )
    parser.add_argument(
        "--update-readme",
        type=Path,
        default=None,
        metavar="README",
        help="rewrite the generated tables between the markers in README",
    )
    args = parser.parse_args(argv)
    if args.update_readme is not None:
        update_readme(args.update_readme)
        console.print(f"updated the registry tables in {args.update_readme}")
        return 0
    if args.markdown:
        sys.stdout.write(registry_markdown())
        return 0
    for title, columns, rows in registry_tables():
        table = Table(title=title)
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*(escape(cell) for cell in row))
        results_console.print(table)
    return 0


def command_show_data(argv: Sequence[str]) -> int:
    from datasets.plotting import save_example_figure

    parser = OneLineParser(
        prog="run_benchmark.py show-data",
        description="Plot test scenes of a dataset: modalities and labels.",
    )
    parser.add_argument("--dataset", default="synthetic_3m")
    parser.add_argument("--out", type=Path, default=Path("synthetic_sample.png"))
    parser.add_argument("--n", type=int, default=3, help="number of scenes (rows)")
    parser.add_argument("--data-root", type=Path, default=None)
    args = parser.parse_args(argv)
    save_example_figure(args.dataset, args.data_root or default_data_root(), args.out, n=args.n)
    console.print(f"wrote {args.out}")
    return 0


def command_report(argv: Sequence[str]) -> int:
    from benchmark.report import generate_report

    parser = OneLineParser(
        prog="run_benchmark.py report",
        description="Regenerate every table, CSV and figure of a results directory from its "
        "records alone, into <results-dir>/report/ (index: report.md).",
    )
    parser.add_argument("results_dir", type=Path, help="the --out of one or more sweeps")
    parser.add_argument(
        "--reference",
        default="baseline",
        help="method label for 'vs reference' columns and significance (default: baseline)",
    )
    parser.add_argument(
        "--data-root",
        type=Path,
        default=None,
        help="dataset location for the qualitative grid (default: $MISSBENCH_DATA or ./data)",
    )
    parser.add_argument(
        "--no-qualitative",
        action="store_true",
        help="skip the qualitative grid (the one output that needs model.pt and the data)",
    )
    parser.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    files = generate_report(
        args.results_dir,
        reference=args.reference,
        data_root=args.data_root or default_data_root(),
        qualitative=not args.no_qualitative,
    )
    console.print(f"report: [bold]{files[0].path}[/bold] ({len(files)} files)")
    return 0


def profile_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="run_benchmark.py profile",
        description="Measure where training time goes. `psa`: PSA sampling, the PSA loss and "
        "translation + alignment against a whole STARS step, for the balanced, uniform, loop "
        "and hard_easy samplers, swept over pixels per class, classes, feature size and batch. "
        "`step`: every method's training step split into data loading, forward, backward, "
        "optimiser and bookkeeping, and the harness against a bare PyTorch loop. Writes a CSV, "
        "a Markdown summary and a figure into --out.",
    )
    parser.add_argument("what", choices=("psa", "step"), help="which profile to run")
    parser.add_argument(
        "--out", type=Path, default=Path("results/profile"), help="(default: results/profile)"
    )
    parser.add_argument(
        "--preset", default="quick", help="settings to profile at (default: quick; paper on GPU)"
    )
    parser.add_argument("--dataset", default="synthetic", help="(default: synthetic)")
    parser.add_argument(
        "--methods",
        default="all",
        help="step only: methods to profile, as for a run (default: all; baseline is always "
        "included as the bare loop's yardstick)",
    )
    parser.add_argument(
        "--device", default="auto", choices=("auto", "cpu", "cuda"), help="(default: auto)"
    )
    parser.add_argument(
        "--repeats", type=int, default=10, help="timed calls per measurement (default: 10)"
    )
    parser.add_argument(
        "--warmup", type=int, default=3, help="untimed calls before timing (default: 3)"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: all cores)"
    )
    parser.add_argument(
        "--data-root", type=Path, default=None, help="(default: $MISSBENCH_DATA or ./data)"
    )
    parser.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    return parser


def command_profile(argv: Sequence[str]) -> int:
    from benchmark import profile_report
    from benchmark.profile_setup import ProfileSettings
    from benchmark.sweep import expand_method_names
    from datasets import DATASETS
    from methods import METHODS

    args = profile_parser().parse_args(argv)
    if args.repeats < 1 or args.warmup < 0 or (args.threads is not None and args.threads < 1):
        raise BenchmarkError(
            "--repeats and --threads must be positive integers and --warmup >= 0, got "
            f"{args.repeats}, {args.threads}, {args.warmup}"
        )
    preset = PRESETS.get(args.preset)
    DATASETS.canonical(parse_named(args.dataset).name)
    settings = ProfileSettings(
        preset,
        resolve_device(args.device),
        args.data_root or default_data_root(),
        args.dataset,
        args.repeats,
        args.warmup,
    )
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    if args.what == "psa":
        from benchmark.profile_psa import profile_psa

        frame = profile_psa(settings)
        headline, files = profile_report.write_psa_outputs(frame, args.out)
    else:
        from benchmark.profile_step import profile_steps

        methods = expand_method_names(parse_named_list(args.methods))
        for method in methods:
            METHODS.canonical(method.name)
        frame = profile_steps([m.label() for m in methods], settings)
        headline, files = profile_report.write_step_outputs(frame, args.out)
    for line in headline.lines():
        results_console.print(f"[bold]{escape(line)}[/bold]")
    results_console.print(f"profile: {escape(str(files[1]))} ({len(files)} files)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    setup_logging(logging.DEBUG if debug else logging.INFO)
    try:
        if argv and argv[0] == "list":
            return command_list(argv[1:])
        if argv and argv[0] == "show-data":
            return command_show_data(argv[1:])
        if argv and argv[0] == "report":
            return command_report(argv[1:])
        if argv and argv[0] == "profile":
            return command_profile(argv[1:])
        if argv and argv[0] == "run":
            argv = argv[1:]
        return command_run(run_parser().parse_args(argv))
    except BenchmarkError as error:
        if debug:
            raise
        console.print(f"[red]error:[/red] {escape(str(error))}", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        console.print("interrupted: finished runs are kept; rerun the same command to resume")
        return 130
