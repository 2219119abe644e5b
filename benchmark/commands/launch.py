"""A sweep from request to leaderboard: validate, check, launch, then tabulate from the store."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.markup import escape

from benchmark.core.dataset import data_root_scope
from benchmark.core.options import format_value
from benchmark.report.frames import (
    BoardEntry,
    budget_of,
    label_of,
    leaderboard,
    selected_by,
    train_missing_text,
    write_csv,
)
from benchmark.report.render import wide_table
from benchmark.run.execution import Execution
from benchmark.run.launchers import LAUNCHERS, LaunchContext
from benchmark.run.store import RUNS, SPEC, RunStore, StoredRun
from benchmark.run.sweep import DATA_SEED, RUN_SEED, Sweep, SweepRequest, expand, preflight
from benchmark.run.train import RunOutcome
from benchmark.system.progress import console, results_console
from benchmark.system.tensorboard import check_tensorboard

log = logging.getLogger(__name__)

LEADERBOARD = "leaderboard.csv"


@dataclass(frozen=True)
class PlannedRun:
    """One run of a sweep and its state in the results directory (`--launcher dry_run`'s row)."""

    run_id: str
    method: str
    dataset: str
    imbalance: float
    train_missing: str
    seed: int
    steps: int
    state: str
    """done | failed | busy | incomplete | pending (`RunStore.state`); after a launch, the
    run's outcome (done, skipped, failed, busy)."""


@dataclass(frozen=True)
class SweepResult:
    """What a sweep did: its exit status, its runs, and where its leaderboard is."""

    status: int
    """The command's exit status: 1 if a run has no results, else 0."""
    runs: tuple[PlannedRun, ...]
    leaderboard: Path | None
    """None for `--launcher dry_run`, which runs and writes nothing."""


def planned(outcomes: Sequence[RunOutcome]) -> tuple[PlannedRun, ...]:
    """The runs of a launch with their states (a dry run's outcomes are the states)."""
    return tuple(
        PlannedRun(
            run_id=o.spec.run_id,
            method=o.spec.label,
            dataset=o.spec.dataset_label,
            imbalance=o.spec.imbalance,
            train_missing=o.spec.train_missing_label or "none",
            seed=o.spec.seed,
            steps=o.spec.steps,
            state=o.status,
        )
        for o in outcomes
    )


def launch_sweep(request: SweepRequest, execution: Execution) -> int:
    """Run the sweep where and as `execution` says and write its leaderboard; the exit status
    (1 if a run has no results). `run_sweep` says what it did."""
    return run_sweep(request, execution).status


def run_sweep(request: SweepRequest, execution: Execution) -> SweepResult:
    """Run the sweep where and as `execution` says and write its leaderboard (a dry run: list
    its runs and their states, run and write nothing).

    Everything that can be checked is checked before anything is written under `out`: names
    and values (`expand`), the results directory, the data and existing checkpoints. A dataset
    named by a path relative to the data root (a folder card) is found there.
    """
    with data_root_scope(execution.data_root):
        return _launch_sweep(request, execution)


def _launch_sweep(request: SweepRequest, execution: Execution) -> SweepResult:
    launcher, data_root, out = execution.launcher, execution.data_root, execution.out
    launch = LAUNCHERS.get(launcher)
    if execution.tensorboard:
        check_tensorboard()
    sweep = expand(request)
    store = RunStore(out)
    store.check_writable()
    preflight(sweep.specs, data_root, store, request.corruptions, request.every_corruption)
    if request.budget == "flops":
        from benchmark.run.budget import match_flops

        sweep = dataclasses.replace(sweep, specs=match_flops(sweep.specs, data_root))
        preflight(sweep.specs, data_root, store)  # the scaled runs' own checkpoints
    context = LaunchContext(execution, modules=sweep.modules, corruptions=request.corruptions)
    if launcher == "dry_run":
        return SweepResult(0, planned(launch(sweep.specs, context)), None)

    store.claim()
    start = time.perf_counter()
    for method in dict.fromkeys(spec.method for spec in sweep.specs) if request.tuned else ():
        tuned = ", ".join(f"{k}={format_value(v)}" for k, v in request.tuned_for(method).items())
        log.info("%s: tuned values from %s: %s", method, request.tuned_from, tuned)
    log.info(
        "%d run(s) on %s · preset %s · launcher %s · out %s",
        len(sweep.specs),
        execution.device,
        request.preset.name,
        launcher,
        out,
    )
    outcomes = launch(sweep.specs, context)
    board = sweep_leaderboard(sweep, store)
    path = out / LEADERBOARD
    write_csv(board, path)
    labels = list(dict.fromkeys([*sweep.labels, *board["method"]]))
    for dataset, imbalance in dict.fromkeys((s.dataset_label, s.imbalance) for s in sweep.specs):
        results_console.print(wide_table(board, labels, dataset, imbalance))
    ours = {spec.run_id for spec in sweep.specs}
    earlier = board.loc[~board["run_id"].isin(ours), "run_id"].nunique()
    held = f"this command's {len(ours)} run(s)" + (
        f" and {earlier} earlier run(s) of --out on the same data and budget" if earlier else ""
    )
    console.print(
        f"leaderboard: [bold]{escape(str(path))}[/bold] ({len(board)} rows: {held}) · runs: "
        f"{escape(str(out / 'runs'))}/<run_id>/ (spec.json, records.jsonl, train_log.jsonl, "
        f"model.safetensors, model.json) · wall {time.perf_counter() - start:.0f} s"
    )
    # Judged from the store, not from what this launcher did: a run another launcher on the
    # same --out finished meanwhile is done, not a failure.
    final = {o.spec.run_id: store.state(o.spec.run_id) for o in outcomes}
    running = [r for r, state in final.items() if state not in ("done", "failed")]
    failed = [r for r, state in final.items() if state == "failed"]
    if running:
        console.print(
            f"{len(running)} run(s) still running in another launcher on this --out; rerun the "
            "same command (it skips finished runs) or `report` once they finish"
        )
    if failed:
        console.print(
            f"[red]{len(failed)} run(s) failed[/red] (reasons in runs/<run_id>/failed.json); "
            "rerun with --retry-failed to try again"
        )
    return SweepResult(1 if failed else 0, planned(outcomes), path)


def sweep_leaderboard(sweep: Sweep, store: RunStore):  # noqa: ANN201  (a DataFrame)
    """The sweep's leaderboard (`leaderboard.csv`), from the store: its runs and every earlier
    run of `--out` on the same data and budget (`earlier_runs`), under their labels, the
    reported scenarios and the requested selection rule only, and a row per scenario for every
    run without results. A sweep adds seeds or methods to what is there; its table shows all."""
    entries = [
        BoardEntry(spec.label, spec.dataset_label, spec.to_json(), store.load(spec.run_id))
        for spec in sweep.specs
    ]
    entries += [
        BoardEntry(label_of(run.spec), run.spec.get("dataset_name") or run.spec["dataset"],
                   run.spec, run)
        for run in earlier_runs(sweep, store)
    ]  # fmt: skip
    return leaderboard(entries, sweep.reported, sweep.modalities, sweep.selection)


def earlier_runs(sweep: Sweep, store: RunStore) -> list[StoredRun]:
    """The runs of `--out` outside the sweep that its leaderboard shows too: same dataset (name,
    options, data seed or `seed=run`), preset and step budget as one of its runs (`data_keys`),
    finished with records of its selection rule, failed, or running elsewhere. A run that is
    one of the sweep's under another id (an older harness) is left out, as is a repeat of an
    earlier one (the newest harness's is kept)."""
    folder = store.out / RUNS
    ours = {spec.run_id for spec in sweep.specs}
    wanted = sweep_data_keys([spec.to_json() for spec in sweep.specs])
    seen = {run_identity(spec.to_json()) for spec in sweep.specs}
    found = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if path.name in ours or not path.is_dir():
            continue
        try:
            spec = json.loads((path / SPEC).read_text(encoding="utf-8"))
            if not data_keys(spec) & wanted:
                continue
        except (OSError, ValueError, KeyError, TypeError):
            continue  # unreadable: `report` names it
        run = store.load(path.name)
        shown = selected_by(run, sweep.selection) or run.state in ("failed", "busy")
        if shown and run.spec is not None and run_identity(run.spec)[0] in sweep.reported:
            found.append(run)
    found.sort(key=lambda run: -int(run.spec.get("harness_version", 0)))
    kept = []
    for run in found:
        identity = run_identity(run.spec)
        if identity not in seen:
            seen.add(identity)
            kept.append(run)
    return sorted(kept, key=lambda run: run.run_id)


def data_keys(spec: Mapping[str, Any]) -> set[tuple]:
    """The (dataset, options but the data seed, data seed, budget) a run may belong to: its data
    seed, and `run` too where that is the run's own seed (`seed=run` makes that very run)."""
    options = {str(k): v for k, v in spec["dataset_options"]}
    seed = options.pop(DATA_SEED, None)
    base = (spec["dataset"], json.dumps(sorted(options.items()), default=str), *budget_of(spec))
    keys = {(*base, json.dumps(seed))}
    if seed is not None and seed == spec["seed"]:
        keys.add((*base, RUN_SEED))
    return keys


def sweep_data_keys(specs: list[Mapping[str, Any]]) -> set[tuple]:
    """The `data_keys` of a sweep's runs: where several runs of one dataset each drew the data
    of their own seed it was `seed=run` (the `run` key only), otherwise their data seeds."""
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for spec in specs:
        base = next(iter(data_keys(spec)))[:-1]  # every key of a run shares it
        groups.setdefault(base, []).append(spec)
    keys = set()
    for base, mine in groups.items():
        own = [dict(s["dataset_options"]).get(DATA_SEED) == s["seed"] for s in mine]
        if len({s["seed"] for s in mine}) > 1 and all(own):
            keys.add((*base, RUN_SEED))
        else:
            keys |= {(*base, json.dumps(dict(s["dataset_options"]).get(DATA_SEED))) for s in mine}
    return keys


def run_identity(spec: Mapping[str, Any]) -> tuple:
    """What tells one leaderboard row's run from another: dataset as shown, label, seed,
    imbalance, training condition and modalities (a dedicated method's run per scenario)."""
    return (
        spec.get("dataset_name") or spec["dataset"],
        label_of(spec),
        spec["seed"],
        float(spec.get("imbalance", 1.0)),
        train_missing_text(spec.get("train_missing")),
        tuple(spec["train_modalities"]),
    )
