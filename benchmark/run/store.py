"""The results store: the one module that knows the layout and protocol of a results directory.

    <out>/.missbench                  marks a MissBench results directory
    <out>/runs/<run_id>/              one content-addressed directory per run
        spec.json                     the run spec (its hash is the directory's name)
        checkpoint.pt                 the last validation's state, while the run is unfinished
        train_log.jsonl               training losses every few steps
        model.safetensors             the weights the default selection rule (full_val) chose
                                      (model.pt in runs made before)
        model.<rule>.safetensors      the weights another rule chose, where they differ
        model.json                    the model card: what rebuilding and applying it needs,
                                      and every rule's chosen step
        records.jsonl                 every evaluation as a self-describing record, the chosen
                                      checkpoints' under every rule
        corrupted.jsonl               test evaluations under corruptions (`--corruptions`),
                                      added to a finished run, rewritten whole each time
        <file>.damaged                what was set aside as damaged, appended to, never
                                      read as records: corrupted.jsonl's damaged lines (their
                                      evaluations are redone) and a damaged records.jsonl
                                      (its run is trained again)
        failed.json                   why the run failed (reason, type, traceback)
        done                          written last: the run is finished
        .lock                         held while a process executes the run
        tensorboard/                  TensorBoard scalars, with `--log tensorboard`
    <out>/frozen.json                 marks a frozen folder (`report --freeze`): its runs keep
                                      spec.json, train_log.jsonl, failed.json, done and their
                                      records as records.jsonl.gz / corrupted.jsonl.gz, no
                                      weights or checkpoints (read like the plain files)

States of a run: `done`, `failed`, `busy` (another process holds its lock), `incomplete` (a
checkpoint to resume from) and `pending` (nothing yet). Every file is written atomically
(temporary file + rename) and `done` last, so a reader never sees a half-written result and a
killed run resumes from its last checkpoint. Training, the launchers, `report` and the
qualitative figures read and write runs only through `RunStore`.

The lock is `filelock`'s: `flock` on local disks and on network file systems whose locking
works (NFS with lockd, Lustre, GPFS); where `flock` is missing (some FUSE and NFS `nolock`
mounts) or `fcntl` is absent, filelock falls back to a soft lock, a marker file that holds the
owner's pid and host. A soft lock left by a process that was killed on another host must be
removed by hand (`rm <out>/runs/<run_id>/.lock`); a flock vanishes with its process.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import filelock
import torch

from benchmark.core.records import HARNESS_VERSION, SELECTION_FULL_VAL, RunSpec
from benchmark.run.selection import owners
from benchmark.system.confine import write_target
from benchmark.system.errors import BenchmarkError, describe
from benchmark.system.io import (
    atomic_torch_save,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_jsonl,
    atomic_write_text,
    gzip_bytes,
    load_tensors,
    read_jsonl,
    read_jsonl_lines,
    remove_orphans,
)

log = logging.getLogger(__name__)

STALE_TMP_S = 3600.0
"""Age after which a temporary file outside a run directory is taken for a killed write's."""
RUNS = "runs"
SPEC = "spec.json"
CHECKPOINT = "checkpoint.pt"
TRAIN_LOG = "train_log.jsonl"
MODEL = "model.safetensors"
MODEL_CARD = "model.json"
LEGACY_MODEL = "model.pt"
RECORDS = "records.jsonl"
CORRUPTED = "corrupted.jsonl"
FAILED = "failed.json"
DAMAGED = ".damaged"
"""Suffix of the file beside a run file that keeps what was set aside from it as damaged."""
TUNE_DIR = "tune"
"""Where `tune --out X` writes its search (`X/tune/`): named here, below both `commands` (which
writes it) and `report` (which reads its search cost), so that the two cannot disagree."""
TUNE_PROTOCOL = "protocol.json"
TUNE_BEST = "best.json"
TUNE_TRIALS = "trials.csv"
TUNE_COST_CSV = "search_cost.csv"
TUNE_COST_MD = "search_cost.md"
TUNE_OUTPUTS = (TUNE_PROTOCOL, TUNE_TRIALS, TUNE_COST_CSV, TUNE_COST_MD, TUNE_BEST)
"""What `tune` writes beside its trials' runs (`benchmark.commands.tuning`, which owns them),
named here so that a freeze of a tune folder keeps them, with its studies (`*.db`)."""
TUNE_STUDY_SUFFIX = ".db"
TUNE_STUDY = f"*{TUNE_STUDY_SUFFIX}"


def tune_study_path(folder: Path, method: str) -> Path:
    """The SQLite file of `method`'s Optuna study in a tune folder (one per method)."""
    return folder / f"{method}{TUNE_STUDY_SUFFIX}"


CORRUPTED_FIELDS: dict[str, type | tuple[type, ...]] = {
    "selection": str,
    "split": str,
    "scenario": str,
    "corruption": str,
    "severity": int,
    "miou": (int, float),
}
"""What a `corrupted.jsonl` line needs to count as an evaluation (the fields that say which
evaluation it is, and its score); a line without them is damaged and its evaluation redone."""
DONE = "done"
LOCK = ".lock"
OUT_MARKER = ".missbench"
"""File that marks a directory as a MissBench results directory."""
FROZEN = "frozen.json"
"""File that marks a frozen folder: a study's records without weights, committed with its
report (`benchmark.report.freeze`)."""
GZ = ".gz"
FROZEN_PLAIN = (SPEC, TRAIN_LOG, FAILED)
"""What a frozen run keeps as it is (`done` is written last)."""
FROZEN_GZIPPED = (RECORDS, CORRUPTED)
"""What a frozen run keeps gzipped: the records, with a confusion matrix per test tile, are
most of a run's text (about 150 KB for a quick run on `synthetic`, 770 KB on `synthetic_4m`,
about 4.3x smaller gzipped)."""

STATES = ("done", "failed", "busy", "incomplete", "pending")


@dataclass
class StoredRun:
    """One run directory as the store found it."""

    run_id: str
    path: Path
    spec: dict[str, Any] | None
    """`spec.json` as written (None when it is missing or unreadable)."""
    state: str
    """One of `STATES`, or `unreadable` (spec or records could not be read)."""
    detail: str = ""
    """The failure reason (`failed`) or what could not be read (`unreadable`)."""
    records: list[dict[str, Any]] = field(default_factory=list)
    """Every evaluation record of a `done` run."""
    damaged: list[str] = field(default_factory=list)
    """What of a `done` run's records was kept out as damaged, one phrase per file named
    relative to the run folder (`corrupted.jsonl: 1 damaged line skipped`)."""

    @property
    def status(self) -> str:
        """The report's status text: `done`, `incomplete`, `failed: <why>`, `unreadable: ...`."""
        if self.state == "done":
            return "done"
        if self.state == "failed":
            return f"failed: {self.detail}" if self.detail else "failed"
        if self.state == "unreadable":
            return f"unreadable: {self.detail}"
        return "incomplete"


class RunStore:
    """Reads and writes the runs of one results directory (`--out`)."""

    def __init__(self, out: Path) -> None:
        self.out = Path(out)

    # ----------------------------------------------------------------- the results directory
    def run_dir(self, run_id: str) -> Path:
        """Where run `run_id` lives (it may not exist yet)."""
        return self.out / RUNS / run_id

    def check_writable(self) -> None:
        """Refuse, before anything is written, an `--out` that is a file, unwritable, or a
        non-empty directory that is not a MissBench results directory."""
        out = self.out
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
                f"--out {out}: non-empty directory without a {OUT_MARKER} marker (not a "
                "MissBench results directory); choose a new or empty directory"
            )

    def claim(self) -> None:
        """Create the results directory (if needed) and mark it as MissBench's; remove what
        writes killed long ago left at its top (leaderboards and reports are written there
        without a lock, so only temporary files older than `STALE_TMP_S` go)."""
        write_target(self.out).mkdir(parents=True, exist_ok=True)
        marker = write_target(self.out / OUT_MARKER)
        if not marker.exists():
            atomic_write_text(marker, "MissBench results directory (see results/README.md)\n")
        for folder in (self.out, self.out / "report"):
            if folder.is_dir():
                remove_orphans(folder, older_than_s=STALE_TMP_S)

    # ----------------------------------------------------------------- states and the lock
    def state(self, run_id: str) -> str:
        """done | failed | busy | incomplete | pending, from the run directory alone.

        Writes nothing: the lock is probed only when its file already exists.
        """
        directory = self.run_dir(run_id)
        if (directory / DONE).exists():
            return "done"
        if (directory / FAILED).exists():
            return "failed"
        if (directory / LOCK).exists() and _held_elsewhere(directory / LOCK):
            return "busy"
        if (directory / CHECKPOINT).exists():
            return "incomplete"
        return "pending"

    @contextlib.contextmanager
    def lock(self, run_id: str) -> Iterator[bool]:
        """An exclusive, non-blocking lock on the run; yields False if another holds it."""
        directory = write_target(self.run_dir(run_id))
        directory.mkdir(parents=True, exist_ok=True)
        lock = _acquire(directory / LOCK)
        if lock is None:
            yield False
            return
        try:
            remove_orphans(directory)
            yield True
        finally:
            lock.release()

    # ----------------------------------------------------------------- writes
    def write_spec(self, spec: RunSpec) -> None:
        """`spec.json`: what the run is (rewritten at every start; the content never changes:
        the requested selection rule is the request's, not the run's)."""
        plain = {k: v for k, v in spec.to_json().items() if k != "selection"}
        atomic_write_json(self.run_dir(spec.run_id) / SPEC, plain)

    def write_train_log(self, run_id: str, history: Sequence[dict[str, Any]]) -> None:
        """`train_log.jsonl`: the training losses so far."""
        atomic_write_jsonl(self.run_dir(run_id) / TRAIN_LOG, history)

    def append_train_log(self, run_id: str, row: dict[str, Any]) -> None:
        """One more `train_log.jsonl` line, as training goes (a running or crashed run shows
        its curve; `write_train_log` rewrites the file whole when a run starts and ends)."""
        with open(write_target(self.run_dir(run_id) / TRAIN_LOG), "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row, sort_keys=True, default=str) + "\n")

    def save_model(self, run_id: str, weights: dict[str, Any], card: dict[str, Any]) -> None:
        """`model.safetensors` (the default rule's weights) and `model.json` (its card)."""
        self._save_weights(run_id, MODEL, weights, card["selected_step"], SELECTION_FULL_VAL)
        atomic_write_json(self.run_dir(run_id) / MODEL_CARD, card)

    def save_selected(self, run_id: str, rule: str, weights: dict[str, Any], step: int) -> None:
        """`model.<rule>.safetensors`: the weights `rule` chose where they are not the default
        rule's (the card's `selected_steps` says which rules share them)."""
        self._save_weights(run_id, selected_model_name(rule), weights, step, rule)

    def _save_weights(
        self, run_id: str, name: str, weights: dict[str, Any], step: int, rule: str
    ) -> None:
        from safetensors.torch import save

        tensors = {k: v.detach().cpu().contiguous().clone() for k, v in weights.items()}
        metadata = {"run_id": run_id, "step": str(step), "selection": rule}
        atomic_write_bytes(self.run_dir(run_id) / name, save(tensors, metadata=metadata))

    def save_checkpoint(self, run_id: str, state: dict[str, Any]) -> None:
        """`checkpoint.pt`: everything a resumed run needs, stamped with run and harness."""
        stamped = {"run_id": run_id, "harness_version": HARNESS_VERSION, **state}
        atomic_torch_save(stamped, self.run_dir(run_id) / CHECKPOINT)

    def finish(self, run_id: str, records: Sequence[dict[str, Any]]) -> None:
        """Write the records, drop the checkpoint, then `done` (last, so readers trust it)."""
        directory = self.run_dir(run_id)
        atomic_write_jsonl(directory / RECORDS, records)
        (directory / CHECKPOINT).unlink(missing_ok=True)
        atomic_write_text(directory / DONE, datetime.now(UTC).isoformat() + "\n")

    def record_failure(self, run_id: str, error: BaseException | str, trace: str = "") -> str:
        """Write `failed.json` (reason, type, traceback) atomically; return the one-line reason.

        `error` is the exception a run raised, or a sentence for a worker that died.
        """
        if isinstance(error, BaseException):
            reason = describe(error, limit=500)
            kind = type(error).__name__
        else:
            reason, kind = error, "WorkerDied"
        atomic_write_json(
            self.run_dir(run_id) / FAILED,
            {
                "reason": reason,
                "type": kind,
                "traceback": trace,
                "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
            },
        )
        return reason

    def clear_failure(self, run_id: str) -> None:
        """Forget an earlier failure (the run is being retried)."""
        (self.run_dir(run_id) / FAILED).unlink(missing_ok=True)

    # ----------------------------------------------------------------- reads
    def failure_reason(self, run_id: str) -> str:
        """The recorded reason of a failed run (a placeholder when `failed.json` is damaged)."""
        try:
            return json.loads((self.run_dir(run_id) / FAILED).read_text(encoding="utf-8"))["reason"]
        except (OSError, ValueError, KeyError, TypeError):
            return "failed (no readable failed.json)"

    def jsonl_path(self, run_id: str, name: str) -> Path:
        """Where a run's JSON-lines file `name` is: the plain file, else its gzipped copy (a
        frozen folder's), else the plain path (absent)."""
        path = self.run_dir(run_id) / name
        gzipped = path.with_name(name + GZ)
        return gzipped if not path.exists() and gzipped.exists() else path

    def read_records(self, run_id: str) -> list[dict[str, Any]]:
        """The evaluation records of a finished run."""
        return read_jsonl(self.jsonl_path(run_id, RECORDS))

    def read_corrupted(self, run_id: str) -> list[dict[str, Any]]:
        """The run's intact evaluations under test-time corruptions ([] when none were made):
        each line stands alone, so a damaged one is skipped (`corrupted_lines`) and its
        evaluation counts as missing."""
        return self.corrupted_lines(run_id)[0]

    def corrupted_lines(self, run_id: str) -> tuple[list[dict[str, Any]], list[bytes]]:
        """`corrupted.jsonl` (or a frozen folder's `corrupted.jsonl.gz`) read line by line:
        the intact records and the damaged lines (not JSON, not an object, or lacking a
        `CORRUPTED_FIELDS` field of its type). Writes nothing."""
        path = self.jsonl_path(run_id, CORRUPTED)
        if not path.exists():
            return [], []
        return read_jsonl_lines(path, corrupted_intact)

    def set_aside_corrupted(self, run_id: str) -> list[dict[str, Any]]:
        """Move the damaged lines of the run's `corrupted.jsonl` to `corrupted.jsonl.damaged`
        (call with its lock held) and return the intact records; `corrupted.jsonl` is then
        rewritten atomically with those alone, so the evaluations the damaged lines held are
        missing and evaluated again. A frozen folder's gzipped records are never rewritten."""
        records, damaged = self.corrupted_lines(run_id)
        path = self.run_dir(run_id) / CORRUPTED
        if damaged and path.is_file():
            kept = set_aside(path, damaged)  # first: a kill in between duplicates, never loses
            atomic_write_jsonl(path, records)
            log.warning(
                "%s: %d damaged line(s) set aside in %s; their evaluations are missing and "
                "evaluated again",
                path,
                len(damaged),
                kept.name,
            )
        return records

    def add_corrupted(self, run_id: str, records: Sequence[dict[str, Any]]) -> None:
        """Add corrupted-test records to a finished run (call with its lock held): the file is
        rewritten whole and atomically, so a killed evaluation leaves the old one intact; its
        damaged lines are set aside first (`set_aside_corrupted`), never dropped."""
        if records:
            merged = [*self.set_aside_corrupted(run_id), *records]
            atomic_write_jsonl(self.run_dir(run_id) / CORRUPTED, merged)

    def _kept_out(self, run_id: str, skipped: int) -> list[str]:
        """What of the run's records is kept out as damaged: `skipped` damaged lines of its
        corrupted records, left where they are, and the lines set aside in `.damaged` files;
        one phrase per file, named relative to the run folder."""
        found = []
        if skipped:
            name = self.jsonl_path(run_id, CORRUPTED).name
            found.append(f"{name}: {skipped} damaged line(s) skipped")
        for path in sorted(self.run_dir(run_id).glob(f"*{DAMAGED}")):
            if path.is_file():
                lines = sum(1 for line in path.read_bytes().split(b"\n") if line.strip())
                found.append(f"{path.name}: {lines} line(s) set aside")
        return found

    def read_train_log(self, run_id: str) -> list[dict[str, Any]]:
        """The training log, or [] when it is missing or unreadable."""
        try:
            return read_jsonl(self.jsonl_path(run_id, TRAIN_LOG))
        except (OSError, ValueError):
            return []

    def freeze_run(self, run_id: str, dest: RunStore) -> list[Path]:
        """Copy what a report reads of the run into `dest` (a frozen folder): spec, training
        log, failure and records (gzipped), lines set aside as damaged (`*.damaged`, so the
        frozen report names them as the source's does), `done` last; never weights or
        checkpoints. The bytes are copied, not parsed, so a damaged run stays as damaged (and as
        reported).
        Returns the files written."""
        source, target = self.run_dir(run_id), dest.run_dir(run_id)
        written = []
        for name in FROZEN_PLAIN:
            if (source / name).is_file():
                atomic_write_bytes(target / name, (source / name).read_bytes())
                written.append(target / name)
        for name in FROZEN_GZIPPED:
            path = self.jsonl_path(run_id, name)
            if not path.is_file():
                continue
            data = path.read_bytes()
            gzipped = data if path.suffix == GZ else gzip_bytes(data)
            atomic_write_bytes(target / (name + GZ), gzipped)
            written.append(target / (name + GZ))
        for path in sorted(source.glob(f"*{DAMAGED}")):  # what the run's report names as set aside
            if path.is_file() and not path.is_symlink():
                atomic_write_bytes(target / path.name, path.read_bytes())
                written.append(target / path.name)
        if (source / DONE).is_file():
            atomic_write_bytes(target / DONE, (source / DONE).read_bytes())
            written.append(target / DONE)
        return written

    def selections(self, run_id: str) -> set[str]:
        """The selection rules a finished run has records of (none when they are unreadable)."""
        try:
            return {r["selection"] for r in self.read_records(run_id) if r.get("selection")}
        except (OSError, ValueError, TypeError, AttributeError, KeyError):
            return set()

    def done_for(self, run_id: str, selection: str) -> bool:
        """Whether the run is finished with records of `selection` (one finished before every
        rule was recorded lacks them for a rule other than its own, and is trained again)."""
        return self.state(run_id) == "done" and selection in self.selections(run_id)

    def model_path(self, run_id: str, selection: str = SELECTION_FULL_VAL) -> Path:
        """Where the weights `selection` chose are: `model.safetensors` for the default rule
        (`model.pt` in runs made before), `model.<rule>.safetensors` under the first rule that
        chose another step (the card's `selected_steps`). One line when the run kept none."""
        directory = self.run_dir(run_id)
        default = directory / MODEL if (directory / MODEL).exists() else directory / LEGACY_MODEL
        steps = self._selected_steps(run_id)
        if steps is None:  # made before every rule kept its model: one model, its spec's rule
            if selection != self._legacy_rule(run_id):
                raise BenchmarkError(
                    f"run {run_id} kept no model chosen by {selection!r} (it was trained before "
                    f"every selection rule was kept); run it again with --selection {selection}"
                )
            return default
        if selection not in steps:
            raise BenchmarkError(
                f"run {run_id} kept no model chosen by {selection!r} (its rules: "
                f"{', '.join(steps)}); run it again with --selection {selection}"
            )
        owner = owners(steps)[steps[selection]]
        return default if owner == SELECTION_FULL_VAL else directory / selected_model_name(owner)

    def has_model(self, run_id: str, selection: str = SELECTION_FULL_VAL) -> bool:
        """Whether the run kept the weights `selection` chose."""
        try:
            return self.model_path(run_id, selection).exists()
        except BenchmarkError:
            return False

    def load_model(self, run_id: str, selection: str = SELECTION_FULL_VAL) -> dict[str, Any]:
        """The weights `selection` chose, on the CPU (safetensors; `weights_only` for older
        runs)."""
        path = self.model_path(run_id, selection)
        try:
            tensors = load_tensors(path)
            return tensors if path.name != LEGACY_MODEL else tensors["model"]
        except Exception as error:  # safetensors, pickle and torch each raise their own kind
            raise BenchmarkError(
                f"{path}: unreadable model weights ({describe(error)}); delete the run's folder "
                "and run it again to make them"
            ) from None

    def _selected_steps(self, run_id: str) -> dict[str, int] | None:
        """The card's rule -> chosen step (None for runs made before it was kept)."""
        if not self.has_model_card(run_id):
            return None
        card = self.read_model_card(run_id)
        steps = card.get("selected_steps") if isinstance(card, dict) else None
        if steps is None:
            return None
        if not isinstance(steps, dict) or not all(
            isinstance(k, str) and k.isidentifier() and type(v) is int for k, v in steps.items()
        ):
            raise BenchmarkError(
                f"{self.run_dir(run_id) / MODEL_CARD}: selected_steps is not a table of rule "
                "name -> step"
            )
        return steps

    def _legacy_rule(self, run_id: str) -> str:
        """The one rule a run made before every rule was kept was selected by (its spec's)."""
        try:
            spec = json.loads((self.run_dir(run_id) / SPEC).read_text(encoding="utf-8"))
            return str(spec.get("selection", SELECTION_FULL_VAL))
        except (OSError, ValueError, AttributeError):
            return SELECTION_FULL_VAL

    def has_model_card(self, run_id: str) -> bool:
        """Whether the run keeps a model card (runs made since cards exist)."""
        return (self.run_dir(run_id) / MODEL_CARD).exists()

    def read_model_card(self, run_id: str) -> dict[str, Any]:
        """`model.json` of a finished run (one line when it is absent or unreadable)."""
        path = self.run_dir(run_id) / MODEL_CARD
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise BenchmarkError(
                f"{path.parent}: no model card ({MODEL_CARD}); only finished runs made by this "
                "version keep one (rerun the run to make it)"
            ) from None
        except (OSError, ValueError) as error:
            raise BenchmarkError(
                f"{path}: unreadable model card ({type(error).__name__})"
            ) from None

    def load_checkpoint(self, spec: RunSpec, device: torch.device) -> dict[str, Any] | None:
        """The run's checkpoint, validated as its own (None when there is none)."""
        if not (self.run_dir(spec.run_id) / CHECKPOINT).exists():
            return None
        self.validate_checkpoint(spec)
        path = self.run_dir(spec.run_id) / CHECKPOINT
        return torch.load(path, map_location=device, weights_only=True)

    def validate_checkpoint(self, spec: RunSpec) -> None:
        """Refuse (before anything is written) a checkpoint that is not this run's own."""
        path = self.run_dir(spec.run_id) / CHECKPOINT
        if not path.exists():
            return
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:
            raise BenchmarkError(
                f"{path}: unreadable checkpoint ({type(error).__name__}); delete it to restart "
                "that run from scratch"
            ) from None
        if not isinstance(state, dict) or state.get("run_id") != spec.run_id:
            found = state.get("run_id") if isinstance(state, dict) else None
            raise BenchmarkError(
                f"{path}: checkpoint of run {found!r}, expected {spec.run_id!r}; "
                "delete it to restart that run"
            )
        if state.get("harness_version") != HARNESS_VERSION:
            raise BenchmarkError(
                f"{path}: checkpoint from harness version {state.get('harness_version')!r}, "
                f"this is version {HARNESS_VERSION}; delete it to restart that run"
            )

    def load(self, run_id: str) -> StoredRun:
        """One run directory: its spec, state and (when done) its records."""
        path = self.run_dir(run_id)
        try:
            spec = json.loads((path / SPEC).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            return StoredRun(run_id, path, None, "unreadable", f"spec.json ({describe(error)})")
        mismatch = spec_mismatch(spec, run_id)
        if mismatch:
            return StoredRun(run_id, path, None, "unreadable", mismatch)
        state = self.state(run_id)
        if state == "failed":
            return StoredRun(run_id, path, spec, state, self._failure_detail(run_id))
        if state != "done":
            return StoredRun(run_id, path, spec, state)
        try:
            records = self.read_records(run_id)
        except (OSError, ValueError) as error:
            return StoredRun(run_id, path, spec, "unreadable", f"records ({describe(error)})")
        try:
            corrupted, skipped = self.corrupted_lines(run_id)
            records += corrupted
            damaged = self._kept_out(run_id, len(skipped))
        except OSError as error:  # the clean results stand; say what is lost
            log.warning("run %s: %s unreadable (%s); ignored", run_id, CORRUPTED, describe(error))
            damaged = [f"{CORRUPTED}: unreadable ({describe(error)}), ignored"]
        return StoredRun(run_id, path, spec, "done", records=records, damaged=damaged)

    def damage(self, run_id: str) -> str | None:
        """Why a `done` run cannot be trusted (unreadable or empty records, a spec that does
        not hash to its directory), or None when it is intact."""
        run = self.load(run_id)
        if run.state == "unreadable":
            return run.status
        if run.state == "done" and not run.records:
            return "unreadable: records.jsonl is empty"
        return None

    def reopen(self, run_id: str) -> None:
        """Take a damaged `done` run back to pending so it is trained again (lock held): its
        `done` marker and whatever stands where its records belong are removed, a records
        file's bytes set aside in `records.jsonl.damaged` first (the rule of damaged
        corrupted lines, `set_aside_corrupted`: kept, never read as records)."""
        directory = self.run_dir(run_id)
        (directory / DONE).unlink(missing_ok=True)
        records = directory / RECORDS
        if records.is_dir() and not records.is_symlink():
            shutil.rmtree(records)
            return
        if records.is_file() and not records.is_symlink() and records.stat().st_size:
            set_aside(records, [records.read_bytes()])
        records.unlink(missing_ok=True)

    def _failure_detail(self, run_id: str) -> str:
        reason = self.failure_reason(run_id)
        return "" if reason.startswith("failed (") else reason

    def scan(self) -> list[StoredRun]:
        """Every run directory under `runs/`, sorted by run id."""
        root = self.out / RUNS
        names = sorted(p.name for p in root.glob("*") if p.is_dir()) if root.is_dir() else []
        return [self.load(name) for name in names]


def read_frozen(out: Path) -> dict[str, Any]:
    """A frozen folder's `frozen.json` ({} for any other folder, or when it is unreadable)."""
    try:
        data = json.loads((Path(out) / FROZEN).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def frozen_changes(out: Path) -> list[str]:
    """The run files (and a tune folder's outputs) of a frozen folder that differ from what was
    frozen (edited, missing or added, relative to `out`); [] when it is intact or not a frozen
    folder."""
    recorded = read_frozen(out).get("sha256")
    if not isinstance(recorded, dict):
        return []
    root = Path(out)
    present = {str(p.relative_to(root)) for p in (root / RUNS).rglob("*") if p.is_file()}
    present |= {p.name for p in tune_files(root)}  # a frozen tune folder's studies and tables
    changed = [
        name for name, digest in recorded.items()
        if name not in present or file_sha256(root / name) != digest
    ]  # fmt: skip
    return sorted(changed + sorted(present - set(recorded)))


def tune_files(folder: Path) -> list[Path]:
    """A tune folder's outputs and studies (none where `folder` is no tune folder)."""
    folder = Path(folder)
    if not (folder / TUNE_PROTOCOL).is_file():
        return []
    named = [folder / name for name in TUNE_OUTPUTS]
    found = [*named, *sorted(folder.glob(TUNE_STUDY))]
    return [p for p in found if p.is_file() and not p.is_symlink()]


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes (hex)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def spec_mismatch(spec: Any, run_id: str) -> str:
    """Why `spec` (a parsed spec.json) does not belong to the directory `run_id`, or ''.

    Run directories are content-addressed: an edited spec.json would move a run's results under
    another method's name, so a spec must hash to its directory's id.
    """
    try:
        parsed = RunSpec.from_json(spec)
        recomputed, legacy = parsed.run_id, parsed.legacy_run_id
    except (TypeError, KeyError, ValueError, AttributeError) as error:
        return f"spec.json is not a run spec ({type(error).__name__})"
    if spec.get("run_id") != run_id or run_id not in (recomputed, legacy):
        return f"spec.json does not hash to this run id (it hashes to {recomputed}; edited?)"
    return ""


def corrupted_intact(row: dict[str, Any]) -> bool:
    """Whether a `corrupted.jsonl` object has every `CORRUPTED_FIELDS` field of its type."""
    return all(
        isinstance(row.get(name), kind) and not isinstance(row.get(name), bool)
        for name, kind in CORRUPTED_FIELDS.items()
    )


def set_aside(path: Path, lines: Sequence[bytes]) -> Path:
    """Append `lines` (raw, one per line) to `<path>.damaged` beside `path`, keeping what an
    earlier set-aside put there; the file is rewritten atomically. Returns its path."""
    target = path.with_name(path.name + DAMAGED)
    before = target.read_bytes() if target.exists() else b""
    atomic_write_bytes(target, before + b"".join(line.rstrip(b"\n") + b"\n" for line in lines))
    return target


def selected_model_name(rule: str) -> str:
    """`model.<rule>.safetensors`: the weights a rule chose that are not the default rule's."""
    return f"model.{rule}.safetensors"


def _acquire(path: Path) -> filelock.BaseFileLock | None:
    """Take the lock at `path` without waiting; None when another process holds it.

    Current filelock falls back to a soft lock by itself where `flock` is missing; older
    releases raise NotImplementedError there (leaving `path` behind), so the soft lock then
    lives beside it.
    """
    lock: filelock.BaseFileLock = filelock.FileLock(path, timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        return None
    except NotImplementedError:
        lock = filelock.SoftFileLock(path.with_name(path.name + ".soft"), timeout=0)
        try:
            lock.acquire()
        except filelock.Timeout:
            return None
    return lock


def _held_elsewhere(path: Path) -> bool:
    """Whether another process holds the lock file `path` (probed without creating anything;
    a lock that cannot even be opened, e.g. on a read-only copy of the results, is not held)."""
    try:
        lock = _acquire(path)
    except OSError:
        return False
    if lock is None:
        return True
    lock.release()
    return False
