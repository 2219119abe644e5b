"""Figures stay legible when a dataset has many scenarios (four modalities make 15) and a
sweep has many methods (the zoo has ten labels)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from benchmark.core.scenarios import all_scenarios
from benchmark.report.plots import (
    cost_scatter,
    heatmap,
    log_cost_axis,
    method_colours,
    new_figure,
    training_curves,
)
from benchmark.report.qualitative import column_headers

FOUR = ["rgb", "nir", "dsm", "sar"]
TWO = ["optical", "dsm"]


def board(modalities: list[str], methods: list[str]) -> pd.DataFrame:
    rows = []
    for method, scenario in itertools.product(methods, all_scenarios(modalities)):
        rows.append(
            {
                "dataset": "toy",
                "imbalance": 1.0,
                "method": method,
                "scenario": str(scenario),
                "missing": scenario.missing_label(modalities),
                "n_present": len(scenario.present),
                "seed": 0,
                "miou": 0.5,
            }
        )
    return pd.DataFrame(rows)


def heatmap_labels(modalities: list[str]) -> tuple[Figure, list]:
    methods = ["baseline", "stars"]
    fig = heatmap(board(modalities, methods), "toy", methods, {("toy", 1.0, m): 1 for m in methods})
    fig.canvas.draw()
    return fig, fig.axes[0].get_xticklabels()


def overlaps(labels: list) -> bool:
    boxes = [label.get_window_extent() for label in labels]
    return any(a.overlaps(b) for a, b in itertools.combinations(boxes, 2))


def test_twelve_methods_get_twelve_colours():
    methods = [f"m{i}" for i in range(12)]
    assert len(set(method_colours(methods).values())) == 12


def test_heatmap_labels_of_fifteen_scenarios_are_rotated_and_do_not_overprint():
    fig, labels = heatmap_labels(FOUR)
    assert len(labels) == 15
    assert all(label.get_rotation() == 45 for label in labels)
    # slanted labels' upright bounding boxes overlap by construction; what matters is that
    # the figure grew to hold them whole
    assert fig.get_figheight() > 0.36 * 2 + 1.05
    assert all(label.get_window_extent().y0 >= 0 for label in labels)
    for label in labels:
        label.set_rotation(0)
    assert overlaps(labels)  # upright, they would overprint: the rotation is needed


def test_heatmap_labels_of_three_scenarios_stay_upright_on_two_lines():
    _fig, labels = heatmap_labels(TWO)
    assert [label.get_rotation() for label in labels] == [0, 0, 0]
    assert all("\n" in label.get_text() for label in labels)
    assert not overlaps(labels)


def test_a_narrow_cost_range_keeps_a_labelled_tick_and_no_overprinting_minor_labels():
    fig = new_figure(2.0, 2.0)
    ax = fig.subplots()
    ax.plot([15.2, 18.3], [1, 2], "o")
    log_cost_axis(ax, pd.Series([15.2, 18.3]))
    fig.canvas.draw()
    low, high = ax.get_xlim()
    inside = [t for t in ax.get_xticks() if low <= t <= high]
    assert inside and all(label.get_text() for label in ax.get_xticklabels() if label.get_text())
    assert not any(label.get_text() for label in ax.get_xticklabels(minor=True))
    assert not overlaps([label for label in ax.get_xticklabels() if label.get_text()])


def run_log(method: str, loss) -> tuple[dict, list[dict]]:
    spec = {"dataset": "toy", "method": method, "imbalance": 1.0}
    return spec, [{"step": s, "loss": loss(s)} for s in range(1, 6)]


def test_losses_on_different_scales_get_a_log_axis():
    logs = [run_log("baseline", lambda s: 1.0 / s), run_log("generative", lambda s: 300.0)]
    fig = training_curves(logs, [], "toy", ["baseline", "generative"])
    assert fig.axes[0].get_yscale() == "log"
    same_scale = [run_log("baseline", lambda s: 1.0 + 0.1 * s)]
    fig = training_curves(same_scale, [], "toy", ["baseline"])
    assert fig.axes[0].get_yscale() == "linear"


def test_qualitative_headers_go_compact_when_the_sentence_would_not_fit():
    headers, compact = column_headers(TWO, 1.7)
    assert not compact
    assert headers["dsm+optical"] == "present: dsm+optical\n(missing: none)"
    headers, compact = column_headers(FOUR, (7.0 - 0.4) / 15)
    assert compact and len(headers) == 15
    assert headers["dsm+nir+rgb+sar"] == "dsm\nnir\nrgb\nsar"
    assert np.all([h.count("\n") <= 3 for h in headers.values()])


def costed(modalities: list[str], methods: list[str], kinds: dict[str, str]) -> pd.DataFrame:
    frame = board(modalities, methods)
    frame["status"] = "ok"
    frame["kind"] = frame["method"].map(kinds)
    frame["run_id"] = frame["method"]
    frame["steps"] = 200
    frame["train_gflops_per_step"] = frame["method"].map({"baseline": 76.0, "oracle": 80.0})
    frame["train_seconds"], frame["params_trained"], frame["budget_ratio"] = 60.0, 1e6, 1.0
    return frame


def legend_texts(fig: Figure) -> list[str]:
    return [text.get_text() for legend in fig.legends for text in legend.get_texts()]


def test_cost_legend_names_oracles_only_when_one_is_drawn():
    fig = cost_scatter(costed(TWO, ["baseline"], {"baseline": "method"}), "toy", ["baseline"])
    assert legend_texts(fig) == ["baseline"]
    both = costed(TWO, ["baseline", "oracle"], {"baseline": "method", "oracle": "oracle"})
    fig = cost_scatter(both, "toy", ["baseline", "oracle"])
    assert legend_texts(fig) == ["baseline", "oracle", "oracle"]
