"""Launchers: how a list of runs gets executed. The results store is the only coordination.

- `local`: in this process, one run after another (or `--workers N` processes, one per run);
- `dry_run`: prints what would run and each run's state, runs nothing, writes nothing;
- `ray`: one Ray task per run with its CPU/GPU request (`pip install -e ".[ray]"`), on a local
  instance or a cluster (`--address auto`); workers write into the shared results directory.
  A job whose worker or node is lost (the node died or left, the worker crashed) is submitted
  again by the launcher, at most `LOST_WORKER_RETRIES` times per run, and resumes from the run's
  checkpoint in the shared directory; each retry is logged, and so is the run's outcome line
  ("retried N time(s) after its worker was lost"). Ray's own task retries are off, so that no
  retry goes unnamed. A retried job that finds the run locked waits up to `LOCK_WAIT_S` for the
  lost worker's lock to be freed (a lock on a network file system outlives its client briefly).

Every launcher goes through the same results store (`benchmark.run.store`): a per-run lock, a
`done` marker written last, `failed.json` for isolated failures, resume from `checkpoint.pt`.
A worker process (or Ray task) imports the plugins and the modules that registered the sweep's
methods and datasets before it runs (`benchmark.core.plugins`).

A launcher schedules two kinds of job per run: `train` (the run executor: train, select,
evaluate, or skip a finished run) and, when `--corruptions` asks for evaluations a finished
run lacks, `corrupted` (`run.corrupted`: the run's stored model on the corrupted test split)
after its training, or alone for a run finished before. A run's outcome is reported once, when
its last job ends.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.markup import escape
from rich.table import Table

from benchmark.core.plugins import import_modules
from benchmark.core.records import RunSpec
from benchmark.core.registry import Registry
from benchmark.corrupt.tile import TileCorruption
from benchmark.run.corrupted import corrupted_evaluation_job, corruptions_pending
from benchmark.run.execution import Execution
from benchmark.run.store import RunStore
from benchmark.run.train import RunExecutor, RunOutcome
from benchmark.system.confine import confined_to
from benchmark.system.environment import run_roots
from benchmark.system.errors import BenchmarkError
from benchmark.system.progress import results_console, setup_logging

log = logging.getLogger(__name__)

BUSY_EXIT = 3

TRAIN, CORRUPTED = "train", "corrupted"
"""The jobs a launcher schedules for a run (module docstring)."""
FINISHED = ("done", "skipped")
"""Outcomes of a training job after which the run is finished."""
CORRUPTED_BUSY = "its corrupted evaluation runs in another launcher"
LOST_WORKER_RETRIES = 3
"""How often the Ray launcher submits a run's job again after its worker or node was lost."""
LOCK_WAIT_S = 120.0
"""How long a retried Ray job waits for the lost worker's lock on its run to be freed (an NFSv4
lease, after which the server frees a dead client's locks, is 90 s by default)."""
LOCK_POLL_S = 2.0
"""How often a retried Ray job that found its run locked is submitted again, within LOCK_WAIT_S."""


@dataclass(frozen=True)
class LaunchContext:
    """What a launcher is given besides the runs: where and how they execute, and what this
    sweep's workers import and evaluate."""

    execution: Execution
    modules: tuple[str, ...] = ()
    """Modules a worker imports before it runs: those that registered the sweep's methods,
    datasets and corruptions outside the plugin entry points (`plugins.importable_modules`)."""
    corruptions: tuple[TileCorruption, ...] = ()
    """Test-time corruptions every finished run is evaluated under (`--corruptions`)."""

    def first_job(self, store: RunStore, spec: RunSpec) -> str | None:
        """The job `spec` needs first: `train` when it is unfinished (or finished without
        records of the requested selection rule), `corrupted` when it is finished but lacks a
        corrupted evaluation that was asked for and applies to its dataset, else None."""
        if not store.done_for(spec.run_id, spec.selection):
            return TRAIN
        return CORRUPTED if corruptions_pending(spec, store, self.corruptions) else None

    def after_training(self, store: RunStore, outcome: RunOutcome) -> str | None:
        """The job that follows a training job that ended with `outcome`: the finished run's
        corrupted evaluation, when one is pending."""
        finished = outcome.status in FINISHED
        if finished and corruptions_pending(outcome.spec, store, self.corruptions):
            return CORRUPTED
        return None


Launcher = Callable[[Sequence[RunSpec], LaunchContext], list[RunOutcome]]
LAUNCHERS: Registry[Launcher] = Registry("launcher")


def outcome_from_store(spec: RunSpec, store: RunStore, status: str, seconds: float) -> RunOutcome:
    """How a worker reports back: its status, with the failure reason from the store."""
    if status == "failed":
        return RunOutcome(spec, status, seconds, store.failure_reason(spec.run_id))
    if status == "busy":
        return RunOutcome(spec, status, seconds, "running in another launcher")
    return RunOutcome(spec, status, seconds)


def report(outcome: RunOutcome, number: int, total: int, retries: int = 0) -> None:
    """The run's outcome line; `retries`: how often its job was submitted again after its
    worker was lost."""
    spec = outcome.spec
    states = {
        "done": f"finished in {outcome.seconds:.0f} s",
        "skipped": "skipped (done)",
        "failed": f"FAILED: {outcome.error}",
        "busy": "busy (locked by another launcher; not run here)",
    }
    factor = f" · imbalance {spec.imbalance:g}" if spec.imbalance != 1 else ""
    level = logging.WARNING if outcome.status == "failed" else logging.INFO
    retried = f" · retried {retries} time(s) after its worker was lost" if retries else ""
    log.log(
        level,
        "[%d/%d] %s · %s%s · seed %d · run %s: %s%s",
        number,
        total,
        spec.label,
        spec.dataset_label,
        factor,
        spec.seed,
        spec.run_id,
        states.get(outcome.status, outcome.status),
        retried,
    )


def run_job(
    job: str, spec: RunSpec, ctx: LaunchContext, store: RunStore, show_progress: bool = True
) -> RunOutcome:
    """Run one job of `spec` in this process."""
    execution = ctx.execution
    if job == TRAIN:
        return RunExecutor(
            spec,
            execution.data_root,
            store,
            execution.device,
            show_progress=show_progress,
            retry_failed=execution.retry_failed,
            tensorboard=execution.tensorboard,
        ).execute()
    if job != CORRUPTED:
        raise BenchmarkError(f"unknown launcher job {job!r}; expected {TRAIN} or {CORRUPTED}")
    start = time.perf_counter()
    status = corrupted_evaluation_job(
        spec, store, execution.data_root, execution.device, ctx.corruptions
    )
    error = CORRUPTED_BUSY if status == "busy" else ""
    return RunOutcome(spec, status, time.perf_counter() - start, error)


class RunJobs:
    """Each run's jobs in one launch: which comes next, and the run's outcome over its jobs,
    reported once, when its last job ends."""

    def __init__(self, specs: Sequence[RunSpec], ctx: LaunchContext, store: RunStore) -> None:
        self.specs, self.ctx, self.store = list(specs), ctx, store
        self._trained: dict[int, RunOutcome] = {}
        self._results: dict[int, RunOutcome] = {}
        self.retries: dict[int, int] = {}
        """How often each run's jobs were submitted again after their worker was lost."""

    def first(self, index: int) -> str | None:
        """The job run `index` needs now (decided when its turn comes: another launcher may
        have finished it meanwhile); a run that needs none is reported as skipped."""
        spec = self.specs[index]
        job = self.ctx.first_job(self.store, spec)
        if job is None:
            self._finish(index, outcome_from_store(spec, self.store, "skipped", 0.0))
        return job

    def ended(self, index: int, job: str, outcome: RunOutcome) -> str | None:
        """Note how `job` of run `index` ended; returns the run's next job, if any."""
        if job == TRAIN:
            following = self.ctx.after_training(self.store, outcome)
            if following is not None:
                self._trained[index] = outcome
                return following
            self._finish(index, outcome)
            return None
        trained = self._trained.pop(index, RunOutcome(outcome.spec, "skipped", 0.0))
        seconds = trained.seconds + outcome.seconds
        if outcome.status in ("busy", "failed"):  # the run's results are incomplete: say so
            self._finish(index, RunOutcome(outcome.spec, outcome.status, seconds, outcome.error))
        else:
            self._finish(index, RunOutcome(trained.spec, trained.status, seconds, trained.error))
        return None

    def outcomes(self) -> list[RunOutcome]:
        """Every run's outcome, in sweep order (call when every job has ended)."""
        return [self._results[i] for i in range(len(self.specs))]

    def _finish(self, index: int, outcome: RunOutcome) -> None:
        self._results[index] = outcome
        report(outcome, len(self._results), len(self.specs), self.retries.get(index, 0))


def execute_one(
    spec_json: dict,
    data_root: str,
    out: str,
    device: str,
    threads: int,
    retry_failed: bool,
    modules: tuple[str, ...] = (),
    tensorboard: bool = False,
    corruptions: tuple[TileCorruption, ...] = (),
    job: str = TRAIN,
) -> tuple[str, float]:
    """Worker entry (a process or a Ray task): run one job of one spec, return (status,
    seconds). Corruptions arrive as names and severities; the worker's own registry holds
    their records."""
    setup_logging()  # a fresh process: its progress lines need a handler
    import_modules(modules)
    torch.set_num_threads(threads)
    execution = Execution(
        Path(data_root),
        Path(out),
        torch.device(device),
        threads=threads,
        retry_failed=retry_failed,
        tensorboard=tensorboard,
    )
    ctx = LaunchContext(execution, modules=modules, corruptions=tuple(corruptions))
    with confined_to(run_roots(out, data_root)):
        outcome = run_job(job, RunSpec.from_json(spec_json), ctx, RunStore(execution.out), False)
    return outcome.status, outcome.seconds


def worker_args(
    spec: RunSpec, ctx: LaunchContext, threads: int, resolve: bool = False, job: str = TRAIN
) -> tuple:
    """`execute_one`'s arguments for `job` of `spec` (absolute paths for workers on other
    machines)."""
    execution = ctx.execution
    data_root, out = execution.data_root, execution.out
    if resolve:
        data_root, out = data_root.resolve(), out.resolve()
    return (
        spec.to_json(),
        str(data_root),
        str(out),
        str(execution.device),
        threads,
        execution.retry_failed,
        ctx.modules,
        execution.tensorboard,
        ctx.corruptions,
        job,
    )


@LAUNCHERS.register("local")
def local(specs: Sequence[RunSpec], ctx: LaunchContext) -> list[RunOutcome]:
    """Runs one after another in this process, or `--workers N` processes at once."""
    if ctx.execution.workers > 1:
        return _local_processes(specs, ctx)
    torch.set_num_threads(ctx.execution.threads_per_run())
    store = RunStore(ctx.execution.out)
    jobs = RunJobs(specs, ctx, store)
    for index, spec in enumerate(specs):
        job: str | None = TRAIN  # the executor itself skips a finished, intact run
        while job is not None:
            job = jobs.ended(index, job, run_job(job, spec, ctx, store))
    return jobs.outcomes()


def _process_entry(*args: object) -> None:
    status, _ = execute_one(*args)
    raise SystemExit(BUSY_EXIT if status == "busy" else 0)


def _local_processes(specs: Sequence[RunSpec], ctx: LaunchContext) -> list[RunOutcome]:
    """One fresh process per job, at most `workers` at once; a dead worker fails only its run
    (a dead corrupted evaluation leaves the finished run as it was)."""
    context = multiprocessing.get_context("spawn")
    execution = ctx.execution
    store = RunStore(execution.out)
    jobs = RunJobs(specs, ctx, store)
    queue: deque[tuple[int, str | None]] = deque((i, None) for i in range(len(specs)))
    running: dict[int, tuple[multiprocessing.Process, str, float]] = {}
    while queue or running:
        while queue and len(running) < execution.workers:
            index, job = queue.popleft()
            job = job or jobs.first(index)
            if job is None:
                continue
            process = context.Process(
                target=_process_entry,
                args=worker_args(specs[index], ctx, execution.threads_per_run(), job=job),
                daemon=False,
            )
            process.start()
            running[index] = (process, job, time.perf_counter())
        time.sleep(0.2)
        for index, (process, job, started) in list(running.items()):
            if process.is_alive():
                continue
            process.join()
            del running[index]
            seconds = time.perf_counter() - started
            outcome = _process_outcome(specs[index], job, process.exitcode, store, seconds)
            following = jobs.ended(index, job, outcome)
            if following is not None:  # next, before runs not started yet
                queue.appendleft((index, following))
    return jobs.outcomes()


def _process_outcome(
    spec: RunSpec, job: str, exitcode: int | None, store: RunStore, seconds: float
) -> RunOutcome:
    """What a worker process's exit says about its job."""
    died = (
        f"worker process exited with code {exitcode} before finishing (killed, e.g. out of memory?)"
    )
    if job == CORRUPTED:
        status = {0: "done", BUSY_EXIT: "busy"}.get(exitcode, "failed")
        return job_outcome(spec, job, store, status, seconds, f"corrupted evaluation: {died}")
    status = store.state(spec.run_id)  # a run another launcher finished meanwhile is done
    if status not in ("done", "failed"):
        if exitcode == BUSY_EXIT:
            status = "busy"
        else:
            store.record_failure(spec.run_id, died)
            status = "failed"
    return job_outcome(spec, job, store, status, seconds)


def job_outcome(
    spec: RunSpec, job: str, store: RunStore, status: str, seconds: float, error: str = ""
) -> RunOutcome:
    """A worker's job as an outcome: a training job's failure reason comes from the store; a
    corrupted evaluation's failure (`error`) never touches the finished run."""
    if job == TRAIN:
        return outcome_from_store(spec, store, status, seconds)
    if status == "busy":
        return RunOutcome(spec, status, seconds, CORRUPTED_BUSY)
    return RunOutcome(spec, status, seconds, error if status == "failed" else "")


@LAUNCHERS.register("dry_run")
def dry_run(specs: Sequence[RunSpec], ctx: LaunchContext) -> list[RunOutcome]:
    """Print each run and its state; run and write nothing."""
    table = Table(title=f"dry run: {len(specs)} run(s) in {ctx.execution.out}")
    for column in ("run_id", "method", "dataset", "imbalance", "seed", "steps", "state"):
        table.add_column(column)
    store = RunStore(ctx.execution.out)
    outcomes = []
    for spec in specs:
        state = store.state(spec.run_id)
        table.add_row(
            spec.run_id,
            escape(spec.label),
            escape(spec.dataset_label),
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
    """One Ray task per job; each task asks for its CPU threads and, on CUDA, one GPU. A job
    whose worker or node was lost is submitted again (module docstring)."""
    try:
        import ray
    except ImportError:
        raise BenchmarkError(
            '--launcher ray needs Ray: pip install -e ".[ray]" (into this environment)'
        ) from None
    execution = ctx.execution
    if not ray.is_initialized():
        ray.init(address=execution.address, include_dashboard=False, log_to_driver=False)
    threads = execution.threads_per_run() if execution.threads is not None else 1
    gpus = 1 if execution.device.type == "cuda" else 0
    # no Ray retries: the launcher retries a lost job itself, and names the run it retries
    task = ray.remote(num_cpus=threads, num_gpus=gpus, max_retries=0)(execute_one)
    lost = (
        ray.exceptions.WorkerCrashedError,
        ray.exceptions.NodeDiedError,
        ray.exceptions.LocalRayletDiedError,
    )
    store = RunStore(execution.out)
    jobs = RunJobs(specs, ctx, store)
    futures: dict = {}
    # retried jobs that found their run locked: (when to submit again, run, job), and when
    # each first found it locked
    later: list[tuple[float, int, str]] = []
    locked_since: dict[int, float] = {}

    def submit(index: int, job: str) -> None:
        args = worker_args(specs[index], ctx, threads, resolve=True, job=job)
        futures[task.remote(*args)] = (index, job)

    for index in range(len(specs)):
        job = jobs.first(index)
        if job is not None:
            submit(index, job)
    while futures or later:
        now = time.monotonic()
        for entry in [e for e in later if e[0] <= now]:
            later.remove(entry)
            submit(entry[1], entry[2])
        wait = max(0.0, min(e[0] for e in later) - now) if later else None
        if not futures:
            time.sleep(wait or 0.0)
            continue
        ready, _ = ray.wait(list(futures), num_returns=1, timeout=wait)
        if not ready:
            continue
        index, job = futures.pop(ready[0])
        spec = specs[index]
        try:
            status, seconds = ray.get(ready[0])
        except lost as error:
            if jobs.retries.get(index, 0) < LOST_WORKER_RETRIES:
                jobs.retries[index] = jobs.retries.get(index, 0) + 1
                log_lost_worker(spec, job, store, error, jobs.retries[index])
                submit(index, job)
                continue
            retried = f" (its worker was lost {LOST_WORKER_RETRIES + 1} times)"
            outcome = ray_failure(spec, job, store, error, retried)
        except ray.exceptions.RayError as error:  # the task raised, or Ray could not run it
            outcome = ray_failure(spec, job, store, error)
        else:
            now = time.monotonic()
            if status == "busy" and index in jobs.retries:  # the lost worker's lock, not freed
                if index not in locked_since:
                    log.info(
                        "run %s: the lost worker's lock is still held; trying again every "
                        "%.0f s for up to %.0f s",
                        spec.run_id,
                        LOCK_POLL_S,
                        LOCK_WAIT_S,
                    )
                since = locked_since.setdefault(index, now)
                if now - since < LOCK_WAIT_S:
                    later.append((now + LOCK_POLL_S, index, job))
                    continue
            locked_since.pop(index, None)
            outcome = job_outcome(spec, job, store, status, seconds)
        following = jobs.ended(index, job, outcome)
        if following is not None:
            submit(index, following)
    return jobs.outcomes()


def log_lost_worker(spec: RunSpec, job: str, store: RunStore, error: Exception, retry: int) -> None:
    """Say which run's job is submitted again after its Ray worker or node was lost, and where
    the retry starts from."""
    if job == CORRUPTED:
        start = "its corrupted evaluation is done again"
    else:
        start = {
            "incomplete": "it resumes from its checkpoint",
            "pending": "it starts over (no checkpoint yet)",
            "busy": "it resumes once the lost worker's lock on the run is freed",
        }.get(store.state(spec.run_id), "")
    log.warning(
        "%s · %s · seed %d · run %s: its Ray worker was lost (%s: %s); submitted again "
        "(retry %d of %d)%s",
        spec.label,
        spec.dataset_label,
        spec.seed,
        spec.run_id,
        type(error).__name__,
        error_message(error),
        retry,
        LOST_WORKER_RETRIES,
        f"; {start}" if start else "",
    )


def ray_failure(
    spec: RunSpec, job: str, store: RunStore, error: Exception, note: str = ""
) -> RunOutcome:
    """A job that Ray could not finish, as a failed outcome: a training job's failure is
    recorded in the store; a corrupted evaluation's leaves the finished run as it was."""
    cause = f"Ray task failed{note}: {error_message(error)}"
    if job == TRAIN and store.state(spec.run_id) != "failed":
        store.record_failure(spec.run_id, cause)
    return job_outcome(spec, job, store, "failed", 0.0, f"corrupted evaluation: {cause}")


def error_message(error: Exception, limit: int = 300) -> str:
    """The last line of a Ray error's text (its message; a task's traceback comes first), cut
    to `limit` characters at a sentence's end where it has one."""
    lines = str(error).strip().splitlines()
    if not lines:
        return type(error).__name__
    message = lines[-1]
    if len(message) <= limit:
        return message
    cut = message.rfind(". ", 0, limit)
    return message[: cut + 1] if cut > 0 else message[:limit]
