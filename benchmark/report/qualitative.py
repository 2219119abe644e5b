"""Qualitative grid: one test tile's input modalities and ground truth, then each method's
prediction under each missing-modality scenario, coloured with the dataset's palette.

Cheap by construction: one run per method (the lowest imbalance factor, then the lowest seed),
the weights the report's selection rule chose (`model.safetensors` with its card for the
default rule), one test tile cut to at most
`MAX_SIDE` pixels around its centre, the harness's own sliding-window inference.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from benchmark.core.method import TrainContext, evaluation_mode
from benchmark.core.plugins import METHODS
from benchmark.core.records import SELECTION_FULL_VAL, RunSpec
from benchmark.core.scenarios import all_scenarios
from benchmark.core.spec import MASK, DatasetSpec
from benchmark.data.pipeline import open_dataset, prepare_data
from benchmark.data.transforms import Normalizer
from benchmark.deploy.model import inference_hparams, load_model
from benchmark.report.frames import dataset_of, label_of
from benchmark.report.plots import DOUBLE, fits, method_colours, new_figure
from benchmark.report.samples import colourise, draw_modality
from benchmark.run.inference import sliding_window_logits
from benchmark.run.store import RunStore, StoredRun

MAX_SIDE = 256


def pick_runs(
    runs: Sequence[StoredRun],
    store: RunStore,
    dataset: str,
    methods: Sequence[str],
    selection: str = SELECTION_FULL_VAL,
) -> dict[str, list[StoredRun]]:
    """Per method label, the finished runs with weights (those `selection` chose) at its lowest
    (imbalance, seed): one run, or for a dedicated method (one model per scenario) one run per
    scenario."""
    chosen: dict[str, list[StoredRun]] = {}
    for run in sorted(runs, key=lambda r: (r.spec["imbalance"], r.spec["seed"])):
        label = label_of(run.spec)
        if dataset_of(run.spec) != dataset or label not in methods:
            continue
        if not store.has_model(run.run_id, selection):
            continue
        first = chosen.setdefault(label, [run])[0]
        same = (first.spec["imbalance"], first.spec["seed"]) == (
            run.spec["imbalance"],
            run.spec["seed"],
        )
        if run is not first and same and METHODS.get(run.spec["method"]).DEDICATED:
            chosen[label].append(run)
    return chosen


def predict_runs(
    runs: Sequence[StoredRun],
    store: RunStore,
    data_root: Path,
    tile: int = 0,
    selection: str = SELECTION_FULL_VAL,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], DatasetSpec, str]:
    """`predict_tile` over one method's chosen runs, their scenarios' predictions merged."""
    sample, predictions, spec, name = predict_tile(runs[0], store, data_root, tile, selection)
    for run in runs[1:]:
        predictions.update(predict_tile(run, store, data_root, tile, selection)[1])
    return sample, predictions, spec, name


def predict_tile(
    run: StoredRun,
    store: RunStore,
    data_root: Path,
    tile: int = 0,
    selection: str = SELECTION_FULL_VAL,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], DatasetSpec, str]:
    """Raw sample cut to at most MAX_SIDE px, {scenario: labels}, dataset spec, tile name; the
    weights `selection` chose."""
    spec = RunSpec.from_json(run.spec)
    test = open_dataset(spec, "test", data_root)
    height, width = test.tile_shape(tile)
    y0, x0 = max(0, (height - MAX_SIDE) // 2), max(0, (width - MAX_SIDE) // 2)
    window = (slice(y0, y0 + min(height, MAX_SIDE)), slice(x0, x0 + min(width, MAX_SIDE)))
    sample = test.load(tile, window)
    if store.has_model_card(run.run_id):
        method = load_model(store.run_dir(run.run_id), selection=selection).method
    else:  # runs made before model cards: rebuilt as training built them
        data = prepare_data(spec, data_root)  # class frequencies, exactly as in training
        context = TrainContext(spec.steps, data.frequencies, spec.train_modalities)
        cls = METHODS.get(spec.method)
        method = cls(test.spec, inference_hparams(cls, spec.hparams.items()), context)
        method.load_state_dict(store.load_model(run.run_id, selection))
    normed = Normalizer(test.spec)(sample)
    normed.pop(MASK)
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in normed.items()}
    predictions = {}
    with evaluation_mode(method), torch.no_grad():
        for scenario in METHODS.get(spec.method).evaluation_scenarios(spec.train_modalities):
            logits = sliding_window_logits(
                method.predict,
                scenario.select(tensors),
                test.spec.num_classes,
                window=spec.window,
                overlap=spec.eval_overlap,
                batch_size=spec.eval_batch_size,
            )
            predictions[str(scenario)] = logits.argmax(0).numpy()
    return sample, predictions, test.spec, test.tile_name(tile)


def column_headers(modalities: Sequence[str], panel: float) -> tuple[dict[str, str], bool]:
    """Each scenario's column header, and whether it is the compact form: "present: …
    (missing: …)" when that fits a `panel` inches wide, else the present modalities one per
    line (the figure then says once what the columns are)."""
    scenarios = all_scenarios(modalities)
    headers = {str(s): f"present: {s}\n(missing: {s.missing_label(modalities)})" for s in scenarios}
    if fits(headers.values(), panel):
        return headers, False
    return {str(s): "\n".join(str(s).split("+")) for s in scenarios}, True


def qualitative_grid(
    chosen: Mapping[str, list[StoredRun]],
    store: RunStore,
    methods: Sequence[str],
    data_root: Path,
    dataset: str,
    tile: int = 0,
    selection: str = SELECTION_FULL_VAL,
) -> Figure:
    """Top: modalities and ground truth; below, one row per method, one column per scenario.

    The two parts are separate subfigures, so the inputs' colour bars never squeeze a
    prediction column; with many scenarios (four modalities make 15) the column headers list
    the present modalities one per line instead of a sentence that would overprint."""
    results = {
        m: predict_runs(chosen[m], store, data_root, tile, selection)
        for m in methods
        if m in chosen
    }
    if not results:
        raise ValueError(f"no finished run with weights for {dataset}")
    sample, _, ds, tile_name = next(iter(results.values()))
    modalities = [m for m in ds.modalities if m.name in sample]
    names = [m.name for m in modalities]
    scenarios = [str(s) for s in all_scenarios(names)]
    panel = min(1.7, (DOUBLE - 0.4) / len(scenarios))
    headers, compact = column_headers(names, panel)
    header_lines = max(h.count("\n") + 1 for h in headers.values())
    inputs_panel = min(1.7, (DOUBLE - 0.4) / (len(modalities) + 1))
    top_height = inputs_panel + 0.45
    grid_height = panel * len(methods) + 0.12 * header_lines + 0.2
    fig = new_figure(panel * len(scenarios) + 0.4, top_height + grid_height + 0.5)
    top, grid = fig.subfigures(2, 1, height_ratios=(top_height, grid_height))
    inputs = top.subplots(1, len(modalities) + 1, squeeze=False)[0]
    for ax, modality in zip(inputs, modalities, strict=False):
        draw_modality(ax, modality, np.asarray(sample[modality.name]), fontsize=7)
        ax.set_xlabel("")
    inputs[-1].imshow(colourise(sample[MASK], ds), interpolation="nearest")
    inputs[-1].set_title("ground truth", fontsize=7)
    inputs[0].set_ylabel("inputs", fontsize=7)
    axes = grid.subplots(len(methods), len(scenarios), squeeze=False)
    for ax in [*inputs, *axes.ravel()]:
        ax.set_xticks([])
        ax.set_yticks([])
    if compact:
        grid.suptitle("columns: the modalities present at test time", fontsize=6.5)
    colours = method_colours(methods)
    for r, method in enumerate(methods):
        label = method if len(method) <= 18 else method.replace("[", "\n[")
        axes[r, 0].set_ylabel(label, fontsize=6.5, color=colours[method])
        for c, scenario in enumerate(scenarios):
            ax = axes[r, c]
            if method not in results or scenario not in results[method][1]:
                ax.text(
                    0.5,
                    0.5,
                    "missing run",
                    ha="center",
                    va="center",
                    fontsize=7,
                    transform=ax.transAxes,
                )
            else:
                ax.imshow(colourise(results[method][1][scenario], ds), interpolation="nearest")
            if r == 0:
                ax.set_title(headers[scenario], fontsize=6.5)
    handles = [
        Patch(facecolor=np.asarray(col) / 255, edgecolor="black", linewidth=0.4, label=name)
        for name, col in zip(ds.classes, ds.palette, strict=True)
    ]
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncol=min(6, len(handles)),
        frameon=False,
        fontsize=6.5,
    )
    picked = {(chosen[m][0].spec["seed"], chosen[m][0].spec["imbalance"]) for m in results}
    which = (
        "seed {}, imbalance ×{:g}".format(*next(iter(picked)))
        if len(picked) == 1
        else "lowest seed and imbalance per method"
    )
    fig.suptitle(
        f"{dataset}, test tile {tile_name}: predictions per scenario ({which})", fontsize=7
    )
    return fig
