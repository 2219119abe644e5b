"""`run_benchmark.py profile psa`: what PSA's class-balanced sampling really costs (registered by
this method package, next to the code it profiles).

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
warm-up (`benchmark.api.profiling.measure`, the harness's own timing).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor

from benchmark.api import profiling
from methods.components.psa.sampler import (
    gather_pixels,
    host_kernel_name,
    misclassified_on_grid,
    sample_pixels,
    sample_pixels_loop,
    supervised_infonce,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

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
"""A component's repeat runs it back to back for at least this long (`profiling.measure`)."""
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

    origin: profiling.ProfileOrigin
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
    timing: profiling.Measurement


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

    def rows(self, point: PsaPoint, axis: str, origin: profiling.ProfileOrigin) -> list[PsaRow]:
        data = self.inputs(point)
        out = []
        for name in SAMPLERS:
            sample = self.sampler(name, point, data)
            index = sample()
            for component, fn in (("psa_sampling", sample), ("psa_loss", self.loss(data, index))):
                m = profiling.measure(
                    fn, self.device, self.repeats, self.warmup, min_repeat_s=MIN_REPEAT_S
                )
                kernel = sampler_kernel(name, self.device)
                out.append(
                    make_row(origin, axis, component, name, point, int(index.numel()), m, kernel)
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
    origin: profiling.ProfileOrigin,
    axis: str,
    component: str,
    sampler: str,
    point: PsaPoint | None,
    sampled: int,
    m: profiling.Measurement,
    host_kernel: str = "-",
) -> PsaRow:
    where = asdict(point) if point else {k: -1 for k in asdict(PsaPoint(0, 0, 0, 0))}
    return PsaRow(
        origin=origin,
        axis=axis,
        component=component,
        sampler=sampler,
        host_kernel=host_kernel,
        **where,
        sampled_pixels=sampled,
        timing=m,
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
    settings: profiling.ProfileSettings, axes: tuple[str, ...] = tuple(SWEEP_AXES)
) -> pd.DataFrame:
    """Every measurement as one DataFrame (rows = `PsaRow`)."""
    preset, device = settings.preset, settings.device
    repeats, warmup = settings.repeats, settings.warmup
    # Both runs prefetch batches in background threads; they stop however the block ends.
    with settings.open("stars") as stars, settings.open("stars[psa=false]") as no_psa:
        hp = stars.spec.hparams
        method = stars.method
        origin = settings.origin()
        level = hp["psa_level"]
        batch = stars.batch(0, device)
        inputs = {m: batch[m] for m in method.modalities}
        grid = _feature_grid(method, inputs, level)
        preset_point = PsaPoint(
            hp["pixels_per_class"], method.spec.num_classes, grid, hp["batch_size"]
        )
        rows: list[PsaRow] = []

        log.info("profiling a STARS training step (%s preset, %s)", preset.name, origin.device)
        for label, run in (("step", stars), ("step_no_psa", no_psa)):
            sampler = "balanced" if label == "step" else "-"
            counter = itertools.count()
            m = profiling.measure(
                lambda run=run, counter=counter: run.train_step(next(counter), device),
                device,
                repeats,
                warmup,
            )
            rows.append(
                make_row(
                    origin,
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

        m = profiling.measure(
            translation_alignment, device, repeats, warmup, min_repeat_s=MIN_REPEAT_S
        )
        rows.append(make_row(origin, "preset", "translation_alignment", "-", preset_point, 0, m))

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
        rows.extend(bench.rows(point, axis, origin))
    return profiling.profile_frame(rows)


def _feature_grid(method, inputs: dict[str, Tensor], level: int) -> int:
    """Side of the PSA feature grid for the preset's crops (the model decides the stride)."""
    with torch.no_grad():
        shared = method.shared({k: v[:1] for k, v in inputs.items()})
    return int(next(iter(shared.values()))[level].shape[-1])


# --------------------------------------------------------------------------- outputs
@dataclass(frozen=True)
class PsaHeadline:
    step_ms: float
    overhead_pct: dict[str, float]
    """(sampling + PSA loss) / STARS step, per sampler, at the preset's point."""
    step_difference_pct: float
    """(step with PSA - step without) / step with PSA: the end-to-end cross-check."""
    speedup_vs_loop: dict[str, float]
    """Loop sampling time / sampler's time at the headline point."""
    sampling_ms: dict[str, float]
    """Each sampler's time at the headline point (the loop's included)."""
    host_kernel: str
    """The CPU kernel `balanced` ran ("numba", "numpy", or "-" on an accelerator)."""

    def lines(self) -> list[str]:
        balanced = self.overhead_pct["balanced"]
        speed = self.speedup_vs_loop["balanced"]
        point = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in HEADLINE_POINT.items())
        kernel = "" if self.host_kernel == "-" else f" ({self.host_kernel} kernel)"
        lines = [
            f"PSA sampling + loss (balanced) = {balanced:.2f} % of a {self.step_ms:.0f} ms "
            f"STARS step (step with PSA - without: {self.step_difference_pct:.2f} %)",
            f"vectorised sampler{kernel} {speed:.2f}x faster than the loop reference "
            f"({self.sampling_ms['balanced']:.3f} vs {self.sampling_ms['loop']:.3f} ms; {point})",
        ]
        if self.host_kernel == "numba":
            lines.append(
                f"NumPy fallback kernel (same sample, no numba): "
                f"{self.speedup_vs_loop['balanced_numpy']:.2f}x "
                f"({self.sampling_ms['balanced_numpy']:.3f} ms)"
            )
        return lines


def _at(frame: pd.DataFrame, axis: str, component: str, sampler: str | None = None) -> float:
    rows = frame[(frame.axis == axis) & (frame.component == component)]
    if sampler is not None:
        rows = rows[rows.sampler == sampler]
    return float(rows.median_ms.iloc[0])


def psa_headline(frame: pd.DataFrame) -> PsaHeadline:
    step = _at(frame, "preset", "step")
    no_psa = _at(frame, "preset", "step_no_psa")
    overhead = {
        s: 100
        * (_at(frame, "preset", "psa_sampling", s) + _at(frame, "preset", "psa_loss", s))
        / step
        for s in SAMPLERS
    }
    sampling = {s: _at(frame, "headline", "psa_sampling", s) for s in SAMPLERS}
    speedup = {s: sampling["loop"] / ms for s, ms in sampling.items()}
    balanced = frame[(frame.axis == "headline") & (frame.sampler == "balanced")]
    kernel = str(balanced.host_kernel.iloc[0])
    return PsaHeadline(step, overhead, 100 * (step - no_psa) / step, speedup, sampling, kernel)


def psa_markdown(frame: pd.DataFrame, headline: PsaHeadline) -> str:
    device, preset = frame.device.iloc[0], frame.preset.iloc[0]
    preset_rows = frame[frame.axis == "preset"]
    first = preset_rows.iloc[0]
    point = (
        f"{first.pixels_per_class} px/class, {first.num_classes} classes, "
        f"{first.feature_size}×{first.feature_size} features, batch {first.batch_size}"
    )
    step = headline.step_ms
    parts = [
        "# PSA overhead profile",
        "",
        f"Device: {device}. Preset: `{preset}` ({point}). Commit: "
        f"`{frame['commit'].iloc[0]}`. Times are medians of "
        f"{int(first.repeats)} synchronised repeats after warm-up (a repeat of a call under "
        f"{1e3 * MIN_REPEAT_S:.0f} ms runs it back to back for that long; the CSV's "
        "`calls_per_repeat`); memory is the peak allocated "
        "above what was allocated before the call.",
        "",
        *[f"- {line}" for line in headline.lines()],
        "",
        "## One STARS training step at the preset",
        "",
    ]
    balanced = preset_rows[preset_rows.sampler.isin(["balanced", "-"])]
    translation = _at(frame, "preset", "translation_alignment")
    sampling = _at(frame, "preset", "psa_sampling", "balanced")
    loss = _at(frame, "preset", "psa_loss", "balanced")
    rest = step - sampling - loss - translation
    table = pd.DataFrame(
        {
            "component": [
                "PSA sampling (balanced)",
                "PSA loss (forward + backward)",
                "translation + alignment (forward + backward)",
                "rest of the step (data, encoders, decoder, CE, optimiser)",
                "whole step (harness `train_step`)",
                "whole step with `psa=false`",
            ],
            "ms": [sampling, loss, translation, rest, step, _at(frame, "preset", "step_no_psa")],
        }
    )
    table["% of step"] = 100 * table.ms / step
    peaks = {
        "PSA sampling (balanced)": balanced[balanced.component == "psa_sampling"].peak_mb.iloc[0],
        "PSA loss (forward + backward)": balanced[balanced.component == "psa_loss"].peak_mb.iloc[0],
    }
    table["peak MiB"] = [peaks.get(c, float("nan")) for c in table.component]
    parts += [profiling.frame_markdown(table), ""]
    parts += [
        "The isolated components are timed on their own; the last row is the end-to-end check "
        "(the same step with PSA switched off). `rest` is the whole step minus the three "
        "components above it.",
        "",
        "## Samplers at the preset's point and at the headline point",
        "",
    ]
    rows = []
    for axis in ("preset", "headline"):
        for s in SAMPLERS:
            sub = frame[(frame.axis == axis) & (frame.sampler == s)]
            samp = sub[sub.component == "psa_sampling"].iloc[0]
            los = sub[sub.component == "psa_loss"].iloc[0]
            rows.append(
                {
                    "point": axis,
                    "sampler": s,
                    "CPU kernel": samp.host_kernel,
                    "pixels drawn": int(samp.sampled_pixels),
                    "sampling ms": samp.median_ms,
                    "sampling peak MiB": samp.peak_mb,
                    "loss ms": los.median_ms,
                    "(sampling + loss) % of step": 100 * (samp.median_ms + los.median_ms) / step,
                    "loop / sampler": _at(frame, axis, "psa_sampling", "loop") / samp.median_ms,
                }
            )
    parts += [profiling.frame_markdown(pd.DataFrame(rows)), ""]
    headline_point = ", ".join(f"{k} = {v}" for k, v in HEADLINE_POINT.items())
    parts += [
        f"Headline point: {headline_point} (pixels per class as at the preset). `hard_easy` "
        "includes working out which pixels are misclassified (the logits read at the grid's cell "
        "centres). `balanced_numpy` draws the same sample as `balanced` with the NumPy kernel, "
        "the one the CPU runs where numba (the `fast` extra) is not installed.",
        "",
        "## Sweeps (one axis at a time around the preset's point): sampling ms",
        "",
    ]
    for axis in SWEEP_AXES:
        sub = frame[(frame.axis == axis) & (frame.component == "psa_sampling")]
        if sub.empty:
            continue
        pivot = sub.pivot_table(index=axis, columns="sampler", values="median_ms")
        loss = frame[
            (frame.axis == axis) & (frame.component == "psa_loss") & (frame.sampler == "balanced")
        ].set_index(axis)["median_ms"]
        pivot = pivot[[s for s in SAMPLERS if s in pivot.columns]]
        pivot["PSA loss ms (balanced)"] = loss
        pivot["loop / balanced"] = pivot["loop"] / pivot["balanced"]
        parts += [
            f"### {axis.replace('_', ' ')}",
            "",
            profiling.frame_markdown(pivot.reset_index()),
            "",
        ]
    return "\n".join(parts)


def psa_figure(frame: pd.DataFrame) -> Figure:
    axes_present = [a for a in SWEEP_AXES if (frame.axis == a).any()]
    fig = profiling.profile_figure(2.2)
    colours = profiling.method_colours(list(SAMPLERS))
    grid = fig.subplots(1, max(1, len(axes_present)), squeeze=False)[0]
    for ax, axis in zip(grid, axes_present, strict=False):
        sub = frame[frame.axis == axis]
        for i, sampler in enumerate(SAMPLERS):
            line = sub[(sub.component == "psa_sampling") & (sub.sampler == sampler)]
            ax.plot(
                line[axis],
                line.median_ms,
                marker="o",
                ms=2.5,
                color=colours[sampler],
                ls=profiling.LINESTYLES[i % len(profiling.LINESTYLES)],
                label=f"sampling: {sampler}",
            )
        loss = sub[(sub.component == "psa_loss") & (sub.sampler == "balanced")]
        ax.plot(loss[axis], loss.median_ms, color="#777777", lw=0.8, label="PSA loss (balanced)")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(axis.replace("_", " "))
        ax.grid(alpha=0.3, lw=0.4)
    grid[0].set_ylabel("ms per call (median)")
    handles, labels = grid[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=5, frameon=False)
    fig.suptitle(
        f"PSA sampling and loss cost · {frame.device.iloc[0]} · preset {frame.preset.iloc[0]}"
    )
    return fig


REPORT = profiling.ProfileReport("psa_profile", psa_headline, psa_markdown, psa_figure)
"""`psa_profile.csv`, `.md` and `.png/.pdf`, and the headline the CLI prints."""


def run_profile(settings: profiling.ProfileSettings, methods: Sequence[str]) -> pd.DataFrame:
    """`profile psa`'s measurements (the profiler registry's entry point; STARS only)."""
    return profile_psa(settings)


def write_profile(frame: pd.DataFrame, out: Path) -> tuple[list[str], list[Path]]:
    """`profile psa`'s CSV, Markdown and figure, and its headline lines."""
    return REPORT.write(frame, out)
