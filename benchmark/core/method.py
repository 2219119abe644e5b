"""The method interface: two verbs (`update`, `predict`) plus shared optimisation helpers.

Every method optimises through `optimisation_step`, so AdamW, the one-cycle schedule, gradient
clipping and mixed precision are identical for all methods; only losses and networks differ.
"""

from __future__ import annotations

import abc
import contextlib
import contextvars
import copy
import itertools
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.core.hparams import HParam, HParamSpace, Search
from benchmark.core.scenarios import Scenario, all_scenarios
from benchmark.core.sharing import encode_once, shared_encodings
from benchmark.core.spec import MASK, DatasetSpec

Batch = dict[str, Tensor]
"""Normalised modalities [B, C, H, W] plus `mask` [B, H, W] (int64, ignore_index allowed), and
under `--train-missing` one `available:<modality>` bool [B] per modality (see `availability`)."""

AVAILABLE_PREFIX = "available:"
"""Batch key prefix of a modality's per-sample availability (training with missing data).

Where a sample lacks a modality its tensor is NaN (never a plausible value), so a method that
reads it by accident diverges instead of silently learning from a fill it did not choose."""


FUSED_ADAMW_DEVICES = frozenset({"cpu", "cuda"})
"""Device types with a fused AdamW kernel in every PyTorch this suite supports (>= 2.4)."""


def adamw(
    params: Iterable[nn.Parameter], lr: float, weight_decay: float, device: torch.device
) -> torch.optim.AdamW:
    """AdamW, fused into one kernel per step where PyTorch has one for `device`.

    Same update rule as the per-parameter loop, about 3x faster on CPU (20 -> 6 ms per step for
    the baseline's 10.8 M parameters on two threads); other devices keep the default kernels.
    """
    fused = device.type in FUSED_ADAMW_DEVICES
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=fused or None)


class PhaseMarker(Protocol):
    """What a profiler's clock offers a method: `mark(phase)` ends a named phase."""

    def mark(self, phase: str) -> None:
        """Record that `phase` has just ended."""


_phase_clock: contextvars.ContextVar[PhaseMarker | None] = contextvars.ContextVar(
    "missbench_phase_clock", default=None
)


@contextlib.contextmanager
def phase_clock(clock: PhaseMarker | None) -> Iterator[None]:
    """Let `clock` see the phases of the method calls made inside the block (profiling only).

    The clock is passed to the step, not stored on the method: a method never carries profiler
    state, and a run's steps (where no clock is given) mark nothing.
    """
    token = _phase_clock.set(clock)
    try:
        yield
    finally:
        _phase_clock.reset(token)


def mark_phase(phase: str) -> None:
    """Tell the clock of the enclosing `phase_clock` block, if any, that `phase` just ended."""
    clock = _phase_clock.get()
    if clock is not None:
        clock.mark(phase)


@dataclass(frozen=True)
class Paper:
    """Citation of the paper a method implements."""

    title: str
    venue: str
    year: int
    link: str

    def __str__(self) -> str:
        return f"{self.title}, {self.venue} {self.year}, {self.link}"


@dataclass(frozen=True)
class TrainContext:
    """Facts of the training run that every method may use, computed once by the harness."""

    total_steps: int
    class_frequencies: tuple[float, ...]
    """Share of labelled training pixels per class (sums to 1)."""
    train_modalities: tuple[str, ...]


COMMON_HPARAMS: dict[str, HParam] = {
    "backbone": HParam("resnet10t", "timm encoder (features_only)"),
    "weights": HParam(
        "none",
        "encoder weights: none, imagenet (timm's, from the hub or its cache) or a path to a "
        "timm state dict (.safetensors or .pth), its first conv adapted to each modality's bands",
    ),
    "decoder_channels": HParam(64, "FPN width", low=8, high=1024),
    "lr": HParam(
        1e-3,
        "peak AdamW learning rate",
        low=1e-6,
        high=1e-1,
        # Centred on the preset's rate (set for its backbone and batch): one decade in all,
        # narrower than DomainBed's 1.5 decades for ResNet-50, whose rate was not preset.
        search=Search.decades(0.5, "half a decade either side of the preset's rate"),
    ),
    "weight_decay": HParam(1e-4, "AdamW weight decay", low=0.0, high=1.0),
    "warmup_fraction": HParam(0.1, "one-cycle warm-up share of steps", low=0.0, high=0.5),
    "grad_clip": HParam(1.0, "max gradient norm; 0 disables", low=0.0, high=100.0),
    "batch_size": HParam(8, "training batch size", low=1, high=1024),
    "crop_size": HParam(
        128, "training crop (pixels); the evaluation window unless the preset sets one", low=32
    ),
    "class_weighting": HParam(
        "inv_sqrt_freq", "cross-entropy class weights", choices=("none", "inv_sqrt_freq")
    ),
}
"""Hyperparameters shared by every method: backbone family, optimiser, data budget."""


class Method(nn.Module, abc.ABC):
    """A segmentation method that must cope with missing modalities at inference time.

    Subclasses declare what they are (`SUMMARY`, `MISSING_MODALITY`, `TRAIN_MISSING`, `PAPER`,
    `DEVIATIONS`, and where they apply `INVALID_PIXELS`, `ENCODES_ABSENT`, `HPARAMS`,
    `DEDICATED`: `undeclared` names what is left out) and implement the two verbs, `update` and
    `predict`; `diagnostics` is optional. The base class holds the run's facts: `spec`,
    `hparams`, `context`, `modalities` (the ones it trains on, sorted) and `channels` (bands
    per modality).
    """

    HPARAMS: ClassVar[HParamSpace] = {}
    PAPER: ClassVar[Paper | None] = None
    DEVIATIONS: ClassVar[tuple[str, ...]] = ()
    SUMMARY: ClassVar[str] = ""
    """One line: what the method does, for the README table."""
    MISSING_MODALITY: ClassVar[str] = ""
    """One line: what the method does when a modality is missing at test time."""
    TRAIN_MISSING: ClassVar[str] = ""
    """One line: how it trains when some samples lack a modality (`--train-missing`)."""
    ENCODES_ABSENT: ClassVar[str] = ""
    """Why, if at all, training passes a sample's absent modality (filled) through that
    modality's encoder and norms. Empty (the rule): absent samples bypass them
    (`encode_present`), so they never enter its batch statistics; the method contract checks
    it. Only a method whose test-time policy feeds the same fill through the same encoder (the
    zero-filling baseline) may be exempt, saying why here (see `encodes_absent`)."""
    INVALID_PIXELS: ClassVar[str] = (
        "mean-fills them (zero in normalised space) and predicts as usual (`fill_invalid`): "
        "its own missing-modality fill is the mean fill"
    )
    """One line: what it does with pixels a corruption marks invalid (clouds, DSM voids), its
    own mechanism (`predict_partial`); `--invalid-fill mean` replaces it by the mean fill."""
    DEDICATED: ClassVar[bool] = False
    """True for per-scenario reference models (an oracle): the harness trains one run per
    reported modality subset and evaluates each only on its own subset (see `kind`,
    `training_subsets` and `evaluation_scenarios`, the only readers of this flag)."""
    STAGES: ClassVar[tuple[str, str]] = ("prelude", "deployed")
    """Names of the two stages of a method whose `update_calls` exceed its budget: what trains
    first (a distillation teacher) and the deployed model; the records' `extra` names each
    stage's steps, training seconds and GFLOPs after them (`teacher_train_gflops`, ...)."""

    def __init__(
        self, spec: DatasetSpec, hparams: Mapping[str, Any], context: TrainContext
    ) -> None:
        super().__init__()
        self.spec = spec
        self.hparams = dict(hparams)
        self.context = context
        self.modalities: tuple[str, ...] = tuple(context.train_modalities)
        self.channels: dict[str, int] = {m: spec.modality(m).channels for m in self.modalities}
        self._optimizers: dict[str, torch.optim.Optimizer] = {}
        self._schedulers: dict[str, torch.optim.lr_scheduler.LRScheduler] = {}
        weights = class_weights(context.class_frequencies, self.hparams["class_weighting"])
        self.register_buffer("class_weight", weights, persistent=False)

    @classmethod
    def kind(cls) -> str:
        """`oracle` for a dedicated method (one model per scenario), else `single-model`.

        Tables never mark an oracle as the best method: it is a reference, not a competitor.
        """
        return "oracle" if cls.DEDICATED else "single-model"

    @classmethod
    def training_subsets(
        cls, modalities: Sequence[str], reported: Sequence[Scenario]
    ) -> list[tuple[str, ...]]:
        """Return the modality sets to train one run on each of.

        All of them in one run, or for a dedicated method one run per reported scenario.
        """
        if cls.DEDICATED:
            return [tuple(sorted(s.present)) for s in reported]
        return [tuple(sorted(modalities))]

    @classmethod
    def evaluation_scenarios(cls, train_modalities: Sequence[str]) -> list[Scenario]:
        """Return the scenarios a run of this method is evaluated on.

        Every non-empty subset of its modalities, or for a dedicated method only its own.
        """
        if cls.DEDICATED:
            return [Scenario(frozenset(train_modalities))]
        return all_scenarios(train_modalities)

    @classmethod
    def update_calls(cls, steps: int) -> int:
        """Return how many `update` calls a run with a budget of `steps` makes (`steps`).

        The suite's rule for a method with a teacher: no deployed model trains for fewer steps
        than any other method's. Such a method asks for more calls (e.g. a teacher's `steps`,
        then the student's `steps`); the deployed model trains during the last `steps` of them
        and the earlier ones (the prelude, `STAGES[0]`) come first. The harness validates, and
        so selects checkpoints, only in the deployed stage, feeds both stages the same batches
        0..steps-1, and counts every call in the run's cost (time, FLOPs, `--budget flops`).
        """
        return steps

    @classmethod
    def hparam_space(cls) -> dict[str, HParam]:
        """Return the common hyperparameters merged with the method's own (the method's win)."""
        return {**COMMON_HPARAMS, **cls.HPARAMS}

    @abc.abstractmethod
    def update(self, batch: Batch, step: int) -> dict[str, float]:
        """One optimisation step on a training batch; returns named scalar losses."""

    @abc.abstractmethod
    def predict(self, inputs: Mapping[str, Tensor]) -> Tensor:
        """Logits [B, K, H, W] from whichever modalities are present in `inputs`.

        `inputs` holds only present modalities (absence is a missing key) and never labels.
        """

    def encodes_absent(self) -> str:
        """Return `ENCODES_ABSENT` for this configuration; empty = absent samples bypass.

        A method whose fill is a hyperparameter overrides it (ModDrop: only its input fill).
        """
        return self.ENCODES_ABSENT

    def predict_views(
        self,
        views: Sequence[Mapping[str, Tensor]],
        validity: Sequence[Mapping[str, Tensor]] | None = None,
    ) -> list[Tensor]:
        """Logits of several views of the same windows, one per view, as `predict` gives each.

        The harness asks for every scenario (and, under a corruption, every severity) of a
        batch of windows at once, building the views from the same tensor objects. The default
        predicts each view inside `shared_encodings`, so a method whose `predict` routes its
        per-modality encoders through `encode_once` encodes each distinct tensor once instead
        of once per view. `validity`, one mapping per view, holds the validity masks of a
        corrupted view's modalities (as `predict_partial` takes them): a view with an invalid
        pixel goes through `predict_partial`, any other through `predict`. Override it only
        with a faster joint path; the method contract suite checks that it equals `predict`
        (and `predict_partial`) view by view.
        """
        with shared_encodings():
            if validity is None:
                return [self.predict(view) for view in views]
            out = []
            for view, masks in zip(views, validity, strict=True):
                invalid = invalid_masks(view, masks)
                out.append(self.predict_partial(view, invalid) if invalid else self.predict(view))
            return out

    def predict_partial(
        self, inputs: Mapping[str, Tensor], validity: Mapping[str, Tensor]
    ) -> Tensor:
        """Logits when some pixels of present modalities are invalid (clouds, DSM voids).

        `validity` holds, for present modalities with at least one invalid pixel, a bool
        [B, 1, H, W] (True = valid); the harness calls this only then (`predict_views`), and
        `predict` otherwise. A method handles invalid pixels as it handles a missing modality,
        at those pixels only: a modality wholly invalid should give (about) the prediction
        without it. The default predicts from `fill_invalid`'s inputs (the mean fill, unless
        the method overrides that); the evaluation's `mean` variant bypasses both.
        """
        return self.predict(self.fill_invalid(inputs, validity))

    def fill_invalid(
        self, inputs: Mapping[str, Tensor], validity: Mapping[str, Tensor]
    ) -> dict[str, Tensor]:
        """Return the inputs with pixels a corruption marks invalid treated as missing.

        `validity` as in `predict_partial`. The default fills invalid pixels with the training
        mean (zero after normalising), the per-pixel analogue of a wholly missing modality
        zero-filled; a method with a better estimate in input space may override it (the
        default `predict_partial` predicts from it).
        """
        return mean_fill_invalid(inputs, validity)

    def own_fill_is_mean(self) -> bool:
        """Whether `--invalid-fill own` and `mean` predict the same: its own fill is the mean.

        The harness then evaluates such a method once per corruption and severity and writes
        the other fill's records from that evaluation (`benchmark.run.corrupted`). True when
        neither `predict_partial` nor `fill_invalid` is overridden; a method whose override
        falls back to the default in some configuration says so here (ModDrop's input fill).
        `tests/methods/test_invalid_pixels.py` checks the answer against the predictions.
        """
        cls = type(self)
        return cls.predict_partial is Method.predict_partial and (
            cls.fill_invalid is Method.fill_invalid
        )

    def validation_probes(self) -> dict[str, Callable[[Mapping[str, Tensor]], Tensor]]:
        """Return extra predictors the harness validates next to `predict`, by name.

        At every validation each is scored on the validation split with every modality present
        and recorded as `<name>_val_miou` in the records' `extra` (the latest score in the final
        records): e.g. a distillation teacher. Validation data only; none by default.
        """
        return {}

    def feedback_scenarios(self) -> tuple[Scenario, ...]:
        """Return the scenarios whose validation scores the method learns from.

        Some methods steer training by validation results (LCKD elects teachers by
        single-modality validation IoU, MMANet finds its weakest modality combination). At
        every validation the harness scores these scenarios on the validation split (never
        test) and hands the per-class IoU to `observe_validation`. None by default.
        """
        return ()

    def observe_validation(self, iou: Mapping[Scenario, Sequence[float]], step: int) -> None:
        """Receive the per-class validation IoU of each `feedback_scenarios` scenario.

        Called after the validation at `step`; NaN marks a class absent from validation or not
        evaluated. What the method derives from it must live in its state dict (buffers), so that a
        resumed run continues with the same decisions.
        """

    def diagnostics(self) -> dict[str, float]:
        """Return named training statistics to record with every evaluation.

        They land in the records' `extra`: e.g. collapse gauges or a stage's step count; none
        by default.
        """
        return {}

    # ----------------------------------------------------------------- shared helpers
    @property
    def device(self) -> torch.device:
        """Where the method's parameters live."""
        return next(self.parameters()).device

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """bfloat16 autocast on CUDA (no loss scaling needed), full precision on CPU."""
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def configure_optimizer(
        self,
        params: Iterable[nn.Parameter],
        name: str = "main",
        steps: int | None = None,
        lr: float | None = None,
    ) -> None:
        """AdamW with a one-cycle schedule over `steps` (default: the run's step budget)."""
        params = [p for p in params if p.requires_grad]
        optimizer = adamw(
            params, lr or self.hparams["lr"], self.hparams["weight_decay"], self.device
        )
        total = max(1, steps or self.context.total_steps)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=lr or self.hparams["lr"],
            total_steps=total + 1,
            pct_start=max(self.hparams["warmup_fraction"], 1.0 / total),
            anneal_strategy="cos",
            div_factor=25.0,
            final_div_factor=1e3,
        )
        self._optimizers[name] = optimizer
        self._schedulers[name] = scheduler

    def skip_step(self, name: str = "main") -> None:
        """Advance the schedule of `name` without an update.

        For a batch that held nothing this optimiser may learn from (e.g. no sample with the
        modalities a model needs, under `--train-missing`): its step count stays aligned.
        """
        scheduler = self._schedulers[name]
        if scheduler.last_epoch < scheduler.total_steps - 1:
            with warnings.catch_warnings():  # a skip may come before any optimiser step
                warnings.filterwarnings("ignore", "Detected call of `lr_scheduler", UserWarning)
                scheduler.step()

    def optimisation_step(self, loss: Tensor, name: str = "main") -> None:
        """zero_grad, backward, clip, step, schedule: identical for every method."""
        optimizer = self._optimizers[name]
        mark_phase("forward")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        mark_phase("backward")
        clip = self.hparams["grad_clip"]
        if clip > 0:
            params = [p for group in optimizer.param_groups for p in group["params"]]
            torch.nn.utils.clip_grad_norm_(params, clip)
        optimizer.step()
        scheduler = self._schedulers[name]
        if scheduler.last_epoch < scheduler.total_steps - 1:
            scheduler.step()
        mark_phase("optimiser")

    def segmentation_loss(self, logits: Tensor, mask: Tensor) -> Tensor:
        """Class-weighted cross-entropy that skips `ignore_index` pixels."""
        return F.cross_entropy(
            logits.float(), mask, weight=self.class_weight, ignore_index=self.spec.ignore_index
        )

    def checkpoint(self) -> dict[str, Any]:
        """Snapshot weights, optimisers and schedules (a deep copy, not live references)."""
        return copy.deepcopy(
            {
                "model": self.state_dict(),
                "optimizers": {k: o.state_dict() for k, o in self._optimizers.items()},
                "schedulers": {k: s.state_dict() for k, s in self._schedulers.items()},
            }
        )

    def restore(self, state: Mapping[str, Any]) -> None:
        """Load a `checkpoint()` snapshot: weights, optimisers and schedules."""
        self.load_state_dict(state["model"])
        for key, value in state.get("optimizers", {}).items():
            self._optimizers[key].load_state_dict(value)
        for key, value in state.get("schedulers", {}).items():
            self._schedulers[key].load_state_dict(value)

    def optimizers(self) -> list[torch.optim.Optimizer]:
        """Every optimiser the method configured (what it trains)."""
        return list(self._optimizers.values())

    def num_parameters(self) -> int:
        """Count every parameter the method holds."""
        return sum(p.numel() for p in self.parameters())


REQUIRED_DECLARATIONS: dict[str, str] = {
    "SUMMARY": "one line: what the method does (the README table)",
    "MISSING_MODALITY": "one line: what it does when a modality is missing at test time",
    "TRAIN_MISSING": (
        "one line: how it trains when some samples lack a modality (`--train-missing`); such a "
        "sample's tensor is NaN, so a method that reads it diverges at step 1"
    ),
    "PAPER": "the paper it implements, `Paper(title, venue, year, link)`, or None for none",
    "DEVIATIONS": "a tuple of lines: where it departs from the paper, or what it is without one",
}
"""Class attributes every method states itself (the base class's defaults are empty, so an
omission would go unnoticed until a run fails); `undeclared` checks them. `INVALID_PIXELS` is
required only of a method with its own invalid-pixel handling; `ENCODES_ABSENT`, `HPARAMS`,
`DEDICATED` and `STAGES` have defaults that are right unless the method says otherwise."""

INVALID_PIXELS_REQUIRED = (
    "one line: its own handling of invalid pixels (it overrides `predict_partial` or "
    "`fill_invalid`, so the default text, the mean fill, is wrong)"
)


def undeclared(cls: type[Method]) -> list[str]:
    """Return the declarations `cls` leaves out or states wrongly, each `NAME: what to say`.

    [] for a method that declares everything (`REQUIRED_DECLARATIONS`, a docstring, and
    `INVALID_PIXELS` where it handles invalid pixels its own way). The method contract suite
    asserts it of every registered method, so a new method learns what it omits by name.
    """
    problems = []
    if not (cls.__dict__.get("__doc__") or "").strip():
        problems.append("a docstring: what the method is, in a sentence")
    own = [klass for klass in cls.__mro__ if issubclass(klass, Method) and klass is not Method]
    for name, what in REQUIRED_DECLARATIONS.items():
        value = getattr(cls, name, None)
        if name == "PAPER":
            declared = any(name in vars(klass) for klass in own)
            if not declared or not (value is None or isinstance(value, Paper)):
                problems.append(f"{name}: {what}")
        elif name == "DEVIATIONS":
            lines = isinstance(value, tuple | list) and all(isinstance(v, str) for v in value)
            if not (lines and any(v.strip() for v in value)):
                problems.append(f"{name}: {what}")
        elif not (isinstance(value, str) and value.strip()):
            problems.append(f"{name}: {what}")
    own_handling = (
        cls.predict_partial is not Method.predict_partial
        or cls.fill_invalid is not Method.fill_invalid
    )
    if own_handling and not any("INVALID_PIXELS" in vars(klass) for klass in own):
        problems.append(f"INVALID_PIXELS: {INVALID_PIXELS_REQUIRED}")
    return problems


def _fill(valid: Tensor, x: Tensor) -> Tensor:
    """`x` with its invalid pixels at the training mean (zero after normalising)."""
    return torch.where(valid, x, torch.zeros((), dtype=x.dtype))


def mean_fill_invalid(
    inputs: Mapping[str, Tensor], validity: Mapping[str, Tensor]
) -> dict[str, Tensor]:
    """Return `inputs` with the pixels `validity` marks invalid at the training mean.

    `validity`: bool [B, 1, H, W] per modality, True = valid; zero is the training mean after
    normalising. The default `fill_invalid`, and what every method gets under
    `--invalid-fill mean`. Once per (tensor, mask) for all views of a window (`encode_once`),
    so the filled tensor, and what encodes it, is shared by the views.
    """
    out = dict(inputs)
    for m, valid in validity.items():
        if m in out:
            out[m] = encode_once(("mean_fill_invalid", valid), out[m], partial(_fill, valid))
    return out


def invalid_masks(
    inputs: Mapping[str, Tensor], validity: Mapping[str, Tensor] | None
) -> dict[str, Tensor]:
    """Return the masks of `validity` for modalities of `inputs` with an invalid pixel.

    A window without invalid pixels is then predicted exactly as a clean one.
    """
    return {
        m: valid
        for m, valid in (validity or {}).items()
        if m in inputs and not encode_once("all_valid", valid, _all_true)
    }


def _all_true(valid: Tensor) -> bool:
    return bool(valid.all())


def predict_per_pixel_scenario(
    predict: Callable[[Mapping[str, Tensor]], Tensor],
    inputs: Mapping[str, Tensor],
    validity: Mapping[str, Tensor],
) -> Tensor:
    """Per pixel, `predict`'s logits for the scenario of the modalities valid there.

    For a method whose missing-modality mechanism is a choice per scenario (MetaRS picks its
    heads by which modalities are present): each subset of the invalid modalities is dropped
    in turn (the others keep their invalid pixels mean-filled) and its logits kept where
    exactly those modalities are invalid; where every present modality is invalid, the mean
    fill's logits stand. A modality invalid everywhere gives the prediction without it.
    """
    invalid = [m for m in inputs if m in validity]
    filled = mean_fill_invalid(inputs, validity)
    regions: dict[tuple[str, ...], Tensor] = {}
    for size in range(len(invalid) + 1):
        for dropped in itertools.combinations(invalid, size):
            region = torch.ones_like(validity[invalid[0]])
            for m in invalid:
                region = region & (~validity[m] if m in dropped else validity[m])
            if len(dropped) == len(inputs):  # every present modality invalid: the mean fill
                regions[()] = regions[()] | region
            else:
                regions[dropped] = region
    out = None
    for dropped, region in regions.items():
        if not bool(region.any()):  # the regions cover every pixel once
            continue
        logits = predict({m: x for m, x in filled.items() if m not in dropped})
        out = logits if out is None else torch.where(region, logits, out)
    return out


def class_weights(frequencies: tuple[float, ...], scheme: str) -> Tensor:
    """Cross-entropy weights: 1/sqrt(frequency), normalised to mean 1 over present classes."""
    freq = torch.tensor(frequencies, dtype=torch.float32)
    if scheme == "none":
        return torch.ones_like(freq)
    present = freq > 0
    weights = torch.zeros_like(freq)
    weights[present] = freq[present].rsqrt()
    weights[present] /= weights[present].mean()
    return weights


def labels_of(batch: Mapping[str, Tensor]) -> Tensor:
    """Return the label map [B, H, W] of a training batch."""
    return batch[MASK]


def modality_inputs(batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Return the batch's modality tensors (no labels, no availability flags), as they are.

    A sample that lacks a modality holds NaN there (`zero_fill_missing` neutralises it).
    """
    return {k: v for k, v in batch.items() if k != MASK and not k.startswith(AVAILABLE_PREFIX)}


def availability(batch: Mapping[str, Tensor], modalities: Sequence[str]) -> dict[str, Tensor]:
    """Return, per modality, which samples of a training batch have it (bool [B]).

    Every sample has every modality unless the run trains with `--train-missing`.
    """
    size = batch[MASK].shape[0]
    device = batch[MASK].device
    everyone = torch.ones(size, dtype=torch.bool, device=device)
    return {m: batch.get(AVAILABLE_PREFIX + m, everyone).bool() for m in modalities}


def availability_matrix(batch: Mapping[str, Tensor], modalities: Sequence[str]) -> Tensor:
    """`availability` as bool [B, M] in the order of `modalities`."""
    columns = availability(batch, modalities)
    return torch.stack([columns[m] for m in modalities], dim=1)


def complete_samples(batch: Mapping[str, Tensor], modalities: Sequence[str]) -> Tensor:
    """Return which samples (bool [B]) have every one of `modalities`."""
    return availability_matrix(batch, modalities).all(dim=1)


def select_rows(x: Tensor, keep: Tensor) -> Tensor:
    """Return `x[keep]` along the batch dimension, or `x` itself when every row is kept.

    No copy and no change of memory layout for complete data, so a run without missing data
    computes bit for bit what it computed before missing data existed.
    """
    return x if bool(keep.all()) else x[keep]


def place_rows(y: Tensor, keep: Tensor) -> Tensor:
    """Return `y` (the rows where `keep` is True) at those rows of a batch, zeros elsewhere.

    `keep` is bool [B]; `y` itself comes back when every row is kept. The inverse of
    `select_rows`, differentiable with respect to `y`.
    """
    if bool(keep.all()):
        return y
    index = keep.nonzero().squeeze(1)
    return y.new_zeros((keep.shape[0], *y.shape[1:])).index_copy(0, index, y)


def _place(value: Any, keep: Tensor, blank: bool = False) -> Any:
    """Apply `place_rows` to every tensor of a tensor, list, tuple or dict of them.

    With `blank`: zeros of that structure with B = len(keep) rows instead.
    """
    if isinstance(value, Tensor):
        if blank:
            return value.new_zeros((keep.shape[0], *value.shape[1:]))
        return place_rows(value, keep)
    if isinstance(value, Mapping):
        return {k: _place(v, keep, blank) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_place(v, keep, blank) for v in value)
    raise TypeError(f"cannot place {type(value).__name__} back into a batch")


def encode_present(
    encode: Callable[[dict[str, Tensor]], Any],
    inputs: Mapping[str, Tensor],
    present: Mapping[str, Tensor],
) -> Any:
    """Run `encode` on each modality's present rows only and place its outputs back by row.

    Training with missing data (`--train-missing`): a sample that lacks a modality must never
    pass through that modality's encoder or norms, or it enters their batch statistics (and
    running statistics) as whatever fill stands in for it. `encode` maps {modality: tensor}
    (each modality with its own rows: those of `present[m]`, bool [B]; a modality no sample
    has is left out) to a dict {modality: output}, or a tuple of such dicts, where an output
    is a tensor or a list/tuple/dict of tensors with one row per input row. Each output comes
    back with B rows, zeros at the absent ones (the caller puts its missing-modality fill
    there); a modality no sample has gets zeros shaped like another modality's output (same
    structure and shapes for every modality, as every encoder here gives). With every row
    present it is exactly `encode(inputs)`: complete data computes what it did before.
    """
    names = list(inputs)
    if all(bool(present[m].all()) for m in names):
        return encode(dict(inputs))
    rows = {m: inputs[m][present[m]] for m in names if bool(present[m].any())}
    if not rows:
        raise ValueError("encode_present: no sample has any of the modalities")
    out = encode(rows)

    def back(outputs: Mapping[str, Any]) -> dict[str, Any]:
        template = next(iter(outputs.values()))
        placed = {}
        for m in names:
            if m in outputs:
                placed[m] = _place(outputs[m], present[m])
            else:  # no sample has m: zeros, never an encoding of a fill
                placed[m] = _place(template, present[m], blank=True)
        return placed

    return tuple(back(o) for o in out) if isinstance(out, tuple) else back(out)


def zero_fill_missing(batch: Mapping[str, Tensor], modalities: Sequence[str]) -> dict[str, Tensor]:
    """Return the batch's `modalities` with absent samples replaced by zeros.

    Zero is the training mean in normalised space, which is also how a wholly missing modality
    is filled at test time.

    `torch.where`, not a multiplication: NaN * 0 is NaN.
    """
    present = availability(batch, modalities)
    out = {}
    for m in modalities:
        x = batch[m]
        if m in present and not bool(present[m].all()):
            keep = present[m].view(-1, *([1] * (x.dim() - 1)))
            x = torch.where(keep, x, torch.zeros((), dtype=x.dtype, device=x.device))
        out[m] = x
    return out


@contextlib.contextmanager
def evaluation_mode(method: Method) -> Iterator[None]:
    """eval() + inference_mode for the duration, restoring the previous training flag."""
    was_training = method.training
    method.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        method.train(was_training)
