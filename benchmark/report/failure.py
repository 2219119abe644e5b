"""Failure-model metrics: how a single model fares when sensors fail at random at test time.

After Liao et al., "Benchmarking Multi-modal Semantic Segmentation under Sensor Failures:
Missing and Noisy Modality Robustness" (CVPRW 2025, arXiv 2503.18445, and their evaluation
code `val_mm_EMM.py`). With N modalities, a *failure pattern* is the set of modalities lost;
the pattern that loses all N is never scored (no input is left), which leaves the 2^N - 1
scenarios of a MissBench dataset, the full one included. Per seed, from the stored per-tile
confusion matrices of the selected test records (no new inference):

- `uniform_missing`: the unweighted mean of mIoU over the scenarios with at least one
  modality missing (the robustness table's "mean missing"), for comparison;
- `uniform_all`: the unweighted mean over all 2^N - 1 scenarios, the full one included: the
  paper's mIoU^Avg_EMM ("all damaged combinations are equally probable");
- `expected_p<p>`: the paper's mIoU^E_EMM. Each modality fails independently with probability
  p (Bernoulli), so scenario s, which lacks k_s modalities, has probability
  p^k_s (1 - p)^(N - k_s); the patterns are renormalised over the scenarios that keep a
  modality (divided by 1 - p^N, as the official code divides by the total probability of the
  scored patterns), and the metric is the expected *per-scenario mIoU*:
  sum_s w_s(p) mIoU_s, each mIoU_s computed over the whole test split. It is not the mIoU of
  the expected confusion matrix. p = 0 gives the full scenario's mIoU; p = 0.5 gives exactly
  `uniform_all`;
- `random_p<p>`: tile-level random missingness. Every test tile loses each modality
  independently with probability p; a draw that loses all of them is drawn again (the
  rejection sampler of the same renormalised distribution); the tile's confusion matrix of the
  drawn scenario enters one sum over all tiles, and mIoU is computed from that sum. The draws
  are seeded per tile name (`DRAW_SEED`, p, the name), so every method and training seed meets
  the same failures; the value is the mean over `DRAWS` draws. This is not the paper's RMM,
  which zeroes a random share of a failed modality's *pixels* (it needs new inference); as the
  number of tiles grows it tends to the mIoU of the probability-weighted confusion matrix,
  which can differ from `expected_p<p>` when scenarios differ in which classes they get right.

Only single-model methods are scored: an oracle (`kind` oracle, e.g. `unimodal`) is one model
per scenario, not one deployed model that meets failures, and is left out (said so in the
caption). A method or seed without every scenario gets no value. Mean, std and 95 % t-CI over
seeds (`stats.summarize`); the paired bootstrap against the reference resamples seeds and test
tiles jointly (`stats.paired_bootstrap` with one weight per scenario or draw).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from benchmark.core.scenarios import Scenario, all_scenarios
from benchmark.report import plots
from benchmark.report.frames import paired_seeds, records_by_seed
from benchmark.report.stats import (
    BOOTSTRAP_RESAMPLES,
    NO_COMPARISON,
    PairedResult,
    miou_batch,
    paired_bootstrap,
    summarize,
    test_description,
)
from benchmark.report.tables import (
    MISSING_CELL,
    Cell,
    TextTable,
    _bold_best,
    _fmt_factor,
    oracles,
    slug,
)

SECTION = "Failure model: modalities lost at random at test time"
SECTION_TEXT = (
    "Single-model methods scored under random sensor failure (Liao et al., arXiv 2503.18445): "
    "the expected mIoU when each modality fails independently with probability p, and the mIoU "
    "when every test tile loses each modality at random; from the stored per-tile confusion "
    "matrices of the clean test records, no new inference."
)
TABLE_P = (0.1, 0.3, 0.5)
"""Failure probabilities the table shows."""
CURVE_P = tuple(round(0.05 * i, 2) for i in range(20))
"""The curve's grid over [0, 1): p = 1 would leave no modality."""
DRAWS = 20
"""Tile-level draws averaged per value of `random_p<p>`."""
DRAW_SEED = 0


@dataclass(frozen=True)
class Statistic:
    """One failure-model summary: its key in failure.csv, its table column and its model."""

    key: str
    column: str
    kind: str
    """`uniform_missing`, `uniform_all`, `expected` (Bernoulli weights) or `random` (draws)."""
    p: float = float("nan")


STATISTICS = (
    Statistic("uniform_missing", "mean missing", "uniform_missing"),
    Statistic("uniform_all", "mean all (Avg)", "uniform_all"),
    *(Statistic(f"expected_p{p:g}", f"E p={p:g}", "expected", p) for p in TABLE_P),
    *(Statistic(f"random_p{p:g}", f"random p={p:g}", "random", p) for p in TABLE_P),
)


def scenario_weights(missing: Sequence[int], n_modalities: int, kind: str, p: float) -> np.ndarray:
    """Weights over scenarios that lack `missing[i]` modalities each (they sum to 1).

    `expected`: p^k (1-p)^(N-k) / (1 - p^N) (the pattern losing every modality is not scored,
    and the rest is renormalised, as in the paper's code); `uniform_all`: 1 / (2^N - 1);
    `uniform_missing`: the same over the scenarios with k >= 1, 0 for the full one.
    """
    k = np.asarray(missing, dtype=np.float64)
    if kind == "uniform_all":
        return np.full(k.shape, 1.0 / k.size)
    if kind == "uniform_missing":
        some = (k > 0).astype(np.float64)
        return some / max(1.0, some.sum())
    if kind != "expected":
        raise ValueError(f"no scenario weights for {kind!r}")
    if not 0 <= p < 1:
        raise ValueError(f"failure probability {p} outside [0, 1)")
    weights = p**k * (1 - p) ** (n_modalities - k)
    return weights / weights.sum()


def draw_scenarios(
    tiles: Sequence[str], modalities: Sequence[str], p: float, draws: int = DRAWS
) -> list[list[frozenset[str]]]:
    """Per tile, `draws` random scenarios: each modality kept with probability 1 - p, a draw
    that keeps none drawn again. Seeded per tile name, so a tile meets the same failures
    whichever tiles or methods it is evaluated with."""
    out = []
    for tile in tiles:
        rng = np.random.default_rng([DRAW_SEED, int(round(p * 1e6)), zlib.crc32(tile.encode())])
        mine = []
        for _ in range(draws):
            while True:
                kept = rng.random(len(modalities)) >= p
                if kept.any():
                    break
            mine.append(frozenset(m for m, keep in zip(modalities, kept, strict=True) if keep))
        out.append(mine)
    return out


@dataclass
class FailureViews:
    """One method's per-tile confusion matrices of every scenario, per seed."""

    modalities: list[str]
    scenarios: list[Scenario]
    seeds: list[int]
    tiles: list[str]
    matrices: np.ndarray
    """[S, T, C, K, K]: seed, tile, scenario (in `scenarios` order)."""
    classes: list[int]
    """Indices of the eval classes (the mIoU's classes)."""
    nested: bool = False
    """Whether the seeds saw different data (`seed=run`): tiles are then drawn per seed in the
    bootstrap (`frames.paired_seeds`)."""
    _draws: dict = field(default_factory=dict, repr=False)

    @cached_property
    def missing(self) -> list[int]:
        return [len(self.modalities) - len(s.present) for s in self.scenarios]

    def views(self, statistic: Statistic) -> tuple[np.ndarray, np.ndarray]:
        """([S, T, V, K, K] matrices, V weights) whose weighted per-view mIoU is the
        statistic: scenarios with their weights, or `DRAWS` draws weighted alike."""
        if statistic.kind != "random":
            weights = scenario_weights(
                self.missing, len(self.modalities), statistic.kind, statistic.p
            )
            return self.matrices, weights
        index = self._draw_index(statistic.p)
        tiles = np.arange(len(self.tiles))[:, None]
        return self.matrices[:, tiles, index], np.full(index.shape[1], 1.0 / index.shape[1])

    def _draw_index(self, p: float) -> np.ndarray:
        if p not in self._draws:
            position = {s.present: i for i, s in enumerate(self.scenarios)}
            drawn = draw_scenarios(self.tiles, self.modalities, p)
            self._draws[p] = np.asarray([[position[s] for s in row] for row in drawn])
        return self._draws[p]

    def per_seed(self, statistic: Statistic) -> list[float]:
        """The statistic for each seed."""
        matrices, weights = self.views(statistic)
        miou = miou_batch(matrices.sum(axis=1), self.classes)  # [S, V]
        return [float(v) for v in np.sum(miou * weights, axis=-1)]

    def curve(self, grid: Sequence[float] = CURVE_P) -> np.ndarray:
        """[S, P]: the expected mIoU of each seed at each failure probability of `grid`."""
        miou = miou_batch(self.matrices.sum(axis=1), self.classes)  # [S, C]
        weights = np.stack(
            [scenario_weights(self.missing, len(self.modalities), "expected", p) for p in grid]
        )  # [P, C]
        return miou @ weights.T

    def subset(self, seeds: Sequence[int], tiles: Sequence[str]) -> FailureViews:
        """The same views on some seeds and tiles (in that order)."""
        s = [self.seeds.index(x) for x in seeds]
        t = [self.tiles.index(x) for x in tiles]
        return FailureViews(
            self.modalities,
            self.scenarios,
            list(seeds),
            list(tiles),
            self.matrices[np.ix_(s, t)],
            self.classes,
            self.nested,
        )


def dataset_modalities(index: Mapping[tuple, Mapping], dataset: str) -> list[str]:
    """Every modality some scenario of `dataset` has (keys: dataset, imbalance, method,
    scenario)."""
    found: set[str] = set()
    for d, _f, _m, scenario in index:
        if d == dataset:
            found |= Scenario.parse(scenario).present
    return sorted(found)


def failure_views(
    index: Mapping[tuple, Mapping[int, dict]], dataset: str, factor: float, method: str
) -> FailureViews | None:
    """A method's views over the seeds that have every scenario of the dataset (on the tiles
    all of them share); None when no seed has them all."""
    modalities = dataset_modalities(index, dataset)
    scenarios = all_scenarios(modalities)
    by_scenario = [index.get((dataset, factor, method, str(s)), {}) for s in scenarios]
    seeds = sorted(set.intersection(*(set(records) for records in by_scenario)))
    if not seeds:
        return None
    first = by_scenario[0][seeds[0]]
    tiles = [
        t
        for t in first["tile_names"]
        if all(t in records[s]["tile_names"] for records in by_scenario for s in seeds)
    ]
    if not tiles:
        return None
    matrices = np.asarray(
        [
            [
                [
                    records[s]["tile_confusions"][records[s]["tile_names"].index(t)]
                    for records in by_scenario
                ]
                for t in tiles
            ]
            for s in seeds
        ],
        dtype=np.float64,
    )
    classes = [list(first["classes"]).index(name) for name in first["eval_classes"]]
    _seeds, nested = paired_seeds(by_scenario[0], by_scenario[0])
    return FailureViews(modalities, scenarios, seeds, tiles, matrices, classes, nested)


def compare(
    mine: FailureViews,
    ref: FailureViews,
    statistic: Statistic,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> PairedResult | None:
    """Paired bootstrap of a statistic, `mine` minus `ref`, on the seeds and tiles both have."""
    seeds = [s for s in mine.seeds if s in ref.seeds]
    tiles = [t for t in mine.tiles if t in ref.tiles]
    if not seeds or not tiles:
        return None
    a, weights = mine.subset(seeds, tiles).views(statistic)
    b, _ = ref.subset(seeds, tiles).views(statistic)
    nested = mine.nested or ref.nested
    return paired_bootstrap(a, b, mine.classes, resamples=resamples, weights=weights, nested=nested)


@dataclass
class FailureData:
    """Every single-model method's views, per dataset x imbalance x method label."""

    views: dict[tuple[str, float, str], FailureViews]
    left_out: dict[str, list[str]]
    """dataset -> labels without failure metrics, each with why (oracle / scenarios missing)."""


def failure_data(
    records: Sequence[dict],
    methods: Sequence[str],
    expected: Mapping[tuple[str, float, str], int],
    oracle_methods: set[str],
) -> FailureData:
    """Views of every method of the grid that is one model (oracles left out and listed)."""
    index = records_by_seed(records, ("dataset", "imbalance", "method", "scenario"))
    views: dict[tuple[str, float, str], FailureViews] = {}
    left_out: dict[str, list[str]] = {}
    for dataset, factor, method in expected:
        if method in oracle_methods:
            note = f"{method} (oracle: one model per scenario)"
            if note not in left_out.get(dataset, []):
                left_out.setdefault(dataset, []).append(note)
            continue
        found = failure_views(index, dataset, factor, method)
        if found is None:
            if any(k[:3] == (dataset, factor, method) for k in index):
                note = f"{method} (not every scenario evaluated)"
                left_out.setdefault(dataset, []).append(note)
            continue
        views[(dataset, factor, method)] = found
    order = {m: i for i, m in enumerate(methods)}
    views = dict(sorted(views.items(), key=lambda kv: (kv[0][0], kv[0][1], order.get(kv[0][2]))))
    return FailureData(views, left_out)


def failure_frame(
    data: FailureData,
    expected: Mapping[tuple[str, float, str], int],
    counterparts: Mapping[str, str],
) -> pd.DataFrame:
    """failure.csv: per dataset x imbalance x method x statistic, mean / std / n / 95 % t-CI
    over seeds, and the paired bootstrap against the method's reference (`counterparts`:
    label -> the reference label it is compared with: same training condition and budget)."""
    rows = []
    for (dataset, factor, method), views in data.views.items():
        ref_label = counterparts.get(method, "")
        ref = data.views.get((dataset, factor, ref_label)) if ref_label != method else None
        for statistic in STATISTICS:
            summary = summarize(views.per_seed(statistic))
            result = compare(views, ref, statistic) if ref is not None else None
            rows.append(
                {
                    "dataset": dataset,
                    "imbalance": factor,
                    "method": method,
                    "statistic": statistic.key,
                    "p_fail": statistic.p,
                    "mean": summary.mean,
                    "std": summary.std,
                    "n": summary.n,
                    "ci_low": summary.ci_low,
                    "ci_high": summary.ci_high,
                    "n_expected": expected.get((dataset, factor, method), 0),
                    "reference": ref_label if result else "",
                    **(result or NO_COMPARISON).columns(prefix="diff_"),
                }
            )
    columns = [
        "dataset", "imbalance", "method", "statistic", "p_fail", "mean", "std", "n", "ci_low",
        "ci_high", "n_expected", "reference", "diff", "diff_ci_low", "diff_ci_high", "p_value",
        "significant", "n_seeds", "n_tiles",
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def curve_frame(data: FailureData, grid: Sequence[float] = CURVE_P) -> pd.DataFrame:
    """failure_curve.csv: the expected mIoU at each failure probability of `grid`, mean / std
    / n / 95 % t-CI over seeds, per dataset x imbalance x method."""
    rows = []
    for (dataset, factor, method), views in data.views.items():
        per_seed = views.curve(grid)
        for column, p in enumerate(grid):
            summary = summarize(per_seed[:, column].tolist())
            rows.append(
                {
                    "dataset": dataset,
                    "imbalance": factor,
                    "method": method,
                    "p_fail": p,
                    "mean": summary.mean,
                    "std": summary.std,
                    "n": summary.n,
                    "ci_low": summary.ci_low,
                    "ci_high": summary.ci_high,
                }
            )
    columns = ["dataset", "imbalance", "method", "p_fail", "mean", "std", "n", "ci_low", "ci_high"]
    return pd.DataFrame(rows, columns=columns)


DEFINITIONS = (
    "Failure model of Liao et al. (arXiv 2503.18445): each modality fails independently with "
    "probability p; the pattern that loses every modality is not scored and the others are "
    "renormalised. 'E p=x' = expected per-scenario mIoU, sum over scenarios of "
    "p^k (1-p)^(N-k) / (1-p^N) x the scenario's test mIoU (k = modalities it lacks; the "
    "paper's mIoU^E_EMM); 'mean all (Avg)' = unweighted mean over all scenarios, the full one "
    "included (mIoU^Avg_EMM, = E p=0.5); 'mean missing' = unweighted mean over the scenarios "
    f"with a modality missing; 'random p=x' = every test tile loses each modality with "
    f"probability x (a draw losing all is redrawn), mIoU of the summed per-tile confusion "
    f"matrices, mean over {DRAWS} draws seeded per tile (the same draws for every method and "
    "seed). No new inference: from the stored per-tile confusion matrices."
)


def failure_table(
    frame: pd.DataFrame,
    dataset: str,
    methods: Sequence[str],
    expected: Mapping[tuple[str, float, str], int],
    left_out: Sequence[str],
    conventions: str = "",
) -> TextTable:
    """Rows imbalance x method (single-model only), one column per statistic: test mIoU (%)
    under the failure model, * = differs from the reference (paired bootstrap)."""
    part = frame[frame["dataset"] == dataset]
    factors = sorted(set(part["imbalance"]))
    table = TextTable(
        title=f"{dataset}: test mIoU (%) under random modality failure",
        caption="",
        stub=["imbalance", "method"],
        columns=[s.column for s in STATISTICS],
        label=f"tab:{slug(dataset)}-failure",
        wide=True,
    )
    shown = [m for m in methods if m in set(part["method"])]
    for factor in factors:
        table.group_starts.append(len(table.rows))
        for method in shown:
            rows = part[(part["imbalance"] == factor) & (part["method"] == method)]
            n_expected = expected.get((dataset, factor, method), 0)
            cells = []
            for statistic in STATISTICS:
                row = rows[rows["statistic"] == statistic.key]
                if row.empty:
                    cells.append(Cell(expected=n_expected))
                    continue
                r = row.iloc[0]
                cells.append(
                    Cell(
                        r["mean"],
                        r["std"],
                        int(r["n"]),
                        n_expected,
                        ci=(r["ci_low"], r["ci_high"]),
                        significant=bool(r["significant"]),
                    )
                )
            table.rows.append(([_fmt_factor(factor), method], cells))
    _bold_best(table, ["max"] * len(table.columns))
    references = sorted({r for r in part["reference"] if r})
    marks = (
        f"* = differs from {' / '.join(references)} (same training condition and budget) in the "
        f"same column ({test_description()}). "
        if references
        else ""
    )
    absent = f"Left out: {'; '.join(left_out)}. " if left_out else ""
    table.caption = (
        f"Mean ± std over seeds. {DEFINITIONS} Best per column and imbalance factor in bold. "
        f"{marks}{absent}{MISSING_CELL} = no value; † = fewer seeds than the grid. " + conventions
    )
    return table


def failure_curves(
    curve: pd.DataFrame,
    dataset: str,
    methods: Sequence[str],
    expected: Mapping[tuple[str, float, str], int],
) -> Figure:
    """Expected test mIoU against the failure probability p, one panel per imbalance factor,
    a line per single-model method (mean over seeds, shaded ± std)."""
    part = curve[curve["dataset"] == dataset]
    factors = sorted(set(part["imbalance"]))
    shown = [m for m in methods if m in set(part["method"])]
    colours = plots.method_colours(methods)
    cols = max(1, min(3, len(factors)))
    rows = max(1, math.ceil(len(factors) / cols))
    width = plots.DOUBLE if cols > 1 else plots.SINGLE
    partial = sorted(
        {
            m
            for (d, f, m), n in expected.items()
            if d == dataset and m in shown and 0 < part[part["method"] == m]["n"].max() < n
        }
    )
    details = [
        "mean ± std over seeds; each modality fails with probability p, the all-lost "
        "pattern not scored (Liao et al. 2025)"
    ]
    if partial:
        details.append(f"fewer seeds than the grid: {', '.join(partial)}")
    title = plots.wrapped_title(width, [f"{dataset}: expected test mIoU under failure", *details])
    handles = plots.method_handles(shown, colours, set())
    ncol = plots.legend_columns(width, [h.get_label() for h in handles])
    fig = plots.new_figure(
        width, plots.framed_height(rows, 1.6, title, math.ceil(len(handles) / max(1, ncol)))
    )
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True).ravel()
    for ax in axes[len(factors) :]:
        ax.set_visible(False)
    for ax, factor in zip(axes, factors, strict=False):
        here = part[part["imbalance"] == factor]
        for method in shown:
            line = here[here["method"] == method].sort_values("p_fail")
            plots.band_line(
                ax, line["p_fail"], line["mean"], line["std"], colours[method], label=method
            )
        for p in TABLE_P:
            ax.axvline(p, color="#888888", linewidth=0.4, linestyle=":")
        ax.set_xlim(0, max(CURVE_P) + 0.02)
        ax.set_xlabel("failure probability p per modality")
        if len(factors) > 1:
            ax.set_title(f"imbalance {_fmt_factor(factor)}")
        ax.grid(linewidth=0.3, alpha=0.6)
    for ax in axes[::cols]:
        ax.set_ylabel("expected test mIoU (%)")
    fig.legend(handles=handles, loc="outside lower center", ncol=ncol, frameon=False)
    fig.suptitle(title, fontsize=8)
    return fig


def write_section(
    writer,  # noqa: ANN001  (generate.ReportWriter)
    clean: pd.DataFrame,
    results,  # noqa: ANN001  (generate.Results)
    counterparts: Mapping[str, str],
    render: Callable[[list[TextTable], str, pd.DataFrame], tuple[str, str]],
    conventions: Callable[[pd.DataFrame, str], str],
) -> FailureData | None:
    """The failure-model section of a report: failure.csv, failure_curve.csv, and per dataset
    a table and the curve figure. `render(tables, title, board)` gives a document's Markdown
    and LaTeX, `conventions(board, dataset)` the captions' conventions (the report's own, so
    these tables read like the others). Returns the `FailureData` (findings test it again),
    None when no single-model method has every scenario."""
    data = failure_data(results.records, results.methods, results.expected, oracles(clean))
    if not data.views:
        return None
    frame = failure_frame(data, results.expected, counterparts)
    curve = curve_frame(data)
    writer.csv(
        frame,
        "failure.csv",
        "per dataset × imbalance × single-model method × failure statistic (mean missing, mean "
        "over all scenarios, expected mIoU at p = 0.1 / 0.3 / 0.5, tile-level random "
        "missingness at the same p): mean, std, n and 95 % t-CI over seeds, paired bootstrap "
        "against the reference",
        SECTION,
    )
    writer.csv(
        curve,
        "failure_curve.csv",
        "expected test mIoU under independent failure with probability p (0 to 0.95), mean, "
        "std, n and 95 % t-CI over seeds per dataset × imbalance × method",
        SECTION,
    )
    for dataset in dict.fromkeys(d for d, _f, _m in data.views):
        part = clean[clean["dataset"] == dataset]
        table = failure_table(
            frame,
            dataset,
            results.methods,
            results.expected,
            data.left_out.get(dataset, []),
            conventions(part, dataset),
        )
        markdown, latex = render([table], f"{dataset}: failure model", part)
        stem = slug(dataset, keep="-_")
        writer.text(
            f"tables/{stem}_failure.md",
            markdown,
            f"{dataset}: Markdown table — test mIoU under random modality failure",
            SECTION,
        )
        writer.text(
            f"tables/{stem}_failure.tex",
            latex,
            f"{dataset}: the same table, booktabs LaTeX",
            SECTION,
        )
        writer.figure(
            failure_curves(curve, dataset, results.methods, results.expected),
            f"{stem}_failure",
            f"{dataset}: expected test mIoU against the failure probability p per modality",
            SECTION,
        )
    return data
