"""What every profiler writes (a CSV, a Markdown summary, a figure, headline lines: a
`ProfileReport`), and the step profiler's headline, summary and figure.

The numbers a reader looks for first (data loading as % of a step; the harness versus a bare
loop) are computed here, once, and printed by the CLI and written into the Markdown.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Protocol, TypeVar

import pandas as pd
from matplotlib.figure import Figure

from benchmark.profile.timing import PHASES
from benchmark.report.frames import write_csv
from benchmark.report.plots import DOUBLE, method_colours, new_figure, save
from benchmark.report.render import markdown_row
from benchmark.system.confine import write_target
from benchmark.system.io import atomic_write_text


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


class Headline(Protocol):
    """The numbers a reader looks for first, as the lines the CLI prints."""

    def lines(self) -> list[str]: ...


H = TypeVar("H", bound=Headline)


@dataclass(frozen=True)
class ProfileReport(Generic[H]):
    """How a profiler writes its frame: `<stem>.csv`, `<stem>.md` (the summary, which states the
    headline) and the figure `<stem>.png/.pdf`, and the headline's lines for the CLI."""

    stem: str
    headline: Callable[[pd.DataFrame], H]
    markdown: Callable[[pd.DataFrame, H], str]
    figure: Callable[[pd.DataFrame], Figure]

    def write(self, frame: pd.DataFrame, out: Path) -> tuple[list[str], list[Path]]:
        """Write the files under `out` (the Markdown atomically); the headline lines, the files."""
        headline = self.headline(frame)
        markdown = self.markdown(frame, headline)
        write_target(out).mkdir(parents=True, exist_ok=True)
        csv, md = out / f"{self.stem}.csv", out / f"{self.stem}.md"
        write_csv(frame, csv)
        atomic_write_text(md, markdown)
        return headline.lines(), [csv, md, *save(self.figure(frame), out / self.stem)]


def profile_figure(height: float) -> Figure:
    """A figure as wide as the report's page-wide figures, `height` inches tall."""
    return new_figure(DOUBLE, height)


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


def step_figure(frame: pd.DataFrame) -> Figure:
    late = frame[(frame.window == "late")]
    fig = profile_figure(0.35 * len(late) + 0.9)
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
    return fig


STEP_REPORT = ProfileReport("step_profile", step_headline, step_markdown, step_figure)


# --------------------------------------------------------------------------- eval
@dataclass(frozen=True)
class EvalHeadline:
    sharing: dict[str, float]
    """Per method: test time with each scenario alone / with every scenario in one pass."""
    corrupted_sharing: dict[str, float]
    """Per method: one pass per severity / every severity in one pass."""
    harness_over_bare: dict[str, float]
    """Per method: the test pass / `predict_views` alone on the same windows."""

    def lines(self) -> list[str]:
        lines = []
        if self.sharing:
            low, high = min(self.sharing.values()), max(self.sharing.values())
            lines.append(f"one pass for every scenario: {low:.2f}-{high:.2f}x faster than one each")
        if self.corrupted_sharing:
            low, high = min(self.corrupted_sharing.values()), max(self.corrupted_sharing.values())
            lines.append(f"one pass for every severity: {low:.2f}-{high:.2f}x faster than one each")
        if self.harness_over_bare:
            worst = max(self.harness_over_bare, key=self.harness_over_bare.get)
            lines.append(
                f"harness test pass / bare predict_views: at most "
                f"{self.harness_over_bare[worst]:.2f} ({worst})"
            )
        return lines


def eval_headline(frame: pd.DataFrame) -> EvalHeadline:
    times = frame.pivot_table(index="method", columns="evaluation", values="median_ms")

    def ratio(numerator: str, denominator: str) -> dict[str, float]:
        if numerator not in times or denominator not in times:
            return {}
        values = times[numerator] / times[denominator]
        return {m: float(v) for m, v in values.items() if not math.isnan(v)}

    return EvalHeadline(
        ratio("test_per_scenario", "test"),
        ratio("corrupted_per_severity", "corrupted"),
        ratio("test", "test_bare_forward"),
    )


def eval_markdown(frame: pd.DataFrame, headline: EvalHeadline) -> str:
    columns = [
        "method",
        "evaluation",
        "corruption",
        "tiles",
        "views",
        "windows_per_tile",
        "median_ms",
        "ms_per_tile",
        "ms_per_view",
        "ms_per_window",
    ]
    first = frame.iloc[0]
    return "\n".join(
        [
            "# Evaluation profile",
            "",
            f"Device: {first.device}. Preset: `{first.preset}`. Commit: `{first['commit']}`. "
            f"Windows of {int(first.window)} px (a smaller tile whole) at overlap "
            f"{first.overlap:g}. Medians of {int(first.repeats)} passes after warm-up over the "
            "first tiles of each split.",
            "",
            *[f"- {line}" for line in headline.lines()],
            "",
            frame_markdown(frame[columns]),
            "",
            "`validation`, `test`: the harness's pass, every scenario of a tile through the same "
            "windows at once (each distinct modality tensor encoded once); `test_per_scenario`: "
            "each scenario on its own; `test_bare_forward`: the method's `predict_views` alone "
            "on the same windows, cropped beforehand; `corrupted`: every severity of the "
            "corruption in one pass, `corrupted_per_severity` one pass each. A view is a tile "
            "under one scenario (and severity); `ms_per_window` is per window of one view.",
            "",
        ]
    )


def eval_figure(frame: pd.DataFrame) -> Figure:
    methods = list(dict.fromkeys(frame.method))
    passes = list(dict.fromkeys(frame.evaluation))
    fig = profile_figure(0.3 * len(methods) * len(passes) / 2 + 1.2)
    ax = fig.subplots()
    colours = method_colours(passes)
    height = 0.8 / len(passes)
    for i, evaluation in enumerate(passes):
        rows = frame[frame.evaluation == evaluation].set_index("method").reindex(methods)
        ax.barh(
            [m + i * height for m in range(len(methods))],
            rows.ms_per_tile,
            height=height,
            color=colours[evaluation],
            label=evaluation,
        )
    ax.set_yticks([m + 0.4 - height / 2 for m in range(len(methods))], methods)
    ax.invert_yaxis()
    ax.set_xlabel("ms per tile (median pass / tiles)")
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=3, frameon=False)
    ax.set_title(f"Where evaluation goes · {frame.device.iloc[0]} · preset {frame.preset.iloc[0]}")
    return fig


EVAL_REPORT = ProfileReport("eval_profile", eval_headline, eval_markdown, eval_figure)
