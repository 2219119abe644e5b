"""Which finished run a user means: `predict` and `export` take a run folder, a unique prefix of
its id, or a results directory with `--method` (and `--seed`, `--dataset` where several runs
match).

A run id is a hash nobody types from memory; what people know is the results directory they
passed to `run` and the method they trained. Every refusal is one line that names the folder
and what it holds, so the user's next command is obvious.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark.core.plugins import METHODS
from benchmark.run.store import MODEL_CARD, RUNS, SPEC
from benchmark.system.errors import BenchmarkError

MIN_PREFIX = 4
"""A run-id prefix names a run from this many characters on (as short git hashes do), so a
typo like `runs/a` is not taken for whichever run starts with `a`."""

SHOWN = 6
"""How many candidate runs a refusal lists before it says how many more there are."""


@dataclass(frozen=True)
class RunChoice:
    """What the user asked for besides the folder (None: any)."""

    method: str | None = None
    seed: int | None = None
    dataset: str | None = None

    def __post_init__(self) -> None:  # the Python API passes anything; say what was expected
        for flag, value in (("--method", self.method), ("--dataset", self.dataset)):
            if value is not None and not (isinstance(value, str) and value):
                raise BenchmarkError(f"{flag} {value!r}: expected a non-empty name")
        if self.seed is not None and (
            isinstance(self.seed, bool) or not isinstance(self.seed, int)
        ):
            raise BenchmarkError(f"--seed {self.seed!r}: expected an integer")

    def __bool__(self) -> bool:
        return any(value is not None for value in (self.method, self.seed, self.dataset))

    def flags(self) -> str:
        """The choice as the flags that gave it (`--method stars --seed 0`)."""
        given = (("--method", self.method), ("--seed", self.seed), ("--dataset", self.dataset))
        return " ".join(f"{flag} {value}" for flag, value in given if value is not None)


@dataclass(frozen=True)
class Candidate:
    """One run folder of a results directory, as much of it as the choice needs."""

    path: Path
    spec: dict[str, Any]
    finished: bool
    """It keeps a model card, so `load_model` can rebuild it (records-only frozen copies and
    unfinished runs do not)."""

    def describe(self) -> str:
        """`<id> (stars, seed 0, synthetic, quick)`: what tells runs apart."""
        spec = self.spec
        parts = [str(spec.get("label") or spec.get("method", "?"))]
        parts += [f"seed {spec.get('seed', '?')}", str(spec.get("dataset", "?"))]
        parts.append(str(spec.get("preset", "?")))
        if spec.get("train_modalities"):  # a dedicated (oracle) model of some modalities
            parts.append("trained on " + "+".join(spec["train_modalities"]))
        missing = spec.get("train_missing") or []
        if missing:
            parts.append("train-missing " + ",".join(f"{m}={r}" for m, r in missing))
        return f"{self.path.name} ({', '.join(parts)})"


def pick_run(target: Path | str, choice: RunChoice | None = None) -> Path:
    """The run folder `target` names: a run folder itself, a unique prefix of a run id under a
    `runs/` folder, or a results directory (or its `runs/`) narrowed by `choice` to one
    finished run. Anything else is refused with one line naming `target`."""
    target, choice = Path(target), choice or RunChoice()
    if target.is_dir() and _is_run_folder(target):
        if choice:
            _check_matches(Candidate(target, _read_spec(target), True), choice)
        return target
    if target.is_dir():
        root = target / RUNS if (target / RUNS).is_dir() else target
        if root is target and not _run_folders(target):
            raise BenchmarkError(
                f"{target}: neither a run folder (holding {MODEL_CARD}) nor a results directory "
                f"(holding {RUNS}/); give <out>/{RUNS}/<run_id>, or <out> with --method NAME"
            )
        return _choose(target, root, choice)
    if target.exists():
        raise BenchmarkError(
            f"{target}: not a folder; expected a run folder or a results directory"
        )
    return _by_prefix(target, choice)


def _is_run_folder(folder: Path) -> bool:
    return (folder / MODEL_CARD).exists() or (folder / SPEC).is_file()


def _run_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / SPEC).is_file())


def _read_spec(folder: Path) -> dict[str, Any]:
    try:
        spec = json.loads((folder / SPEC).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return spec if isinstance(spec, dict) else {}


def _candidates(root: Path) -> list[Candidate]:
    return [Candidate(p, _read_spec(p), (p / MODEL_CARD).exists()) for p in _run_folders(root)]


def _method_names(name: str) -> set[str]:
    """`name` and the registered method it stands for (an alias such as `zero_fill`)."""
    names = {name}
    if name in METHODS:
        names.add(METHODS.canonical(name))
    return names


def _mismatch(candidate: Candidate, choice: RunChoice) -> str | None:
    """Which of the choice's flags the run does not have (None: it matches)."""
    spec = candidate.spec
    if choice.method is not None:
        wanted = _method_names(choice.method)
        if not wanted & {str(spec.get("method")), str(spec.get("label"))}:
            return f"method {spec.get('label') or spec.get('method')}"
    if choice.seed is not None and spec.get("seed") != choice.seed:
        return f"seed {spec.get('seed')}"
    if choice.dataset is not None and spec.get("dataset") != choice.dataset:
        return f"dataset {spec.get('dataset')}"
    return None


def _check_matches(candidate: Candidate, choice: RunChoice) -> None:
    why = _mismatch(candidate, choice)
    if why:
        raise BenchmarkError(
            f"{candidate.path}: a run of {why}, not what {choice.flags()} asks for; give its "
            "results directory to pick by --method/--seed, or drop those flags"
        )


def _listing(candidates: list[Candidate]) -> str:
    shown = "; ".join(c.describe() for c in candidates[:SHOWN])
    more = len(candidates) - SHOWN
    return shown + (f"; and {more} more" if more > 0 else "")


def _choose(target: Path, root: Path, choice: RunChoice) -> Path:
    """One finished run of the results directory `target` (runs in `root`) matching `choice`."""
    runs = _candidates(root)
    finished = [c for c in runs if c.finished]
    if not finished:
        what = (
            f"{len(runs)} run(s) but none keeps a model ({MODEL_CARD}): unfinished, or a frozen "
            "copy that keeps records only"
            if runs
            else "no runs"
        )
        raise BenchmarkError(f"{target}: a results directory with {what}; nothing to load")
    if not choice:
        methods = sorted({str(c.spec.get("label") or c.spec.get("method")) for c in finished})
        raise BenchmarkError(
            f"{target}: a results directory with {len(finished)} finished run(s) of "
            f"{', '.join(methods)}; pick one with --method NAME (and --seed N where several "
            f"match), or give {root}/<run_id>"
        )
    matching = [c for c in finished if _mismatch(c, choice) is None]
    if len(matching) == 1:
        return matching[0].path
    if not matching:
        raise BenchmarkError(
            f"{target}: no finished run matches {choice.flags()}; it holds {_listing(finished)}"
        )
    raise BenchmarkError(
        f"{target}: {len(matching)} finished runs match {choice.flags()}: {_listing(matching)}; "
        "add --seed or --dataset, or give the run id (a unique prefix is enough)"
    )


def _by_prefix(target: Path, choice: RunChoice) -> Path:
    """The run whose id starts with `target`'s name, in `target`'s parent folder."""
    parent, prefix = target.parent, target.name
    if not (parent.is_dir() and (_run_folders(parent) or parent.name == RUNS)):
        raise BenchmarkError(
            f"{target}: no such folder; expected a run folder (<out>/{RUNS}/<run_id>) or a "
            "results directory"
        )
    if len(prefix) < MIN_PREFIX:
        raise BenchmarkError(
            f"{target}: no such run; a run-id prefix needs at least {MIN_PREFIX} characters"
        )
    matching = [c for c in _candidates(parent) if c.path.name.startswith(prefix)]
    if len(matching) == 1:
        if choice:
            _check_matches(matching[0], choice)
        return matching[0].path
    if not matching:
        raise BenchmarkError(f"{target}: no run under {parent} has an id starting with {prefix!r}")
    raise BenchmarkError(
        f"{target}: {len(matching)} runs have ids starting with {prefix!r}: "
        f"{_listing(matching)}; give more characters"
    )
