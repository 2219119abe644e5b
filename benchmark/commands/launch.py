"""A sweep from request to leaderboard: validate, check, launch, then tabulate from the store."""

from __future__ import annotations

import dataclasses
import logging
import time

from rich.markup import escape

from benchmark.core.options import format_value
from benchmark.report.frames import BoardEntry, leaderboard, write_csv
from benchmark.report.render import wide_table
from benchmark.run.execution import Execution
from benchmark.run.launchers import LAUNCHERS, LaunchContext
from benchmark.run.store import RunStore
from benchmark.run.sweep import Sweep, SweepRequest, expand, preflight
from benchmark.system.progress import console, results_console
from benchmark.system.tensorboard import check_tensorboard

log = logging.getLogger(__name__)

LEADERBOARD = "leaderboard.csv"


def launch_sweep(request: SweepRequest, execution: Execution) -> int:
    """Run the sweep where and as `execution` says and write its leaderboard; the exit status
    (1 if a run has no results).

    Everything that can be checked is checked before anything is written under `out`: names
    and values (`expand`), the results directory, the data and existing checkpoints.
    """
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
        launch(sweep.specs, context)
        return 0

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
    for dataset, imbalance in dict.fromkeys((s.dataset, s.imbalance) for s in sweep.specs):
        results_console.print(wide_table(board, sweep.labels, dataset, imbalance))
    console.print(
        f"leaderboard: [bold]{escape(str(path))}[/bold] ({len(board)} rows) · runs: "
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
        return 1
    return 0


def sweep_leaderboard(sweep: Sweep, store: RunStore):  # noqa: ANN201  (a DataFrame)
    """The sweep's leaderboard, from the store: its runs under this sweep's labels, the
    reported scenarios and the requested selection rule only, and a row per scenario for every
    run without results."""
    entries = [
        BoardEntry(spec.label, spec.dataset, spec.to_json(), store.load(spec.run_id))
        for spec in sweep.specs
    ]
    return leaderboard(entries, sweep.reported, sweep.modalities, sweep.selection)
