"""Launchers: how a list of runs gets executed. The results store is the only coordination.

- `local`: in this process, one run after another (or `--workers N` processes, one per run);
- `dry_run`: prints what would run and each run's state, runs nothing, writes nothing;
- `ray`: one Ray task per run with its CPU/GPU request (`pip install -e ".[ray]"`), on a local
  instance or a cluster (`--address auto`); workers write into the shared results directory.

Every launcher goes through the same results store (`benchmark.run.store`): a per-run lock, a
`done` marker written last, `failed.json` for isolated failures, resume from `checkpoint.pt`.
A worker process (or Ray task) imports the plugins and the modules that registered the sweep's
methods and datasets before it runs (`benchmark.core.plugins`).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.markup import escape
from rich.table import Table

from benchmark.core.plugins import import_modules
from benchmark.core.records import RunSpec
from benchmark.core.registry import Registry
from benchmark.run.corrupted import corruptions_pending
from benchmark.run.evaluate import TileCorruption
from benchmark.run.store import RunStore
from benchmark.run.train import RunExecutor, RunOutcome
from benchmark.system.confine import confined_to
from benchmark.system.environment import run_roots
from benchmark.system.errors import BenchmarkError
from benchmark.system.progress import results_console, setup_logging

log = logging.getLogger(__name__)

BUSY_EXIT = 3


@dataclass(frozen=True)
class LaunchContext:
    data_root: Path
    out: Path
    device: torch.device
    workers: int = 1
    threads: int | None = None
    """torch threads per run; default: this machine's cores divided among the workers."""
    retry_failed: bool = False
    tensorboard: bool = False
    """Also log losses and validation scores for TensorBoard (`runs/<run_id>/tensorboard/`)."""
    address: str | None = None
    """Ray cluster address (`auto`, `host:port`); None starts a local Ray instance."""
    modules: tuple[str, ...] = ()
    """Modules a worker imports before it runs: those that registered the sweep's methods and
    datasets outside the plugin entry points (`plugins.importable_modules`)."""
    corruptions: tuple[TileCorruption, ...] = ()
    """Test-time corruptions every finished run is evaluated under (`--corruptions`)."""

    def needs(self, store: RunStore, spec: RunSpec) -> bool:
        """Whether `spec` has work left: unfinished, or finished but lacking a corrupted
        evaluation that was asked for and applies to its dataset."""
        if store.state(spec.run_id) != "done":
            return True
        return corruptions_pending(spec, store, self.corruptions)

    def threads_per_run(self) -> int:
        if self.threads is not None:
            return self.threads
        return max(1, (os.cpu_count() or 1) // max(1, self.workers))


Launcher = Callable[[Sequence[RunSpec], LaunchContext], list[RunOutcome]]
LAUNCHERS: Registry[Launcher] = Registry("launcher")


def outcome_from_store(spec: RunSpec, store: RunStore, status: str, seconds: float) -> RunOutcome:
    """How a worker reports back: its status, with the failure reason from the store."""
    if status == "failed":
        return RunOutcome(spec, status, seconds, store.failure_reason(spec.run_id))
    if status == "busy":
        return RunOutcome(spec, status, seconds, "running in another launcher")
    return RunOutcome(spec, status, seconds)


def report(outcome: RunOutcome, number: int, total: int) -> None:
    spec = outcome.spec
    states = {
        "done": f"finished in {outcome.seconds:.0f} s",
        "skipped": "skipped (done)",
        "failed": f"FAILED: {outcome.error}",
        "busy": "busy (locked by another launcher; not run here)",
    }
    factor = f" · imbalance {spec.imbalance:g}" if spec.imbalance != 1 else ""
    level = logging.WARNING if outcome.status == "failed" else logging.INFO
    log.log(
        level,
        "[%d/%d] %s · %s%s · seed %d · run %s: %s",
        number,
        total,
        spec.label,
        spec.dataset,
        factor,
        spec.seed,
        spec.run_id,
        states.get(outcome.status, outcome.status),
    )


def execute_one(
    spec_json: dict,
    data_root: str,
    out: str,
    device: str,
    threads: int,
    retry_failed: bool,
    modules: tuple[str, ...] = (),
    tensorboard: bool = False,
    corruptions: tuple[tuple[str, int, int], ...] = (),
) -> tuple[str, float]:
    """Worker entry (a process or a Ray task): run one spec, return (status, seconds)."""
    setup_logging()  # a fresh process: its progress lines need a handler
    import_modules(modules)
    torch.set_num_threads(threads)
    with confined_to(run_roots(out, data_root)):
        outcome = RunExecutor(
            RunSpec.from_json(spec_json),
            Path(data_root),
            RunStore(Path(out)),
            torch.device(device),
            show_progress=False,
            retry_failed=retry_failed,
            tensorboard=tensorboard,
            corruptions=[TileCorruption(*c) for c in corruptions],
        ).execute()
    return outcome.status, outcome.seconds


def worker_args(spec: RunSpec, ctx: LaunchContext, threads: int, resolve: bool = False) -> tuple:
    """`execute_one`'s arguments for `spec` (absolute paths for workers on other machines)."""
    data_root, out = (
        (ctx.data_root.resolve(), ctx.out.resolve()) if resolve else (ctx.data_root, ctx.out)
    )
    return (
        spec.to_json(),
        str(data_root),
        str(out),
        str(ctx.device),
        threads,
        ctx.retry_failed,
        ctx.modules,
        ctx.tensorboard,
        tuple((c.name, c.severity, c.seed) for c in ctx.corruptions),
    )


@LAUNCHERS.register("local")
def local(specs: Sequence[RunSpec], ctx: LaunchContext) -> list[RunOutcome]:
    """Runs one after another in this process, or `--workers N` processes at once."""
    if ctx.workers > 1:
        return _local_processes(specs, ctx)
    torch.set_num_threads(ctx.threads_per_run())
    store = RunStore(ctx.out)
    outcomes = []
    for number, spec in enumerate(specs, 1):
        executor = RunExecutor(
            spec,
            ctx.data_root,
            store,
            ctx.device,
            retry_failed=ctx.retry_failed,
            tensorboard=ctx.tensorboard,
            corruptions=ctx.corruptions,
        )
        outcome = executor.execute()
        report(outcome, number, len(specs))
        outcomes.append(outcome)
    return outcomes


def _process_entry(*args: object) -> None:
    status, _ = execute_one(*args)
    raise SystemExit(BUSY_EXIT if status == "busy" else 0)


def _local_processes(specs: Sequence[RunSpec], ctx: LaunchContext) -> list[RunOutcome]:
    """One fresh process per run, at most `workers` at once; a dead worker fails only its run."""
    context = multiprocessing.get_context("spawn")
    store = RunStore(ctx.out)
    pending = list(enumerate(specs))
    running: dict[int, tuple[multiprocessing.Process, RunSpec, float]] = {}
    results: dict[int, RunOutcome] = {}
    while pending or running:
        while pending and len(running) < ctx.workers:
            index, spec = pending.pop(0)
            if not ctx.needs(store, spec):
                results[index] = outcome_from_store(spec, store, "skipped", 0.0)
                report(results[index], len(results), len(specs))
                continue
            process = context.Process(
                target=_process_entry,
                args=worker_args(spec, ctx, ctx.threads_per_run()),
                daemon=False,
            )
            process.start()
            running[index] = (process, spec, time.perf_counter())
        time.sleep(0.2)
        for index, (process, spec, started) in list(running.items()):
            if process.is_alive():
                continue
            process.join()
            del running[index]
            seconds = time.perf_counter() - started
            state = store.state(spec.run_id)
            if state in ("done", "failed"):
                status = state
            elif process.exitcode == BUSY_EXIT:
                status = "busy"
            else:
                store.record_failure(
                    spec.run_id,
                    f"worker process exited with code {process.exitcode} before finishing "
                    "(killed, e.g. out of memory?)",
                )
                status = "failed"
            results[index] = outcome_from_store(spec, store, status, seconds)
            report(results[index], len(results), len(specs))
    return [results[i] for i in range(len(specs))]


@LAUNCHERS.register("dry_run")
def dry_run(specs: Sequence[RunSpec], ctx: LaunchContext) -> list[RunOutcome]:
    """Print each run and its state; run and write nothing."""
    table = Table(title=f"dry run: {len(specs)} run(s) in {ctx.out}")
    for column in ("run_id", "method", "dataset", "imbalance", "seed", "steps", "state"):
        table.add_column(column)
    store = RunStore(ctx.out)
    outcomes = []
    for spec in specs:
        state = store.state(spec.run_id)
        table.add_row(
            spec.run_id,
            escape(spec.label),
            spec.dataset,
            f"{spec.imbalance:g}",
            str(spec.seed),
            str(spec.steps),
            state,
        )
        outcomes.append(RunOutcome(spec, state, 0.0))
    results_console.print(table)
    return outcomes


@LAUNCHERS.register("ray")
def ray_launcher(specs: Sequence[RunSpec], ctx: LaunchContext) -> list[RunOutcome]:
    """One Ray task per run; each task asks for its CPU threads and, on CUDA, one GPU."""
    try:
        import ray
    except ImportError:
        raise BenchmarkError(
            '--launcher ray needs Ray: pip install -e ".[ray]" (into this environment)'
        ) from None
    if not ray.is_initialized():
        ray.init(address=ctx.address, include_dashboard=False, log_to_driver=False)
    threads = ctx.threads_per_run() if ctx.threads is not None else 1
    task = ray.remote(num_cpus=threads, num_gpus=1 if ctx.device.type == "cuda" else 0)(execute_one)
    store = RunStore(ctx.out)
    futures = {}
    outcomes: dict[int, RunOutcome] = {}
    for index, spec in enumerate(specs):
        if not ctx.needs(store, spec):
            outcomes[index] = outcome_from_store(spec, store, "skipped", 0.0)
            report(outcomes[index], len(outcomes), len(specs))
            continue
        futures[task.remote(*worker_args(spec, ctx, threads, resolve=True))] = (index, spec)
    remaining = list(futures)
    while remaining:
        ready, remaining = ray.wait(remaining, num_returns=1)
        index, spec = futures[ready[0]]
        try:
            status, seconds = ray.get(ready[0])
        except ray.exceptions.RayError as error:  # the worker died or the task raised
            cause = str(error).strip().splitlines()[-1][:300]
            if store.state(spec.run_id) != "failed":
                store.record_failure(spec.run_id, f"Ray task failed: {cause}")
            status, seconds = "failed", 0.0
        outcomes[index] = outcome_from_store(spec, store, status, seconds)
        report(outcomes[index], len(outcomes), len(specs))
    return [outcomes[i] for i in range(len(specs))]
