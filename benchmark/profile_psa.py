"""`run_benchmark.py profile psa`: what PSA's class-balanced sampling really costs.

The STARS authors name the overhead of class-balanced sampling as a limitation. This profiler
puts a number on it, in one process, against the step it belongs to:

* the **step**: a whole STARS training step (`train_step`, the harness's own), at the preset;
  and the same step with `psa=false`, so the isolated measurements can be cross-checked;
* **translation + alignment**: every ordered pair's translators and the stop-gradient alignment
  loss, forward and backward (into the translators and leaf copies of the features);
* **PSA sampling**, per sampler: `balanced` (the vectorised one STARS uses), `balanced_numpy`
  (the same sample drawn by the NumPy kernel, which runs on the CPU where numba is not
  installed), `uniform`, `loop` (a per-class, per-image Python loop: the naive reference) and
  `hard_easy` (balanced, half of each class's budget from currently misclassified pixels,
  including working out which those are);
* the **PSA loss** on the sampled pixels: gather, projection head, supervised InfoNCE for every
  ordered pair, forward and backward.

Sampling and the loss are then swept one axis at a time around the preset's point (pixels per
class, number of classes, feature-map size, batch size) on label maps with a geometric class
distribution (so some classes are rare, as in remote sensing), plus the point the issue names
(16 classes, 64 x 64 features, batch 8). Times are medians of synchronised repeats after
warm-up (`benchmark.timing`).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass

import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor

from benchmark.profile_setup import ProfileSettings
from benchmark.timing import Measurement, measure
from benchmark.train import train_step
from methods.components.psa import (
    gather_pixels,
    host_kernel_name,
    misclassified_on_grid,
    sample_pixels,
    sample_pixels_loop,
    supervised_infonce,
)

log = logging.getLogger(__name__)

SAMPLERS = ("balanced", "balanced_numpy", "uniform", "loop", "hard_easy")
HARD_FRACTION = 0.5
"""Share of a class's budget drawn from misclassified pixels by the `hard_easy` sampler."""
SWEEP_AXES: dict[str, tuple[int, ...]] = {
    "pixels_per_class": (32, 64, 128, 256, 512),
    "num_classes": (4, 6, 16, 32),
    "feature_size": (16, 32, 64, 128),
    "batch_size": (2, 4, 8, 16),
}
MIN_REPEAT_S = 0.005
"""A component's repeat runs it back to back for at least this long (`benchmark.timing`)."""
HEADLINE_POINT = {"num_classes": 16, "feature_size": 64, "batch_size": 8}
"""The issue's yardstick for the vectorised sampler versus the loop."""
IGNORE_SHARE = 0.02
CLASS_DECAY = 0.55
"""Class k is drawn with probability proportional to CLASS_DECAY**k: a long tail."""


@dataclass(frozen=True)
class PsaPoint:
    pixels_per_class: int
    num_classes: int
    feature_size: int
    batch_size: int


@dataclass(frozen=True)
class PsaRow:
    """One line of the CSV: a component timed at a point, with a sampler where it has one."""

    device: str
    preset: str
    commit: str
    axis: str
    """Which sweep the row belongs to: 'preset', 'headline' or a `SWEEP_AXES` name."""
    component: str
    sampler: str
    host_kernel: str
    """The CPU sampling kernel the sampler ran ("numba" or "numpy"); "-" for the loop, for
    non-sampling rows and for samplers that ran on an accelerator."""
    pixels_per_class: int
    num_classes: int
    feature_size: int
    batch_size: int
    sampled_pixels: int
    median_ms: float
    q1_ms: float
    q3_ms: float
    repeats: int
    calls_per_repeat: int
    peak_mb: float


def synthetic_labels(point: PsaPoint, ignore_index: int, generator: torch.Generator) -> Tensor:
    """[B, s, s] blocky label maps with a geometric class distribution and a few ignored pixels."""
    coarse = max(1, point.feature_size // 4)
    weights = CLASS_DECAY ** torch.arange(point.num_classes, dtype=torch.float64)
    draws = torch.multinomial(
        weights, point.batch_size * coarse * coarse, replacement=True, generator=generator
    )
    labels = draws.view(point.batch_size, 1, coarse, coarse).float()
    labels = F.interpolate(labels, size=(point.feature_size,) * 2, mode="nearest")[:, 0].long()
    ignored = torch.rand(labels.shape, generator=generator) < IGNORE_SHARE
    return labels.masked_fill(ignored, ignore_index)


def prediction_logits(point: PsaPoint, device: torch.device) -> Tensor:
    """Random [B, K, 8s, 8s] logits: the decoder's output the `hard_easy` split reads at the
    grid's cell centres (an s x s feature grid is 1/8 of the crop at the PSA level)."""
    side = 8 * point.feature_size
    return torch.randn(point.batch_size, point.num_classes, side, side, device=device)


def sampler_call(
    name: str, point: PsaPoint, labels: Tensor, logits: Tensor, ignore_index: int
) -> Callable[[], Tensor]:
    """A zero-argument call of sampler `name` at `point`: what the profiler and the
    pytest-benchmark suite both time (`hard_easy` includes finding the misclassified pixels)."""
    k, ppc = point.num_classes, point.pixels_per_class
    if name == "loop":
        return lambda: sample_pixels_loop(labels, ppc, k, ignore_index)
    if name == "balanced_numpy":
        return lambda: sample_pixels(
            labels, ppc, k, ignore_index, on_host=True, host_kernel="numpy"
        )
    if name == "hard_easy":

        def hard_easy() -> Tensor:
            hard = misclassified_on_grid(logits, labels)
            return sample_pixels(
                labels, ppc, k, ignore_index, hard=hard, hard_fraction=HARD_FRACTION
            )

        return hard_easy
    return lambda: sample_pixels(labels, ppc, k, ignore_index, mode=name)


class PsaBench:
    """Times sampling and the PSA loss at any point, with the preset STARS model's projector."""

    def __init__(
        self,
        projector: torch.nn.Module,
        channels: int,
        pairs: int,
        hparams: dict,
        ignore_index: int,
        device: torch.device,
        repeats: int,
        warmup: int,
    ) -> None:
        self.projector = projector
        self.channels = channels
        self.pairs = pairs
        self.hparams = hparams
        self.ignore_index = ignore_index
        self.device = device
        self.repeats = repeats
        self.warmup = warmup

    def inputs(self, point: PsaPoint) -> dict[str, Tensor]:
        generator = torch.Generator().manual_seed(0)
        labels = synthetic_labels(point, self.ignore_index, generator).to(self.device)
        shape = (point.batch_size, self.channels, point.feature_size, point.feature_size)
        return {
            "labels": labels,
            "features": torch.randn(shape, device=self.device),
            "translated": torch.randn(shape, device=self.device, requires_grad=True),
            "logits": prediction_logits(point, self.device),
        }

    def sampler(self, name: str, point: PsaPoint, data: dict[str, Tensor]) -> Callable[[], Tensor]:
        return sampler_call(name, point, data["labels"], data["logits"], self.ignore_index)

    def loss(self, data: dict[str, Tensor], index: Tensor) -> Callable[[], None]:
        classes = data["labels"].reshape(-1)[index]
        params = list(self.projector.parameters())

        def psa_loss() -> None:
            terms = []
            for _ in range(self.pairs):
                keys = self.projector(gather_pixels(data["features"], index))
                anchors = self.projector(gather_pixels(data["translated"], index))
                terms.append(
                    supervised_infonce(anchors, keys, classes, self.hparams["temperature"])
                )
            torch.autograd.grad(torch.stack(terms).mean(), [data["translated"], *params])

        return psa_loss

    def rows(self, point: PsaPoint, axis: str, base: dict) -> list[PsaRow]:
        data = self.inputs(point)
        out = []
        for name in SAMPLERS:
            sample = self.sampler(name, point, data)
            index = sample()
            for component, fn in (("psa_sampling", sample), ("psa_loss", self.loss(data, index))):
                m = measure(fn, self.device, self.repeats, self.warmup, min_repeat_s=MIN_REPEAT_S)
                kernel = sampler_kernel(name, self.device)
                out.append(
                    make_row(base, axis, component, name, point, int(index.numel()), m, kernel)
                )
        return out


def sampler_kernel(sampler: str, device: torch.device) -> str:
    """The CPU kernel behind `sampler` on `device` (the `PsaRow.host_kernel` column)."""
    if sampler == "balanced_numpy":
        return "numpy"
    if sampler in ("-", "loop") or device.type != "cpu":
        return "-"
    return host_kernel_name()


def make_row(
    base: dict,
    axis: str,
    component: str,
    sampler: str,
    point: PsaPoint | None,
    sampled: int,
    m: Measurement,
    host_kernel: str = "-",
) -> PsaRow:
    where = asdict(point) if point else {k: -1 for k in asdict(PsaPoint(0, 0, 0, 0))}
    return PsaRow(
        **base,
        axis=axis,
        component=component,
        sampler=sampler,
        host_kernel=host_kernel,
        **where,
        sampled_pixels=sampled,
        **m.row_fields(),
    )


def sweep_points(preset_point: PsaPoint) -> list[tuple[str, PsaPoint]]:
    """The preset's point, the headline point, then one axis at a time around the preset."""
    points = [
        ("preset", preset_point),
        ("headline", PsaPoint(preset_point.pixels_per_class, **HEADLINE_POINT)),
    ]
    for axis, values in SWEEP_AXES.items():
        for value in values:
            point = PsaPoint(**{**asdict(preset_point), axis: value})
            points.append((axis, point))
    return points


def profile_psa(
    settings: ProfileSettings, axes: tuple[str, ...] = tuple(SWEEP_AXES)
) -> pd.DataFrame:
    """Every measurement as one DataFrame (rows = `PsaRow`)."""
    preset, device = settings.preset, settings.device
    repeats, warmup = settings.repeats, settings.warmup
    # Both runs prefetch batches in background threads; they stop however the block ends.
    with settings.open("stars") as stars, settings.open("stars[psa=false]") as no_psa:
        hp = stars.spec.hparams_dict
        method = stars.method
        base = settings.row_fields()
        level = hp["psa_level"]
        batch = stars.batch(0, device)
        inputs = {m: batch[m] for m in method.modalities}
        grid = _feature_grid(method, inputs, level)
        preset_point = PsaPoint(
            hp["pixels_per_class"], method.spec.num_classes, grid, hp["batch_size"]
        )
        rows: list[PsaRow] = []

        log.info("profiling a STARS training step (%s preset, %s)", preset.name, base["device"])
        for label, run in (("step", stars), ("step_no_psa", no_psa)):
            sampler = "balanced" if label == "step" else "-"
            counter = itertools.count()
            m = measure(
                lambda run=run, counter=counter: train_step(
                    run.method, run.sampler, next(counter), device
                ),
                device,
                repeats,
                warmup,
            )
            rows.append(
                make_row(
                    base,
                    "preset",
                    label,
                    sampler,
                    preset_point,
                    0,
                    m,
                    sampler_kernel(sampler, device),
                )
            )

        with torch.no_grad(), method.autocast():
            _, features = method.encode(inputs)
        leaves = {
            m: [f.detach().float().requires_grad_(True) for f in pyramid]
            for m, pyramid in features.items()
        }
        translator_params = list(method.translators.parameters())

        def translation_alignment() -> None:
            with method.autocast():
                translations = method.translators.translate_all(leaves)
                loss = method.translation_loss(leaves, translations)
            torch.autograd.grad(
                loss, [*translator_params, *leaves[method.modalities[0]]], allow_unused=True
            )

        m = measure(translation_alignment, device, repeats, warmup, min_repeat_s=MIN_REPEAT_S)
        rows.append(make_row(base, "preset", "translation_alignment", "-", preset_point, 0, m))

    pairs = len(method.modalities) * (len(method.modalities) - 1)
    bench = PsaBench(
        method.projector,
        method.shared.channels[level],
        pairs,
        hp,
        method.spec.ignore_index,
        device,
        repeats,
        warmup,
    )
    for axis, point in sweep_points(preset_point):
        if axis not in ("preset", "headline") and axis not in axes:
            continue
        log.info("PSA %s: %s", axis, point)
        rows.extend(bench.rows(point, axis, base))
    return pd.DataFrame([asdict(r) for r in rows])


def _feature_grid(method, inputs: dict[str, Tensor], level: int) -> int:
    """Side of the PSA feature grid for the preset's crops (the model decides the stride)."""
    with torch.no_grad():
        shared = method.shared({k: v[:1] for k, v in inputs.items()})
    return int(next(iter(shared.values()))[level].shape[-1])
