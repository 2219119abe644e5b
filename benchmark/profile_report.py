"""CSV, Markdown summary and figure for the two profilers, plus their one-line headlines.

The numbers a reader looks for first (PSA overhead as % of a STARS step; the vectorised sampler
versus the loop; data loading as % of a step; the harness versus a bare loop) are computed here,
once, and printed by the CLI and written into the Markdown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from benchmark.io import atomic_write_text
from benchmark.plots import DOUBLE, LINESTYLES, method_colours, new_figure, save
from benchmark.profile_psa import HEADLINE_POINT, MIN_REPEAT_S, SAMPLERS, SWEEP_AXES
from benchmark.profile_step import PHASES
from benchmark.reporting import markdown_row, write_csv


def frame_markdown(frame: pd.DataFrame, digits: int = 2) -> str:
    """A DataFrame as a GitHub pipe table, numbers right-aligned with `digits` decimals."""

    def cell(value) -> str:
        if isinstance(value, float):
            return "–" if math.isnan(value) else f"{value:,.{digits}f}"
        return str(value)

    numeric = [pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns]
    lines = [markdown_row(frame.columns)]
    lines.append("|" + "|".join("--:" if n else ":--" for n in numeric) + "|")
    for row in frame.itertuples(index=False):
        lines.append(markdown_row(cell(v) for v in row))
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- PSA
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
    parts += [frame_markdown(table), ""]
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
    parts += [frame_markdown(pd.DataFrame(rows)), ""]
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
        parts += [f"### {axis.replace('_', ' ')}", "", frame_markdown(pivot.reset_index()), ""]
    return "\n".join(parts)


def psa_figure(frame: pd.DataFrame, stem: Path) -> list[Path]:
    axes_present = [a for a in SWEEP_AXES if (frame.axis == a).any()]
    fig = new_figure(DOUBLE, 2.2)
    colours = method_colours(list(SAMPLERS))
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
                ls=LINESTYLES[i % len(LINESTYLES)],
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
    return save(fig, stem)


def write_outputs(frame: pd.DataFrame, out: Path, stem: str, markdown: str, figure) -> list[Path]:
    """`<stem>.csv`, `<stem>.md` (atomically) and the figure `<stem>.png/.pdf` under `out`."""
    out.mkdir(parents=True, exist_ok=True)
    csv, md = out / f"{stem}.csv", out / f"{stem}.md"
    write_csv(frame, csv)
    atomic_write_text(md, markdown)
    return [csv, md, *figure(frame, out / stem)]


def write_psa_outputs(frame: pd.DataFrame, out: Path) -> tuple[PsaHeadline, list[Path]]:
    headline = psa_headline(frame)
    markdown = psa_markdown(frame, headline)
    return headline, write_outputs(frame, out, "psa_profile", markdown, psa_figure)


# --------------------------------------------------------------------------- step
@dataclass(frozen=True)
class StepHeadline:
    data_pct: dict[str, float]
    """Data loading / step, per method (late window)."""
    harness_over_bare: float

    def lines(self) -> list[str]:
        worst = max(self.data_pct, key=self.data_pct.get)
        return [
            f"data loading: at most {self.data_pct[worst]:.2f} % of a step ({worst})",
            f"harness baseline step / bare PyTorch loop = {self.harness_over_bare:.3f}",
        ]


def step_headline(frame: pd.DataFrame) -> StepHeadline:
    late = frame[frame.window == "late"]
    data = {r.method: 100 * r.data_ms / r.median_ms for r in late.itertuples()}
    harness = float(late[late.method == "baseline"].median_ms.iloc[0])
    bare = float(frame[frame.method.str.startswith("bare_loop")].median_ms.iloc[0])
    return StepHeadline(data, harness / bare)


def step_markdown(frame: pd.DataFrame, headline: StepHeadline) -> str:
    table = frame[frame.window != "early"].copy()
    table["data %"] = 100 * table.data_ms / table.median_ms
    table["params (M)"] = table.parameters / 1e6
    columns = [
        "method",
        "median_ms",
        "q1_ms",
        "q3_ms",
        *[f"{p}_ms" for p in PHASES],
        "data %",
        "peak_mb",
        "params (M)",
    ]
    early = frame[frame.window == "early"][["method", "median_ms"]].rename(
        columns={"median_ms": "early step_ms"}
    )
    table = table[columns].merge(early, on="method", how="left")
    table = table.rename(
        columns={"median_ms": "step_ms", "q1_ms": "step_q1_ms", "q3_ms": "step_q3_ms"}
    )
    return "\n".join(
        [
            "# Training-step profile",
            "",
            f"Device: {frame.device.iloc[0]}. Preset: `{frame.preset.iloc[0]}`. Commit: "
            f"`{frame['commit'].iloc[0]}`. Medians of "
            f"{int(frame.repeats.iloc[0])} harness steps after warm-up, in the run's last steps "
            "(`early step_ms`: its first steps; distill and generative change stage during a "
            "run). Phases come from separate, synchronised steps, so they need not add up to "
            "the unclocked step exactly.",
            "",
            *[f"- {line}" for line in headline.lines()],
            "",
            frame_markdown(table),
            "",
            "`method_other`: the method's work after its last optimiser step (e.g. STARS's "
            "collapse gauges); `metrics`: the harness's loss check. The bare loop runs forward, "
            "cross-entropy, backward and AdamW on the baseline's network with a batch already "
            "on the device; the harness adds data loading, class weights, gradient clipping, "
            "the one-cycle schedule and the loss check.",
            "",
        ]
    )


def step_figure(frame: pd.DataFrame, stem: Path) -> list[Path]:
    late = frame[(frame.window == "late")]
    fig = new_figure(DOUBLE, 0.35 * len(late) + 0.9)
    ax = fig.subplots()
    colours = method_colours(list(PHASES))
    left = pd.Series(0.0, index=late.index)
    for phase in PHASES:
        ax.barh(late.method, late[f"{phase}_ms"], left=left, color=colours[phase], label=phase)
        left += late[f"{phase}_ms"].fillna(0)
    bare = frame[frame.method.str.startswith("bare_loop")]
    if not bare.empty:
        ax.axvline(
            float(bare.median_ms.iloc[0]),
            color="black",
            lw=0.8,
            ls="--",
            label="bare loop (baseline network)",
        )
    ax.invert_yaxis()
    ax.set_xlabel("ms per training step (median; phases from synchronised steps)")
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=4, frameon=False)
    ax.set_title(
        f"Where a training step goes · {frame.device.iloc[0]} · preset {frame.preset.iloc[0]}"
    )
    return save(fig, stem)


def write_step_outputs(frame: pd.DataFrame, out: Path) -> tuple[StepHeadline, list[Path]]:
    headline = step_headline(frame)
    markdown = step_markdown(frame, headline)
    return headline, write_outputs(frame, out, "step_profile", markdown, step_figure)
