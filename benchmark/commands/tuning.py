"""The tuning protocol without the search engine: schedule, scores, costs and tuned files.

`tune` (benchmark/commands/tune.py) runs DomainBed's protocol with Optuna: the same number of
random trials for every method over the distributions each method declares beside its
hyperparameters (`HParam.search`), the same successive-halving schedule, selection on
validation records only. What it reads and writes through this module needs no Optuna:

    <out>/tune/protocol.json    the settings every study in the folder shares
    <out>/tune/<method>.db      one Optuna study per method (SQLite)
    <out>/tune/runs/<run_id>/   every trial's runs at every rung (ordinary runs)
    <out>/tune/trials.csv       every trial at every rung: runs, state, validation mIoU
    <out>/tune/search_cost.csv  per method: trials, runs, steps, CPU/GPU seconds, best trial
    <out>/tune/search_cost.md   the same as a Markdown table, with the protocol and the best
                                configuration of each method
    <out>/tune/best.json        each finished method's best configuration (`run
                                --hparams-from` reads it)

A trial at a rung is ordinary content-addressed runs with the rung's steps, so a resumed
study reuses every run that finished. They are kept apart from `<out>/runs`, so a report of
`<out>` shows the runs made with the tuned values and a report of `<out>/tune` every trial.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from benchmark.core.hparams import Params, resolve_hparams, search_space
from benchmark.core.options import NamedConfig, format_value
from benchmark.core.plugins import METHODS
from benchmark.core.presets import Preset
from benchmark.core.records import CLEAN, SELECTION_FULL_VAL, RunSpec
from benchmark.run.selection import SELECTIONS
from benchmark.run.store import (
    TUNE_BEST,
    TUNE_COST_CSV,
    TUNE_COST_MD,
    TUNE_DIR,
    TUNE_PROTOCOL,
    TUNE_TRIALS,
)
from benchmark.run.sweep import SweepRequest, expand, expand_method_names
from benchmark.system.errors import BenchmarkError
from benchmark.system.io import atomic_write_json, atomic_write_text

PROTOCOL = TUNE_PROTOCOL
BEST = TUNE_BEST
TRIALS_CSV = TUNE_TRIALS
COST_CSV = TUNE_COST_CSV
COST_MD = TUNE_COST_MD
SAMPLER = "random"
"""DomainBed's random search: every trial's configuration is known before any result, so a
rung's trials of every method launch at once (local workers, Ray), and a trial's draw depends
only on (seed, method, trial number), which makes a resumed study propose the same ones."""

MAX_TRIALS = 10_000


# ------------------------------------------------------------------------------ schedule
DEFAULT_KEEP = 0.5
"""`--keep` where not given: half of each rung's trials go on to the next."""


@dataclass(frozen=True)
class Schedule:
    """Successive halving, the same for every method: all trials train `rungs[0]` steps, the
    best `keep` share of them (at least one) `rungs[1]` steps, and so on; one rung = no
    halving."""

    rungs: tuple[int, ...]
    keep: float = DEFAULT_KEEP

    def sizes(self, trials: int) -> list[int]:
        """How many trials enter each rung."""
        sizes = [trials]
        for _ in self.rungs[1:]:
            sizes.append(max(1, math.ceil(sizes[-1] * self.keep)))
        return sizes

    def describe(self, trials: int) -> str:
        """`8 x 100 -> 4 x 200 steps`."""
        parts = [f"{n} x {s}" for n, s in zip(self.sizes(trials), self.rungs, strict=True)]
        return " -> ".join(parts) + " steps"


def parse_rungs(text: str | Sequence[int] | None, default: int) -> tuple[int, ...]:
    """`100,200,400` -> (100, 200, 400): strictly increasing positive steps; None = the
    preset's steps alone."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return (default,)
    if isinstance(text, str):
        try:
            rungs = tuple(int(s) for s in text.split(",") if s.strip())
        except ValueError:
            rungs = ()
    else:
        rungs = tuple(text)
    bad = any(isinstance(r, bool) or not isinstance(r, int) or r < 1 for r in rungs)
    if not rungs or bad or list(rungs) != sorted(set(rungs)):
        raise BenchmarkError(
            f"--rungs {text!r}: expected strictly increasing positive step counts, e.g. 100,200,400"
        )
    return rungs


# ------------------------------------------------------------------------------ request
@dataclass(frozen=True)
class TuneRequest:
    """What `tune` was asked for: the same protocol for every method."""

    methods: tuple[str, ...]
    """Registered (canonical) method names."""
    dataset: NamedConfig
    preset: Preset
    trials: int
    seed: int
    schedule: Schedule
    selection: str = SELECTION_FULL_VAL

    def protocol(self) -> dict[str, Any]:
        """The settings every study of one tune folder shares (`protocol.json`)."""
        return {
            "dataset": self.dataset.label(),
            "preset": self.preset.name,
            "seed": self.seed,
            "trials": self.trials,
            "rungs": list(self.schedule.rungs),
            "keep": self.schedule.keep,
            "selection": self.selection,
            "sampler": SAMPLER,
        }


def make_tune_request(
    methods: Sequence[NamedConfig],
    dataset: NamedConfig,
    preset: Preset,
    trials: int,
    seed: int,
    rungs: str | Sequence[int] | None,
    keep: float | None,
    selection: str,
) -> TuneRequest:
    """Check every value of a `tune` request; one-line errors name the value. `keep` is None
    where not given (`DEFAULT_KEEP`); given with a single rung, where no trial is promoted, it
    applies to nothing and is refused."""
    if isinstance(trials, bool) or not isinstance(trials, int) or not 1 <= trials <= MAX_TRIALS:
        raise BenchmarkError(f"--trials must be an integer from 1 to {MAX_TRIALS}, got {trials!r}")
    given = keep is not None
    keep = DEFAULT_KEEP if keep is None else keep
    if isinstance(keep, bool) or not isinstance(keep, int | float) or not 0 < keep <= 1:
        raise BenchmarkError(f"--keep must be a share in (0, 1], got {keep!r}")
    names = expand_method_names(methods)
    fixed = [m.label() for m in names if m.overrides]
    if fixed:
        raise BenchmarkError(
            f"--methods {', '.join(fixed)}: tune takes method names without overrides (every "
            "method is searched over its declared space)"
        )
    SELECTIONS.get(selection)
    schedule = Schedule(parse_rungs(rungs, preset.steps), float(keep))
    if given and len(schedule.rungs) == 1:
        raise BenchmarkError(
            f"--keep {keep:g}: applies to nothing with one rung ({schedule.rungs[0]} steps: no "
            "trial goes on to another); give --rungs, e.g. 100,200,400, or leave --keep out"
        )
    return TuneRequest(
        methods=tuple(m.name for m in names),
        dataset=dataset,
        preset=preset,
        trials=trials,
        seed=seed,
        schedule=schedule,
        selection=selection,
    )


def check_protocol(folder: Path, request: TuneRequest) -> None:
    """Refuse a request whose protocol differs from the studies already in `folder`: every
    method of one tune folder is searched the same way."""
    path = folder / PROTOCOL
    if not path.exists():
        return
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise BenchmarkError(f"{path}: unreadable ({error})") from None
    wanted = request.protocol()
    differ = [k for k in wanted if stored.get(k) != wanted[k]]
    if differ:
        text = ", ".join(f"{k} {stored.get(k)!r} (asked: {wanted[k]!r})" for k in differ)
        raise BenchmarkError(
            f"{folder} holds studies with {text}; every method of a tune folder gets the same "
            "protocol: repeat those settings or use another --out"
        )


def write_protocol(folder: Path, request: TuneRequest) -> None:
    """Record the folder's protocol (first tune into it)."""
    if not (folder / PROTOCOL).exists():
        atomic_write_json(folder / PROTOCOL, request.protocol())


# ------------------------------------------------------------------------------ spaces
def resolved_space(method: str, preset: Preset) -> dict[str, dict[str, Any]]:
    """The method's search space with relative bounds resolved under the preset: name ->
    {kind, low, high} or {kind, choices}."""
    space = METHODS.get(method).hparam_space()
    bases = resolve_hparams(space, preset.hparams, owner=f"method {method!r}")
    searches = search_space(space)
    if not searches:
        raise BenchmarkError(f"method {method!r} declares no search space (HParam.search)")
    return {name: search.to_json(bases[name]) for name, search in searches.items()}


# ------------------------------------------------------------------------------ trial runs
def trial_specs(
    request: TuneRequest, method: str, number: int, params: Mapping[str, Any], steps: int
) -> list[RunSpec]:
    """The runs of trial `number` at a rung of `steps`: the method with the trial's values as
    overrides, on every scenario (a dedicated method: one run per scenario), the tune seed."""
    sweep = SweepRequest(
        methods=(NamedConfig(method, Params(params)),),
        datasets=(request.dataset,),
        seeds=(request.seed,),
        preset=request.preset,
        steps=steps,
        selection=request.selection,
    )
    label = f"{method} trial {number}"
    return [replace(spec, label=label) for spec in expand(sweep).specs]


def validation_score(records: Iterable[Mapping[str, Any]], selection: str) -> float | None:
    """The score a trial is ranked by, from validation records only: those of the checkpoint
    `selection` chose, clean data; `full_val` ranks by the mIoU with every modality present,
    any other rule by the mean over the scenarios (what each rule maximises). None when the
    records hold no such validation."""
    by_scenario: dict[str, tuple[int, float]] = {}
    for r in records:
        if (
            r["split"] != "val"
            or r["selection"] != selection
            or r.get("corruption", CLEAN) != CLEAN
        ):
            continue
        by_scenario.setdefault(r["scenario"], (int(r["n_present"]), float(r["miou"])))
    if not by_scenario:
        return None
    if selection == SELECTION_FULL_VAL:
        return max(by_scenario.values())[1] if by_scenario else None
    return sum(m for _, m in by_scenario.values()) / len(by_scenario)


@dataclass(frozen=True)
class RunCost:
    """What a finished run cost, from its records."""

    steps: int
    train_seconds: float
    eval_seconds: float
    device: str

    @property
    def seconds(self) -> float:
        """Training plus evaluation."""
        return self.train_seconds + self.eval_seconds

    @property
    def gpu(self) -> bool:
        """Whether the seconds were spent on an accelerator (not the CPU)."""
        return not self.device.startswith("cpu")


def run_cost(spec: RunSpec, records: Sequence[Mapping[str, Any]]) -> RunCost:
    """Training seconds plus every evaluation the run made once (intermediate validations,
    the chosen checkpoints' test), corrupted evaluations left out: what the search spent."""
    seen: set[tuple] = set()
    evaluation = 0.0
    train = 0.0
    device = "cpu"
    for r in records:
        if r.get("corruption", CLEAN) != CLEAN:
            continue
        train = max(train, float(r["train_seconds"]))
        device = str(r.get("device", device))
        key = (r["split"], r["checkpoint_step"], r["scenario"])
        if key not in seen:
            seen.add(key)
            evaluation += float(r["eval_seconds"])
    return RunCost(spec.steps, train, evaluation, device)


def promote(scores: Mapping[int, float | None], keep: int) -> list[int]:
    """The `keep` best trials by score (failed ones, None, never), ties to the lower number."""
    scored = [(s, n) for n, s in scores.items() if s is not None]
    return [n for _, n in sorted(scored, key=lambda p: (-p[0], p[1]))[:keep]]


# ------------------------------------------------------------------------------ results
@dataclass
class RungResult:
    """One trial at one rung."""

    steps: int
    run_ids: list[str]
    state: str
    """`done` (every run finished and scored), `failed` (a run failed), `pending` (a run is
    not finished: interrupted, or running in another launcher)."""
    score: float | None = None
    costs: list[RunCost] = field(default_factory=list)


@dataclass
class TrialResult:
    """One trial of a study: its configuration and how far it got."""

    method: str
    number: int
    params: dict[str, Any]
    rungs: list[RungResult] = field(default_factory=list)

    @property
    def final(self) -> RungResult | None:
        """Its highest rung."""
        return self.rungs[-1] if self.rungs else None


@dataclass
class MethodResult:
    """One method's study under the protocol."""

    method: str
    trials: list[TrialResult]
    complete: bool
    """Every rung of the schedule has its results (nothing pending)."""
    best: TrialResult | None = None
    """The best trial at the last rung (None while incomplete, or when every one failed)."""


def best_trial(result: MethodResult, schedule: Schedule) -> TrialResult | None:
    """The best-scored trial of the last rung, ties to the lower number."""
    last = len(schedule.rungs)
    finalists = {t.number: t.rungs[-1].score for t in result.trials if len(t.rungs) == last}
    chosen = promote(finalists, 1)
    return next(t for t in result.trials if t.number == chosen[0]) if chosen else None


def cost_rows(results: Sequence[MethodResult], request: TuneRequest) -> list[dict[str, Any]]:
    """One row per method: the search's own cost and its best trial."""
    rows = []
    for result in results:
        costs = [c for t in result.trials for r in t.rungs for c in r.costs]
        best = result.best
        rows.append(
            {
                "method": result.method,
                "trials": len(result.trials),
                "schedule": request.schedule.describe(request.trials),
                "runs": len(costs),
                "steps": sum(c.steps for c in costs),
                "train_seconds": round(sum(c.train_seconds for c in costs), 1),
                "eval_seconds": round(sum(c.eval_seconds for c in costs), 1),
                "cpu_seconds": round(sum(c.seconds for c in costs if not c.gpu), 1),
                "gpu_seconds": round(sum(c.seconds for c in costs if c.gpu), 1),
                "failed_trials": sum(
                    1 for t in result.trials if any(r.state == "failed" for r in t.rungs)
                ),
                "complete": result.complete,
                "best_trial": best.number if best else None,
                "best_val_miou": round(100 * best.final.score, 2)
                if best and best.final and best.final.score is not None
                else None,
                "best_hparams": json.dumps(best.params, sort_keys=True) if best else "",
                "selection": request.selection,
            }
        )
    return rows


def trial_rows(results: Sequence[MethodResult]) -> list[dict[str, Any]]:
    """Every trial at every rung it reached."""
    rows = []
    for result in results:
        for trial in result.trials:
            for index, rung in enumerate(trial.rungs):
                rows.append(
                    {
                        "method": result.method,
                        "trial": trial.number,
                        "rung": index,
                        "steps": rung.steps,
                        "state": rung.state,
                        "val_miou": None if rung.score is None else round(100 * rung.score, 2),
                        "seconds": round(
                            sum(c.train_seconds + c.eval_seconds for c in rung.costs), 1
                        ),
                        "run_ids": " ".join(rung.run_ids),
                        "hparams": json.dumps(trial.params, sort_keys=True),
                    }
                )
    return rows


def cost_markdown(rows: Sequence[Mapping[str, Any]], request: TuneRequest) -> str:
    """`search_cost.md`: the protocol, then one row per method with its search cost and its
    best configuration."""
    protocol = request.protocol()
    lines = [
        "# Hyperparameter search (`run_benchmark.py tune`)",
        "",
        f"Random search, {protocol['trials']} trials for every method over the distributions "
        f"each declares (`HParam.search`); schedule {request.schedule.describe(request.trials)}"
        f" (the best {100 * request.schedule.keep:g} % of each rung go on); dataset "
        f"`{protocol['dataset']}`, preset `{protocol['preset']}`, seed {protocol['seed']}. "
        f"Trials are ranked by validation mIoU under the `{request.selection}` selection rule; "
        "no test record is read. Seconds are the trial runs' training plus evaluation time "
        "from their records.",
        "",
        "| method | trials | runs | steps | CPU s | GPU s | failed | best trial | best val mIoU "
        "| best configuration |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for row in rows:
        best = json.loads(row["best_hparams"]) if row["best_hparams"] else {}
        config = ", ".join(f"{k}={_short(v)}" for k, v in best.items()) or (
            "(study incomplete)" if not row["complete"] else "(every trial failed)"
        )
        score = "—" if row["best_val_miou"] is None else f"{row['best_val_miou']:.1f}"
        trial = "—" if row["best_trial"] is None else str(row["best_trial"])
        lines.append(
            f"| {row['method']} | {row['trials']} | {row['runs']} | {row['steps']} | "
            f"{row['cpu_seconds']:.0f} | {row['gpu_seconds']:.0f} | {row['failed_trials']} | "
            f"{trial} | {score} | {config} |"
        )
    return "\n".join(lines) + "\n"


def _short(value: Any) -> str:
    """A value as the bracket syntax writes it, floats to 3 significant digits."""
    if isinstance(value, float):
        return f"{value:.3g}"
    return format_value(value)


def best_document(results: Sequence[MethodResult], request: TuneRequest) -> dict[str, Any]:
    """`best.json`: the protocol, then each method with a finished study and a best trial."""
    methods = {}
    for result in results:
        best = result.best
        if not result.complete or best is None or best.final is None:
            continue
        methods[result.method] = {
            "hparams": best.params,
            "trial": best.number,
            "val_miou": best.final.score,
            "steps": best.final.steps,
            "run_ids": best.final.run_ids,
        }
    return {"protocol": request.protocol(), "methods": methods}


def write_outputs(folder: Path, results: Sequence[MethodResult], request: TuneRequest) -> None:
    """Write trials.csv, search_cost.csv/.md and best.json (all from the studies and runs)."""
    import pandas as pd

    from benchmark.report.frames import write_csv

    rows = cost_rows(results, request)
    write_csv(pd.DataFrame(trial_rows(results)), folder / TRIALS_CSV)
    write_csv(pd.DataFrame(rows), folder / COST_CSV)
    atomic_write_text(folder / COST_MD, cost_markdown(rows, request))
    atomic_write_json(folder / BEST, best_document(results, request))


# ------------------------------------------------------------------------------ run --hparams-from
@dataclass(frozen=True)
class Tuned:
    """The tuned configurations `run --hparams-from` applies."""

    source: str
    methods: Mapping[str, Params]
    """Method -> its best trial's values (`SweepRequest.tuned`)."""
    protocol: Mapping[str, Any]
    """How they were tuned (dataset, preset, seed, trials, schedule, selection)."""


def read_tuned(path: str | Path) -> Tuned:
    """Read `best.json` from a tune folder, the `--out` that holds one, or the file itself."""
    path = Path(path)
    candidates = [path] if path.suffix == ".json" else [path / BEST, path / TUNE_DIR / BEST]
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        raise BenchmarkError(
            f"--hparams-from {path}: no {BEST} there (expected a tune folder, the --out of "
            f"`tune`, or a {BEST})"
        )
    try:
        data = json.loads(found.read_text(encoding="utf-8"))
        methods = {
            name: Params(entry["hparams"].items()) for name, entry in data["methods"].items()
        }
        protocol = dict(data.get("protocol", {}))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise BenchmarkError(
            f"--hparams-from {found}: not a tune {BEST} ({type(error).__name__})"
        ) from None
    return Tuned(str(path), methods, protocol)
