"""`tune`: the same hyperparameter search for every method (DomainBed's protocol), with Optuna.

Every method gets the same number of random trials over the distributions it declares beside
its hyperparameters (`HParam.search`, `core.hparams.Search`), the same successive-halving
schedule (`tuning.Schedule`) and selection on validation records only. One Optuna study per
method lives in `<out>/tune/<method>.db` (SQLite): it holds each trial's configuration, its
validation mIoU at every rung (intermediate values) and its final state (complete, pruned by
the schedule, or failed). Trial `n` of a method is drawn by a `RandomSampler` seeded from
(seed, method, n) alone, so the same seed proposes the same configurations, and a resumed
study (the same command again) draws only the trials it lacks; every trial at every rung is
ordinary content-addressed runs, so finished ones are reused. The runs are the source of
truth: scores, promotions and the outputs (`tuning` module docstring) are recomputed from their
records each time.
"""

from __future__ import annotations

import dataclasses
import logging
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock

from benchmark.commands.tuning import (
    COST_MD,
    TUNE_DIR,
    MethodResult,
    RungResult,
    TrialResult,
    TuneRequest,
    best_trial,
    check_protocol,
    cost_rows,
    promote,
    resolved_space,
    run_cost,
    trial_specs,
    validation_score,
    write_outputs,
    write_protocol,
)
from benchmark.core.plugins import DATASETS, METHODS, importable_modules
from benchmark.core.records import RunSpec
from benchmark.run.execution import Execution
from benchmark.run.launchers import LAUNCHERS, LaunchContext
from benchmark.run.store import TUNE_STUDY, RunStore, tune_study_path
from benchmark.run.sweep import preflight
from benchmark.system.confine import write_target
from benchmark.system.errors import BenchmarkError
from benchmark.system.progress import console, results_console

log = logging.getLogger(__name__)

TUNE_LAUNCHERS = ("local", "ray")
"""Launchers that run a rung's trials (`dry_run` has no results to promote from)."""
SPACE_ATTR = "space"
"""Study user attribute: the resolved search space the study was drawn from."""

Plans = Mapping[str, Sequence[tuple[int, dict[str, Any]]]]
"""Method -> its trials as (number, configuration), in number order."""


def tune(request: TuneRequest, execution: Execution) -> int:
    """Run (or resume) every method's study, where and as `execution` says (its runs go into
    `<out>/tune`), and write the tune folder's outputs; the exit status: 0 when every study is
    complete, 1 when a run is unfinished (interrupted, or running in another launcher) or a
    method has no trial that finished the schedule.

    Everything that can be checked is checked before anything is written: names and values,
    the protocol of studies already in the folder, their search spaces, the data.
    """
    launcher, data_root, out = execution.launcher, execution.data_root, execution.out
    if launcher not in TUNE_LAUNCHERS:
        raise BenchmarkError(f"tune --launcher {launcher!r}: expected one of {TUNE_LAUNCHERS}")
    folder = out / TUNE_DIR
    spaces = {m: resolved_space(m, request.preset) for m in request.methods}
    first = request.schedule.rungs[0]
    probe = [s for m in request.methods for s in trial_specs(request, m, 0, {}, first)]
    # the trials' runs live in the tune folder, so a report of <out> shows no trial and a
    # report of <out>/tune shows every one
    results_dir, store = RunStore(out), RunStore(folder)
    results_dir.check_writable()
    store.check_writable()
    check_protocol(folder, request)
    for method, space in spaces.items():
        check_study_space(folder, method, space)
    preflight(probe, data_root, store)

    results_dir.claim()
    store.claim()
    write_protocol(folder, request)
    optuna = quiet_optuna()
    studies = {m: open_study(folder, m, request, spaces[m]) for m in request.methods}
    plans = {m: draw_trials(folder, studies[m], request, m, spaces[m]) for m in request.methods}
    log.info(
        "tune %d method(s) x %d trials · %s · %s · preset %s · seed %d · out %s",
        len(request.methods),
        request.trials,
        request.schedule.describe(request.trials),
        request.dataset.label(),
        request.preset.name,
        request.seed,
        folder,
    )
    context = LaunchContext(
        dataclasses.replace(execution, out=folder),
        # what a worker process imports: the modules that registered the methods and dataset
        modules=importable_modules(
            [*map(METHODS.get, request.methods), DATASETS.get(request.dataset.name)]
        ),
    )

    def launch(index: int, specs: Sequence[RunSpec]) -> None:
        steps = request.schedule.rungs[index]
        log.info(
            "tune rung %d/%d: %d run(s) of %d steps",
            index + 1,
            len(request.schedule.rungs),
            len(specs),
            steps,
        )
        preflight(specs, data_root, store)
        LAUNCHERS.get(launcher)(list(specs), context)

    results = play(request, plans, store, launch)
    for method, result in results.items():
        record_study(studies[method], result, request, optuna)
    every = {**others(folder, request, store), **results}
    ordered = [every[m] for m in METHODS.names() if m in every]
    write_outputs(folder, ordered, request)
    show(ordered, request, folder)
    unfinished = [r.method for r in results.values() if not r.complete]
    if unfinished:
        console.print(
            f"{len(unfinished)} stud(ies) unfinished ({', '.join(unfinished)}): a run was "
            "interrupted or runs in another launcher; rerun the same command to go on"
        )
        return 1
    empty = [r.method for r in results.values() if r.best is None]
    if empty:
        console.print(f"[red]no trial finished the schedule[/red] for {', '.join(empty)}")
        return 1
    return 0


# ------------------------------------------------------------------------------ studies
def quiet_optuna() -> Any:
    """Optuna, imported here (only `tune` needs it), its per-trial INFO lines silenced: the
    launcher and `play` log each run and rung."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def storage_url(folder: Path, method: str) -> str:
    """The SQLite storage of `method`'s study."""
    return f"sqlite:///{tune_study_path(folder, method).resolve()}"


def check_study_space(folder: Path, method: str, space: Mapping[str, Any]) -> None:
    """Refuse to resume a study drawn from another search space (the declaration changed)."""
    if not tune_study_path(folder, method).exists():
        return
    optuna = quiet_optuna()
    try:
        stored = optuna.load_study(study_name=method, storage=storage_url(folder, method))
    except KeyError:  # the file exists, the study was never created in it
        return
    drawn = stored.user_attrs.get(SPACE_ATTR)
    if drawn is not None and drawn != dict(space):
        changed = sorted(k for k in set(drawn) | set(space) if drawn.get(k) != space.get(k))
        raise BenchmarkError(
            f"{tune_study_path(folder, method)} was drawn from another search space of {method} "
            f"({', '.join(changed)} changed); use another --out to tune it again"
        )


def open_study(folder: Path, method: str, request: TuneRequest, space: Mapping[str, Any]) -> Any:
    """Create or load `method`'s study; a new one records its protocol and space."""
    import optuna

    study = optuna.create_study(
        storage=storage_url(folder, method),
        study_name=method,
        direction="maximize",
        load_if_exists=True,
    )
    if SPACE_ATTR not in study.user_attrs:
        for key, value in request.protocol().items():
            study.set_user_attr(key, value)
        study.set_user_attr(SPACE_ATTR, dict(space))
    return study


def trial_seed(seed: int, method: str, number: int) -> int:
    """The sampler seed of trial `number`: a function of (seed, method, number) alone, so a
    resumed study draws what an uninterrupted one would have."""
    entropy = [seed, number, zlib.crc32(method.encode("utf-8"))]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def distributions(space: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Optuna distributions of a resolved space, in name order."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    made: dict[str, Any] = {}
    for name in sorted(space):
        entry = space[name]
        kind = entry["kind"]
        if kind == "categorical":
            made[name] = CategoricalDistribution(tuple(entry["choices"]))
        elif kind == "int":
            made[name] = IntDistribution(int(entry["low"]), int(entry["high"]))
        else:
            made[name] = FloatDistribution(entry["low"], entry["high"], log=kind == "log_uniform")
    return made


def suggest(trial: Any, name: str, dist: Any) -> Any:
    """Draw `name` from `dist` through the trial's sampler (or return its stored value)."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, log=dist.log)
    return trial.suggest_float(name, dist.low, dist.high, log=dist.log)


def draw_trials(
    folder: Path, study: Any, request: TuneRequest, method: str, space: Mapping[str, Any]
) -> list[tuple[int, dict[str, Any]]]:
    """The study's first `request.trials` trials as (number, configuration), drawing those it
    lacks; under a lock beside the study, so two launchers resuming it never both add one."""
    import optuna

    dists = distributions(space)
    with FileLock(str(write_target(tune_study_path(folder, method).with_suffix(".db.lock")))):
        existing = {t.number: t for t in study.get_trials(deepcopy=False)}
        for number in range(request.trials):
            frozen = existing.get(number)
            if frozen is not None and (
                frozen.state.is_finished() or set(dists) <= frozen.params.keys()
            ):
                continue
            seed = trial_seed(request.seed, method, number)
            study.sampler = optuna.samplers.RandomSampler(seed=seed)
            # a trial interrupted while it was drawn is completed (Optuna has no public handle
            # on a stored trial but its id)
            trial = study.ask() if frozen is None else optuna.trial.Trial(study, frozen._trial_id)
            if trial.number != number:
                raise BenchmarkError(
                    f"study {method}: drew trial {trial.number}, expected {number}"
                )
            for name, dist in dists.items():
                suggest(trial, name, dist)
        trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    return [(t.number, {k: t.params[k] for k in dists}) for t in trials[: request.trials]]


# ------------------------------------------------------------------------------ the schedule
def play(
    request: TuneRequest,
    plans: Plans,
    store: RunStore,
    launch: Callable[[int, Sequence[RunSpec]], None] | None = None,
) -> dict[str, MethodResult]:
    """Go through the schedule rung by rung for every method at once: launch the rung's runs
    (`launch`; None only reads what the store holds), score each trial from its validation
    records, promote the best `keep` share of each method. Stops at a rung with an unfinished
    run (its studies stay incomplete)."""
    schedule = request.schedule
    sizes = schedule.sizes(request.trials)
    results = {
        m: MethodResult(m, [TrialResult(m, n, dict(p)) for n, p in plan], complete=False)
        for m, plan in plans.items()
    }
    entering = {m: list(r.trials) for m, r in results.items()}
    for index, steps in enumerate(schedule.rungs):
        specs = {
            (trial.method, trial.number): trial_specs(
                request, trial.method, trial.number, trial.params, steps
            )
            for trials in entering.values()
            for trial in trials
        }
        if launch is not None:
            launch(index, [s for group in specs.values() for s in group])
        for trials in entering.values():
            for trial in trials:
                trial.rungs.append(
                    read_rung(specs[trial.method, trial.number], steps, store, request.selection)
                )
        if any(t.rungs[-1].state == "pending" for trials in entering.values() for t in trials):
            return results
        for method, trials in entering.items():
            scores = {t.number: t.rungs[-1].score for t in trials}
            if index + 1 < len(schedule.rungs):
                kept = set(promote(scores, sizes[index + 1]))
                entering[method] = [t for t in trials if t.number in kept]
            log_rung(
                method,
                index,
                steps,
                scores,
                entering[method] if index + 1 < len(schedule.rungs) else [],
                schedule.rungs,
            )
    for result in results.values():
        result.complete = True
        result.best = best_trial(result, schedule)
    return results


def read_rung(specs: Sequence[RunSpec], steps: int, store: RunStore, selection: str) -> RungResult:
    """A trial at one rung, from the store: its runs' state, validation score and cost."""
    ids = [s.run_id for s in specs]
    runs = [store.load(i) for i in ids]
    costs = [run_cost(s, r.records) for s, r in zip(specs, runs, strict=True) if r.state == "done"]
    if any(r.state == "failed" for r in runs):
        return RungResult(steps, ids, "failed", None, costs)
    if any(r.state != "done" for r in runs):
        return RungResult(steps, ids, "pending", None, costs)
    score = validation_score([rec for r in runs for rec in r.records], selection)
    return RungResult(steps, ids, "done" if score is not None else "pending", score, costs)


def log_rung(
    method: str,
    index: int,
    steps: int,
    scores: Mapping[int, float | None],
    kept: Sequence[TrialResult],
    rungs: Sequence[int],
) -> None:
    """One line per method and rung: its best trial so far and who goes on."""
    scored = {n: s for n, s in scores.items() if s is not None}
    failed = len(scores) - len(scored)
    best = max(scored, key=lambda n: (scored[n], -n)) if scored else None
    head = (
        f"best val mIoU {100 * scored[best]:.1f} (trial {best})" if best is not None else "no score"
    )
    tail = (
        f"; trials {', '.join(str(t.number) for t in kept)} go on to {rungs[index + 1]} steps"
        if kept
        else ""
    )
    log.info(
        "tune %s · rung %d/%d (%d steps): %s%s%s",
        method,
        index + 1,
        len(rungs),
        steps,
        head,
        f", {failed} failed" if failed else "",
        tail,
    )


def record_study(study: Any, result: MethodResult, request: TuneRequest, optuna: Any) -> None:
    """Write what the runs say into the study: each trial's validation mIoU per rung
    (intermediate values, by steps) and its runs; once the schedule is complete, its final
    state (complete with its last-rung score, pruned by the schedule, or failed). A trial
    already finished is left as it is."""
    stored = {t.number: t for t in study.get_trials(deepcopy=False)}
    last = len(request.schedule.rungs)
    for trial in result.trials:
        frozen = stored[trial.number]
        if frozen.state.is_finished():
            continue
        handle = optuna.trial.Trial(study, frozen._trial_id)
        for rung in trial.rungs:
            if rung.score is not None and rung.steps not in frozen.intermediate_values:
                handle.report(rung.score, rung.steps)
                handle.set_user_attr(f"runs@{rung.steps}", rung.run_ids)
        if not result.complete:
            continue
        final = trial.final
        if final is not None and len(trial.rungs) == last and final.score is not None:
            study.tell(trial.number, final.score)
        elif any(r.state == "failed" for r in trial.rungs):
            study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(trial.number, state=optuna.trial.TrialState.PRUNED)


def others(folder: Path, request: TuneRequest, store: RunStore) -> dict[str, MethodResult]:
    """The studies of the folder's other methods (tuned by earlier commands), read from their
    runs without launching anything, so the outputs cover every method of the folder."""
    optuna = quiet_optuna()
    found = sorted(p.stem for p in folder.glob(TUNE_STUDY))
    names = [m for m in found if m in METHODS and m not in request.methods]
    results = {}
    for method in names:
        try:
            study = optuna.load_study(study_name=method, storage=storage_url(folder, method))
        except KeyError:
            continue
        trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
        plan = [(t.number, dict(t.params)) for t in trials[: request.trials]]
        try:
            results.update(play(request, {method: plan}, store))
        except BenchmarkError as error:  # its method changed since: say so, keep the others
            log.warning("tune study %s left out of the outputs: %s", method, error)
    return results


def show(results: Sequence[MethodResult], request: TuneRequest, folder: Path) -> None:
    """Print the search-cost table and where the outputs are."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"search cost · {request.schedule.describe(request.trials)}")
    columns = ["method", "trials", "runs", "steps", "CPU s", "GPU s", "failed", "best val mIoU"]
    for column in columns:
        table.add_column(column)
    for row in cost_rows(results, request):
        score = row["best_val_miou"]
        table.add_row(
            escape(row["method"]),
            str(row["trials"]),
            str(row["runs"]),
            str(row["steps"]),
            f"{row['cpu_seconds']:.0f}",
            f"{row['gpu_seconds']:.0f}",
            str(row["failed_trials"]),
            "—" if score is None else f"{score:.1f}",
        )
    results_console.print(table)
    console.print(
        f"tune: [bold]{escape(str(folder / COST_MD))}[/bold] · best configurations: "
        f"{escape(str(folder / 'best.json'))} (use with `run --hparams-from {escape(str(folder))}`)"
    )
