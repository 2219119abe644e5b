"""Execute one run: train with periodic validation and checkpoints, select, evaluate, record.

Everything a run reads or writes goes through the results store (`benchmark.run.store`):
a finished run is skipped, an unfinished one resumes from its checkpoint.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import random
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import Progress

from benchmark.core.method import (
    AVAILABLE_PREFIX,
    Method,
    PhaseMarker,
    TrainContext,
    phase_clock,
)
from benchmark.core.plugins import METHODS
from benchmark.core.records import SELECTION_FULL_VAL, RunSpec
from benchmark.core.scenarios import Scenario
from benchmark.data.pipeline import BatchSource, RunData, prepare_data, training_batches
from benchmark.run.card import model_card
from benchmark.run.cost import measure_run_cost
from benchmark.run.evaluate import evaluation_records, feedback_iou, probe_scores
from benchmark.run.selection import chosen_steps, owners
from benchmark.run.store import RunStore
from benchmark.system.errors import BenchmarkError
from benchmark.system.progress import ProgressLines, progress_bar
from benchmark.system.tensorboard import ScalarLog

log = logging.getLogger(__name__)

LOG_EVERY = 10


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_method(spec: RunSpec, data: RunData, device: torch.device) -> Method:
    """The run's method, seeded and in training mode on `device` (shared with the profilers)."""
    context = TrainContext(
        total_steps=spec.steps,
        class_frequencies=data.frequencies,
        train_modalities=spec.train_modalities,
    )
    seed_everything(spec.seed)
    method = METHODS.get(spec.method)(data.train.spec, spec.hparams, context)
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
    clock: PhaseMarker | None = None,
    batch_index: int | None = None,
) -> dict[str, float]:
    """One harness training step: batch `batch_index` (default `step`) onto the device,
    update call `step`, finiteness check.

    `clock` (profiling only) is told where the time goes; the method marks its own phases.
    """
    index = step if batch_index is None else batch_index
    batch = {k: v.to(device, non_blocking=True) for k, v in sampler.batch(index).items()}
    if clock is not None:
        clock.mark("data")
    with phase_clock(clock):
        losses = method.update(batch, step)
    if clock is not None:
        clock.mark("method_other")
    if not all(np.isfinite(v) for v in losses.values()):
        hint = absent_hint(batch, type(method))
        raise RunDiverged(f"diverged: non-finite loss at step {step + 1}: {losses}{hint}")
    if clock is not None:
        clock.mark("metrics")
    return losses


class RunDiverged(FloatingPointError):
    """Training produced a non-finite loss."""


def absent_hint(batch: dict[str, torch.Tensor], cls: type[Method]) -> str:
    """Why a loss may have diverged where the batch held samples lacking a modality: their
    tensors are NaN (`--train-missing`), and a method that reads them diverges at once; the
    method's `TRAIN_MISSING` says how it should train instead ("" for a complete batch)."""
    lacking = [
        key.removeprefix(AVAILABLE_PREFIX)
        for key, value in batch.items()
        if key.startswith(AVAILABLE_PREFIX) and not bool(value.all())
    ]
    if not lacking:
        return ""
    declared = cls.TRAIN_MISSING or "not declared (see docs/extending.md)"
    return (
        f"; this batch has samples without {', '.join(sorted(lacking))} (--train-missing: their "
        f"tensors are NaN, never to be read); {cls.__name__}.TRAIN_MISSING: {declared}"
    )


@dataclass(frozen=True)
class CallPlan:
    """Where a run's `update` calls go (`Method.update_calls`): the first `prelude` calls train
    what comes before the deployed model (a teacher), the last `steps` the deployed model; each
    stage reads batches 0, 1, ... so both see the data every other method's model sees."""

    steps: int
    prelude: int

    @classmethod
    def of(cls, spec: RunSpec) -> CallPlan:
        calls = METHODS.get(spec.method).update_calls(spec.steps)
        if calls < spec.steps:
            raise BenchmarkError(
                f"method {spec.method!r}: update_calls({spec.steps}) = {calls}; expected at "
                "least the step budget"
            )
        return cls(spec.steps, calls - spec.steps)

    @property
    def calls(self) -> int:
        return self.prelude + self.steps

    def batch_index(self, call: int) -> int:
        """The training batch of update call `call`."""
        return call if call < self.prelude else call - self.prelude

    def deployed_step(self, calls_done: int) -> int:
        """Steps the deployed model has taken after `calls_done` calls (0 in the prelude)."""
        return max(0, calls_done - self.prelude)

    def validates_after(self, calls_done: int, every: int) -> bool:
        """Whether the harness validates after `calls_done` calls: every `every` steps of the
        deployed model and after its last step; never in the prelude."""
        step = self.deployed_step(calls_done)
        return step > 0 and (step % every == 0 or step == self.steps)


@dataclass
class RunOutcome:
    """What happened to one run in this launch (its results are in the store).

    status: `done` (trained now), `skipped` (was done), `failed` (raised, diverged, or its
    worker died; reason in `error`), `busy` (another launcher holds its lock), or a state
    (`pending`, ...) under `--launcher dry_run`.
    """

    spec: RunSpec
    status: str
    seconds: float
    error: str = ""


@dataclass
class TrainState:
    """Where training stands: what a checkpoint keeps besides the method's own state."""

    step: int = 0
    chosen: dict[str, int] = field(default_factory=dict)
    """Each selection rule's choice so far (rule -> step, the default rule first)."""
    kept: dict[int, dict[str, Any]] = field(default_factory=dict)
    """A copy of the weights of every step some rule chooses (step -> state dict)."""
    history: list[dict[str, Any]] = field(default_factory=list)
    """Training losses every `LOG_EVERY` steps (`train_log.jsonl`)."""
    val_records: list[dict[str, Any]] = field(default_factory=list)
    train_seconds: float = 0.0
    step_seconds: list[float] = field(default_factory=list)
    probes: dict[str, float] = field(default_factory=dict)
    """The method's validation probes at the latest validation (`<name>_val_miou`)."""
    prelude_seconds: float = 0.0
    """Training seconds of the prelude stage (`Method.update_calls`; a teacher's), once done."""
    val_score: float = float("nan")
    """Validation mIoU with every modality at the latest validation (progress, TensorBoard)."""

    @property
    def median_step_ms(self) -> float:
        """Median wall milliseconds of the training steps so far."""
        return 1e3 * float(np.median(self.step_seconds)) if self.step_seconds else float("nan")


class RunExecutor:
    """Trains and evaluates one `RunSpec` into its run directory."""

    def __init__(
        self,
        spec: RunSpec,
        data_root: Path,
        store: RunStore,
        device: torch.device,
        show_progress: bool = True,
        retry_failed: bool = False,
        tensorboard: bool = False,
    ) -> None:
        self.spec = spec
        self.store = store
        self.device = device
        self.data_root = Path(data_root)
        self.show_progress = show_progress
        self.retry_failed = retry_failed
        self.tensorboard = tensorboard

    def execute(self) -> RunOutcome:
        """Run unless done; a failure is recorded in the run directory, never raised."""
        start = time.perf_counter()
        run_id = self.spec.run_id
        state = self.store.state(run_id)
        intact = state == "done" and self.store.damage(run_id) is None
        if intact and self.store.done_for(run_id, self.spec.selection):
            return RunOutcome(self.spec, "skipped", 0.0)
        if state == "failed" and not self.retry_failed:
            return RunOutcome(self.spec, "failed", 0.0, self.store.failure_reason(run_id))
        with self.store.lock(run_id) as locked:
            if not locked:
                return RunOutcome(self.spec, "busy", 0.0, "running in another launcher")
            if self.store.state(run_id) == "done":
                if self._intact() and self._selected():  # finished elsewhere while we waited
                    return RunOutcome(self.spec, "skipped", 0.0)
                self.store.reopen(run_id)
            self.store.clear_failure(run_id)
            self.store.write_spec(self.spec)
            try:
                records = self._train_and_evaluate()
            except (KeyboardInterrupt, SystemExit, BenchmarkError):
                raise
            except Exception as error:  # isolate: record it, let the sweep go on
                reason = self.store.record_failure(run_id, error, traceback.format_exc())
                log.error("run %s failed: %s", run_id, reason)
                return RunOutcome(self.spec, "failed", time.perf_counter() - start, reason)
            self.store.finish(run_id, records)
        return RunOutcome(self.spec, "done", time.perf_counter() - start)

    # --------------------------------------------------------------------- internals
    def _intact(self) -> bool:
        """Whether a `done` run can be trusted; a damaged one is named and trained again."""
        damage = self.store.damage(self.spec.run_id)
        if damage:
            log.warning("run %s is damaged (%s); training it again", self.spec.run_id, damage)
        return damage is None

    def _selected(self) -> bool:
        """Whether a `done` run has records of the requested selection rule; one finished
        before every rule was recorded lacks them and is trained again (said in a log line)."""
        rule, run_id = self.spec.selection, self.spec.run_id
        if rule in self.store.selections(run_id):
            return True
        log.warning(
            "run %s finished before every selection rule was recorded (no %s records); "
            "training it again",
            run_id,
            rule,
        )
        return False

    @property
    def name(self) -> str:
        """The run as its log lines name it: label · dataset · seed."""
        return f"{self.spec.label} · {self.spec.dataset_label} · seed {self.spec.seed}"

    def _train_and_evaluate(self) -> list[dict[str, Any]]:
        spec = self.spec
        # what comes before step 1 takes seconds (reading and caching tiles, statistics, the
        # network, its FLOPs): each phase is named, so a run is never silent
        log.info("%s: loading the data (splits, channel statistics)", self.name)
        data = prepare_data(spec, self.data_root)
        log.info(
            "%s: %d train / %d val / %d test tile(s); building the model",
            self.name,
            len(data.train),
            len(data.val),
            len(data.test),
        )
        method = build_method(spec, data, self.device)
        sampler = training_batches(
            data.train,
            spec.hparams,
            spec.seed,
            spec.train_modalities,
            data.label_filter,
            self.device,
            spec.steps,
            data.availability,
        )
        scenarios = METHODS.get(spec.method).evaluation_scenarios(spec.train_modalities)
        plan = self.plan = CallPlan.of(spec)
        state = self._resume(method)
        log.info(
            "%s: %.2f M parameters; measuring its FLOPs per step and per window",
            self.name,
            method.num_parameters() / 1e6,
        )
        self.cost = measure_run_cost(method, sampler.sampler, spec.steps, scenarios, self.device)
        log.info(
            "%s: training %d update call(s)%s, validating every %d step(s) on %d scenario(s)",
            self.name,
            plan.calls,
            f" (resumed after {state.step})" if state.step else "",
            spec.val_every,
            len(scenarios),
        )
        self.store.write_train_log(spec.run_id, state.history)  # the log restarts with the run
        lines = ProgressLines(self.name, plan.calls)
        board = ScalarLog(self.store.run_dir(spec.run_id), enabled=self.tensorboard)
        with sampler, board, progress_bar(disable=not self.show_progress) as bar:
            task = bar.add_task(
                f"train {spec.label} seed {spec.seed}",
                total=plan.calls,
                completed=state.step,
                info="",
            )
            tic = time.perf_counter()
            while state.step < plan.calls:
                started = time.perf_counter()
                index = plan.batch_index(state.step)
                losses = train_step(method, sampler, state.step, self.device, batch_index=index)
                state.step_seconds.append(time.perf_counter() - started)
                state.step += 1
                elapsed = state.train_seconds + time.perf_counter() - tic
                rate, loss = state.step / max(elapsed, 1e-9), losses.get("loss", float("nan"))
                lines.step(state.step, rate, loss)
                if state.step % LOG_EVERY == 0 or state.step == plan.calls:
                    row = {"step": state.step, "seconds": round(elapsed, 3), **losses}
                    state.history.append(row)
                    self.store.append_train_log(spec.run_id, row)
                    board.scalars("train", losses, state.step)
                    bar.update(task, info=f"loss {loss:.3f} {rate:.2f} it/s")
                bar.update(task, completed=state.step)
                if 0 < state.step <= plan.prelude:  # no validation before the deployed model
                    if state.step % spec.val_every == 0 or state.step == plan.prelude:
                        state.train_seconds += time.perf_counter() - tic
                        if state.step == plan.prelude:
                            state.prelude_seconds = state.train_seconds
                        self._checkpoint(method, state)
                        tic = time.perf_counter()
                elif plan.validates_after(state.step, spec.val_every):
                    state.train_seconds += time.perf_counter() - tic
                    self._validate(bar, data, method, state)
                    lines.validation(state.step, state.val_score)
                    scores = {"miou": state.val_score, **state.probes}
                    board.scalars("val", scores, state.step)
                    tic = time.perf_counter()
            self.store.write_train_log(spec.run_id, state.history)
            records = list(state.val_records)
            records += self._evaluate_chosen(bar, data, method, scenarios, state)
        return records

    def _evaluate_chosen(
        self,
        bar: Progress,
        data: RunData,
        method: Method,
        scenarios: list[Scenario],
        state: TrainState,
    ) -> list[dict[str, Any]]:
        """Each distinct chosen checkpoint once on val (the records of the validation that
        chose it) and test, its records under every rule that chose it; the default rule's
        weights are the deployed model (`model.safetensors`), another distinct checkpoint's are
        kept under the first rule that chose it."""
        spec = self.spec
        by_step: dict[int, list[dict[str, Any]]] = {}
        first = owners(state.chosen)
        card = model_card(spec, data, state.chosen)
        records = []
        for rule, step in state.chosen.items():
            if step not in by_step:
                rules = [r for r, s in state.chosen.items() if s == step]
                log.info(
                    "%s: final evaluation of the checkpoint at step %d (chosen by %s): "
                    "validation, then test, on %d scenario(s)",
                    self.name,
                    step,
                    ", ".join(rules),
                    len(scenarios),
                )
                owner, weights = first[step], state.kept[step]
                if owner == SELECTION_FULL_VAL:
                    self.store.save_model(spec.run_id, weights, card)
                else:
                    self.store.save_selected(spec.run_id, owner, weights, step)
                method.load_state_dict(weights)
                by_step[step] = [
                    *self._validated(bar, data, method, scenarios, step, state, owner),
                    *self._evaluate(bar, data, method, "test", scenarios, step, state, owner),
                ]
            records += [dict(rec, selection=rule) for rec in by_step[step]]
        return records

    def _validated(
        self,
        bar: Progress,
        data: RunData,
        method: Method,
        scenarios: list[Scenario],
        step: int,
        state: TrainState,
        owner: str,
    ) -> list[dict[str, Any]]:
        """The chosen checkpoint's validation records: those of the validation that chose it
        (the same weights on the same tiles score the same), with the finished run's training
        time, diagnostics and probes, as a fresh evaluation would record them. Evaluated again
        only where the run's validations lack that step."""
        earlier = {r["scenario"]: r for r in state.val_records if r["checkpoint_step"] == step}
        if set(earlier) != {str(s) for s in scenarios}:
            return self._evaluate(bar, data, method, "val", scenarios, step, state, owner)
        log.info("%s: validation records of step %d kept from its validation", self.name, step)
        final = {
            "selection": owner,
            "train_seconds": round(state.train_seconds, 3),
            "step_ms": round(state.median_step_ms, 2),
            "extra": {**method.diagnostics(), **state.probes, **self._stage_costs(state)},
        }
        return [earlier[str(s)] | final for s in scenarios]

    def _validate(self, bar: Progress, data: RunData, method: Method, state: TrainState) -> None:
        """Validate every scenario the run is evaluated on (and the method's probes), keep the
        weights each selection rule chooses, and checkpoint everything a resumed run needs.

        Records and selection count the deployed model's steps (`checkpoint_step`); the method's
        `observe_validation` gets its update calls, the count its `update` sees."""
        spec = self.spec
        step = self.plan.deployed_step(state.step)
        full = str(Scenario(frozenset(spec.train_modalities)))
        state.probes = probe_scores(method, data.val, spec, self.device)
        feedback = feedback_iou(method, data.val, spec, self.device)
        if feedback:
            method.observe_validation(feedback, state.step)
        scenarios = METHODS.get(spec.method).evaluation_scenarios(spec.train_modalities)
        records = self._evaluate(bar, data, method, "val", scenarios, step, state, "")
        state.val_records += records
        state.val_score = next(float(r["miou"]) for r in records if r["scenario"] == full)
        chosen = chosen_steps(state.val_records, state.chosen)
        if step in chosen.values():
            state.kept[step] = copy.deepcopy(method.state_dict())
        state.kept = {s: w for s, w in state.kept.items() if s in chosen.values()}
        state.chosen = chosen
        self._checkpoint(method, state)

    def _checkpoint(self, method: Method, state: TrainState) -> None:
        """Save what a resumed run needs: the training state, the method's, the random stream."""
        fields = {f.name: getattr(state, f.name) for f in dataclasses.fields(state)}  # no copies
        checkpoint = fields | {
            "method": method.checkpoint(),
            "torch_rng": torch.get_rng_state(),
        }
        self.store.save_checkpoint(self.spec.run_id, checkpoint)

    def _stage_costs(self, state: TrainState) -> dict[str, float]:
        """Each stage's steps, training seconds so far and GFLOPs, named by `Method.STAGES`
        (`teacher_train_gflops`, `student_train_seconds`, ...); none for a one-stage method."""
        plan = self.plan
        if not plan.prelude:
            return {}
        first, deployed = METHODS.get(self.spec.method).STAGES
        return {
            f"{first}_steps": float(plan.prelude),
            f"{first}_train_seconds": round(state.prelude_seconds, 3),
            f"{first}_train_gflops": round(self.cost.prelude_gflops, 4),
            f"{deployed}_steps": float(plan.steps),
            f"{deployed}_train_seconds": round(state.train_seconds - state.prelude_seconds, 3),
            f"{deployed}_train_gflops": round(self.cost.deployed_gflops, 4),
        }

    def _resume(self, method: Method) -> TrainState:
        saved = self.store.load_checkpoint(self.spec, self.device)
        if saved is None:
            return TrainState()
        if "kept" not in saved:
            log.warning(
                "run %s: its checkpoint predates keeping every selection rule's choice; "
                "training it from the start",
                self.spec.run_id,
            )
            return TrainState()
        method.restore(saved["method"])
        torch.set_rng_state(saved["torch_rng"].cpu())
        log.info("resuming %s from step %d", self.spec.run_id, saved["step"])
        names = {f.name for f in dataclasses.fields(TrainState)}
        return TrainState(**{k: v for k, v in saved.items() if k in names})

    def _evaluate(
        self,
        bar: Progress,
        data: RunData,
        method: Method,
        split: str,
        scenarios: list[Scenario],
        step: int,
        state: TrainState,
        selection: str,
    ) -> list[dict[str, Any]]:
        """Records of `split` under `scenarios`; `selection` is the rule that chose the
        checkpoint, "" for an intermediate validation."""
        dataset = data.val if split == "val" else data.test
        total = self.spec.tiles_evaluated(len(dataset))
        task = bar.add_task(f"eval {split} · {len(scenarios)} scenario(s)", total=total, info="")
        # without a terminal the bar draws nothing: a final evaluation logs its progress (a
        # quarter at a time), an intermediate validation only when slow (its score follows)
        lines = ProgressLines(
            f"{self.name} · eval {split} · {len(scenarios)} scenario(s)",
            total,
            every_share=0.25,
            unit="tile",
            time_only=not selection,
        )
        done, tic = 0, time.perf_counter()

        def on_tile() -> None:
            nonlocal done
            done += 1
            bar.advance(task)
            lines.step(done, done / max(time.perf_counter() - tic, 1e-9))

        records = evaluation_records(
            self.spec,
            data,
            method,
            split,
            scenarios,
            step,
            state.train_seconds,
            self.device,
            selection,
            cost=self.cost,
            step_ms=state.median_step_ms,
            probes={**state.probes, **self._stage_costs(state)},
            on_tile=on_tile,
        )
        bar.remove_task(task)
        return records
