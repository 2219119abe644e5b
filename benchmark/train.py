"""Execute one run: train with periodic validation and checkpoints, select, evaluate, record.

The run directory is content-addressed (`<out>/runs/<run_id>/`); `done` is written last, so a
directory without it is resumed from `checkpoint.pt`, and one with it is skipped.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import json
import logging
import random
import resource
import time
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from benchmark.data import BatchSource, LabelFilter, training_batches
from benchmark.errors import BenchmarkError
from benchmark.evaluate import evaluate_split
from benchmark.imbalance import TIERS, FrequencyTiers, frequency_tiers, hide_tail_labels
from benchmark.io import atomic_torch_save, atomic_write_json, atomic_write_jsonl, read_jsonl
from benchmark.method import Method, TrainContext
from benchmark.metrics import ConfusionMatrix, tier_mean
from benchmark.progress import progress_bar
from benchmark.provenance import git_commit, versions
from benchmark.records import HARNESS_VERSION, SELECTION_FULL_VAL, EvalRecord, RunSpec
from benchmark.scenarios import Scenario, all_scenarios
from benchmark.spec import MASK
from benchmark.timing import PhaseClock
from datasets import DATASETS
from datasets.base import MultiModalDataset
from methods import METHODS

log = logging.getLogger(__name__)

DONE = "done"
FAILED = "failed.json"
LOCK = ".lock"
CHECKPOINT = "checkpoint.pt"
MODEL = "model.pt"
RECORDS = "records.jsonl"
TRAIN_LOG = "train_log.jsonl"
SPEC = "spec.json"
LOG_EVERY = 10


def run_dir(out: Path, spec: RunSpec) -> Path:
    return Path(out) / "runs" / spec.run_id


def is_done(out: Path, spec: RunSpec) -> bool:
    return (run_dir(out, spec) / DONE).exists()


def load_records(out: Path, spec: RunSpec) -> list[dict]:
    return read_jsonl(run_dir(out, spec) / RECORDS)


def open_dataset(spec: RunSpec, split: str, data_root: Path) -> MultiModalDataset:
    cls = DATASETS.get(spec.dataset)
    options = cls.make_options(dict(spec.dataset_options))
    return cls(data_root, split, options)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def class_frequencies(counts: np.ndarray, dataset: MultiModalDataset) -> tuple[float, ...]:
    counts = counts.astype(np.float64)
    if counts.sum() == 0:
        raise BenchmarkError(f"dataset {dataset.spec.name!r}: no labelled training pixels")
    return tuple(float(c) for c in counts / counts.sum())


@dataclass
class RunData:
    """The three splits plus what the harness derives from the training labels."""

    train: MultiModalDataset
    val: MultiModalDataset
    test: MultiModalDataset
    tiers: FrequencyTiers
    frequencies: tuple[float, ...]
    """Class shares of the labels the method trains on (after controlled imbalance)."""
    label_filter: LabelFilter | None


def prepare_data(spec: RunSpec, data_root: Path) -> RunData:
    train = open_dataset(spec, "train", data_root)
    val = open_dataset(spec, "val", data_root)
    test = open_dataset(spec, "test", data_root)
    ds = train.spec
    original = class_frequencies(train.class_pixel_counts(), train)
    tiers = frequency_tiers(original, ds.tier_thresholds, ds.eval_classes)
    if spec.imbalance <= 1:
        return RunData(train, val, test, tiers, original, None)

    def label_filter(mask: np.ndarray, index: int, origin: tuple[int, int]) -> np.ndarray:
        return hide_tail_labels(
            mask,
            spec.imbalance,
            tiers.tail,
            ds.ignore_index,
            index,
            train.tile_shape(index),
            origin,
        )

    counts = np.zeros(ds.num_classes, dtype=np.int64)
    for index in range(len(train)):
        mask = label_filter(train.load(index)[MASK], index, (0, 0))
        valid = mask[mask != ds.ignore_index]
        counts += np.bincount(valid.ravel(), minlength=ds.num_classes)[: ds.num_classes]
    return RunData(train, val, test, tiers, class_frequencies(counts, train), label_filter)


def build_method(spec: RunSpec, data: RunData, device: torch.device) -> Method:
    """The run's method, seeded and in training mode on `device` (shared with the profilers)."""
    context = TrainContext(
        total_steps=spec.steps,
        class_frequencies=data.frequencies,
        train_modalities=spec.train_modalities,
    )
    seed_everything(spec.seed)
    method = METHODS.get(spec.method)(data.train.spec, spec.hparams_dict, context)
    # channels-last convolution weights: convolutions then run in NHWC, measured 7-11 % faster
    # per training step and ~20 % faster inference on CPU (profile step), and the layout
    # cuDNN's tensor-core kernels prefer. A layout only: the same numbers up to rounding.
    method = method.to(device, memory_format=torch.channels_last)
    method.train()
    return method


def train_step(
    method: Method,
    sampler: BatchSource,
    step: int,
    device: torch.device,
    clock: PhaseClock | None = None,
) -> dict[str, float]:
    """One harness training step: batch `step` onto the device, update, finiteness check.

    `clock` (profiling only) marks where the time goes; the method marks its own phases.
    """
    batch = {k: v.to(device, non_blocking=True) for k, v in sampler.batch(step).items()}
    if clock is not None:
        clock.mark("data")
    losses = method.update(batch, step)
    if clock is not None:
        clock.mark("method_other")
    if not all(np.isfinite(v) for v in losses.values()):
        raise RunDiverged(f"diverged: non-finite loss at step {step + 1}: {losses}")
    if clock is not None:
        clock.mark("metrics")
    return losses


def process_peak_memory_mb(device: torch.device) -> float:
    """The process's high-water mark so far (CUDA allocator, or CPU max resident set): what a
    run record reports. `timing.peak_memory_mb` is the per-call peak the profilers use."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class RunDiverged(FloatingPointError):
    """Training produced a non-finite loss."""


@dataclass
class RunOutcome:
    """What happened to one run in this launch.

    status: `done` (trained now), `skipped` (was done), `failed` (raised, diverged, or its
    worker died; reason in `<run_dir>/failed.json`), `busy` (another launcher holds its lock).
    """

    spec: RunSpec
    records: list[dict]
    status: str
    seconds: float
    error: str = ""

    @property
    def skipped(self) -> bool:
        return self.status == "skipped"


def run_state(out: Path, spec: RunSpec) -> str:
    """done | failed | incomplete (has a checkpoint) | pending, from the run directory alone."""
    directory = run_dir(out, spec)
    if (directory / DONE).exists():
        return "done"
    if (directory / FAILED).exists():
        return "failed"
    if (directory / CHECKPOINT).exists():
        return "incomplete"
    return "pending"


def read_failure(out: Path, spec: RunSpec) -> str:
    try:
        return json.loads((run_dir(out, spec) / FAILED).read_text())["reason"]
    except (OSError, ValueError, KeyError):
        return "failed (no readable failed.json)"


def record_failure(directory: Path, error: BaseException | str, trace: str = "") -> str:
    """Write `failed.json` (reason, type, traceback) atomically; return the one-line reason."""
    if isinstance(error, BaseException):
        reason = f"{type(error).__name__}: {error}".splitlines()[0][:500]
        kind = type(error).__name__
    else:
        reason, kind = error, "WorkerDied"
    atomic_write_json(
        directory / FAILED,
        {
            "reason": reason,
            "type": kind,
            "traceback": trace,
            "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    )
    return reason


def validate_checkpoint(out: Path, spec: RunSpec) -> None:
    """Refuse (before anything is written) a checkpoint that is not this run's own."""
    path = run_dir(out, spec) / CHECKPOINT
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


@contextlib.contextmanager
def run_lock(directory: Path):
    """An exclusive, non-blocking lock on the run directory; yields False if held elsewhere.

    flock locks vanish with their process, so a killed launcher never leaves a stale lock.
    """
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / LOCK, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class RunExecutor:
    """Trains and evaluates one `RunSpec` into its run directory."""

    def __init__(
        self,
        spec: RunSpec,
        data_root: Path,
        out: Path,
        device: torch.device,
        show_progress: bool = True,
        retry_failed: bool = False,
    ) -> None:
        self.spec = spec
        self.out = Path(out)
        self.dir = run_dir(out, spec)
        self.device = device
        self.data_root = Path(data_root)
        self.show_progress = show_progress
        self.retry_failed = retry_failed

    def execute(self) -> RunOutcome:
        """Run unless done; a failure is recorded in the run directory, never raised."""
        start = time.perf_counter()
        if (self.dir / DONE).exists():
            return RunOutcome(self.spec, read_jsonl(self.dir / RECORDS), "skipped", 0.0)
        if (self.dir / FAILED).exists() and not self.retry_failed:
            return RunOutcome(self.spec, [], "failed", 0.0, read_failure(self.out, self.spec))
        with run_lock(self.dir) as locked:
            if not locked:
                return RunOutcome(self.spec, [], "busy", 0.0, "running in another launcher")
            if (self.dir / DONE).exists():  # finished by another launcher while we waited
                return RunOutcome(self.spec, read_jsonl(self.dir / RECORDS), "skipped", 0.0)
            (self.dir / FAILED).unlink(missing_ok=True)
            atomic_write_json(self.dir / SPEC, self.spec.to_json())
            try:
                records = self._train_and_evaluate()
            except (KeyboardInterrupt, SystemExit):
                raise
            except BenchmarkError:
                raise
            except Exception as error:  # isolate: record it, let the sweep go on
                reason = record_failure(self.dir, error, traceback.format_exc())
                log.error("run %s failed: %s", self.spec.run_id, reason)
                return RunOutcome(self.spec, [], "failed", time.perf_counter() - start, reason)
            atomic_write_jsonl(self.dir / RECORDS, records)
            (self.dir / CHECKPOINT).unlink(missing_ok=True)
            (self.dir / DONE).write_text(datetime.now(UTC).isoformat() + "\n")
        return RunOutcome(self.spec, records, "done", time.perf_counter() - start)

    # --------------------------------------------------------------------- internals
    def _build(self) -> tuple[Method, RunData]:
        data = prepare_data(self.spec, self.data_root)
        self.data = data
        return build_method(self.spec, data, self.device), data

    def _train_and_evaluate(self) -> list[dict]:
        spec = self.spec
        method, data = self._build()
        val, test = data.val, data.test
        hp = spec.hparams_dict
        sampler = training_batches(
            data.train,
            hp,
            spec.seed,
            spec.train_modalities,
            data.label_filter,
            self.device,
            spec.steps,
        )
        full = Scenario(frozenset(spec.train_modalities))
        state = self._resume(method)
        step, best, history, val_records = (
            state["step"],
            state["best"],
            state["history"],
            state["val_records"],
        )
        train_seconds = state["train_seconds"]
        with sampler, progress_bar(disable=not self.show_progress) as bar:
            self.bar = bar
            task = bar.add_task(
                f"train {spec.label} seed {spec.seed}", total=spec.steps, completed=step, info=""
            )
            tic = time.perf_counter()
            while step < spec.steps:
                losses = train_step(method, sampler, step, self.device)
                step += 1
                if step % LOG_EVERY == 0 or step == spec.steps:
                    elapsed = train_seconds + time.perf_counter() - tic
                    history.append({"step": step, "seconds": round(elapsed, 3), **losses})
                    rate = step / max(elapsed, 1e-9)
                    bar.update(
                        task, info=f"loss {losses.get('loss', float('nan')):.3f} {rate:.2f} it/s"
                    )
                bar.update(task, completed=step)
                if step % spec.val_every == 0 or step == spec.steps:
                    train_seconds += time.perf_counter() - tic
                    record, score = self._validate(method, val, full, step, train_seconds)
                    val_records.append(record)
                    if best is None or score > best["miou"]:
                        best = {
                            "step": step,
                            "miou": score,
                            "model": copy.deepcopy(method.state_dict()),
                        }
                    self._save_checkpoint(method, step, best, history, val_records, train_seconds)
                    tic = time.perf_counter()
            atomic_write_jsonl(self.dir / TRAIN_LOG, history)
            method.load_state_dict(best["model"])
            atomic_torch_save(
                {"run_id": spec.run_id, "step": best["step"], "model": best["model"]},
                self.dir / MODEL,
            )
            records = list(val_records)
            scenarios = (
                [full]
                if METHODS.get(spec.method).DEDICATED
                else all_scenarios(spec.train_modalities)
            )
            for split, dataset in (("val", val), ("test", test)):
                records += self._evaluate(
                    method, dataset, split, scenarios, best["step"], train_seconds
                )
        return records

    def _resume(self, method: Method) -> dict:
        path = self.dir / CHECKPOINT
        fresh = {"step": 0, "best": None, "history": [], "val_records": [], "train_seconds": 0.0}
        if not path.exists():
            return fresh
        validate_checkpoint(self.out, self.spec)
        state = torch.load(path, map_location=self.device, weights_only=True)
        method.restore(state["method"])
        torch.set_rng_state(state["torch_rng"].cpu())
        log.info("resuming %s from step %d", self.spec.run_id, state["step"])
        return {k: state[k] for k in fresh}

    def _save_checkpoint(self, method, step, best, history, val_records, train_seconds) -> None:
        atomic_torch_save(
            {
                "run_id": self.spec.run_id,
                "harness_version": HARNESS_VERSION,
                "step": step,
                "method": method.checkpoint(),
                "best": best,
                "history": history,
                "val_records": val_records,
                "train_seconds": train_seconds,
                "torch_rng": torch.get_rng_state(),
            },
            self.dir / CHECKPOINT,
        )

    def _validate(self, method, val, full: Scenario, step: int, train_seconds: float):
        records = self._evaluate(method, val, "val", [full], step, train_seconds, selection="")
        return records[0], records[0]["miou"]

    def _evaluate(
        self,
        method,
        dataset,
        split,
        scenarios,
        step,
        train_seconds,
        selection: str = SELECTION_FULL_VAL,
    ) -> list[dict]:
        tic = time.perf_counter()
        hp = self.spec.hparams_dict
        bar = self.bar
        task = bar.add_task(
            f"eval {split} · {len(scenarios)} scenario(s)", total=len(dataset), info=""
        )
        matrices = evaluate_split(
            method,
            dataset,
            scenarios,
            window=hp["crop_size"],
            overlap=self.spec.eval_overlap,
            batch_size=self.spec.eval_batch_size,
            device=self.device,
            on_tile=lambda: bar.advance(task),
        )
        bar.remove_task(task)
        seconds = (time.perf_counter() - tic) / max(1, len(scenarios))
        return [
            self._record(
                dataset, split, scenario, tiles, step, selection, seconds, train_seconds, method
            )
            for scenario, tiles in matrices.items()
        ]

    def _record(
        self,
        dataset,
        split,
        scenario,
        tiles: list[ConfusionMatrix],
        step,
        selection,
        eval_seconds,
        train_seconds,
        method: Method,
    ) -> dict:
        spec = self.spec
        ds = dataset.spec
        matrix = ConfusionMatrix.total(tiles)
        scores = matrix.compute(ds.eval_classes)
        tiers = self.data.tiers
        diagnostics = getattr(method, "diagnostics", None)
        record = EvalRecord(
            run_id=spec.run_id,
            method=spec.label or spec.method,
            method_name=spec.method,
            dataset=spec.dataset,
            dataset_options=dict(spec.dataset_options),
            hparams=spec.hparams_dict,
            seed=spec.seed,
            steps=spec.steps,
            preset=spec.preset,
            imbalance=spec.imbalance,
            checkpoint_step=step,
            split=split,
            scenario=str(scenario),
            missing=scenario.missing_label(ds.modality_names),
            n_present=len(scenario.present),
            selection=selection,
            miou=scores.miou,
            mf1=scores.mf1,
            oa=scores.oa,
            kappa=scores.kappa,
            classes=list(ds.classes),
            iou=list(scores.iou),
            f1=list(scores.f1),
            precision=list(scores.precision),
            recall=list(scores.recall),
            support=list(scores.support),
            confusion=matrix.matrix.tolist(),
            tile_names=[dataset.tile_name(i) for i in range(len(tiles))],
            tile_confusions=[t.matrix.tolist() for t in tiles],
            eval_classes=list(ds.eval_class_names),
            tiers={t: [ds.classes[c] for c in tiers.of(t)] for t in TIERS},
            tier_miou={t: tier_mean(scores.iou, tiers.of(t)) for t in TIERS},
            tier_mf1={t: tier_mean(scores.f1, tiers.of(t)) for t in TIERS},
            ignore_index=ds.ignore_index,
            label_set=ds.label_set,
            eval_seconds=round(eval_seconds, 3),
            train_seconds=round(train_seconds, 3),
            peak_memory_mb=round(process_peak_memory_mb(self.device), 1),
            device=str(self.device),
            commit=git_commit(),
            versions=versions(),
            timestamp=datetime.now(UTC).isoformat(timespec="seconds"),
            extra=dict(diagnostics()) if callable(diagnostics) else {},
        )
        return record.to_json()
