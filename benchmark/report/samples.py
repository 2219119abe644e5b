"""Figures of raw samples: every modality, the labels and optionally a prediction.

Figures are built with `matplotlib.figure.Figure` and the Agg canvas directly, not pyplot, so
they need no display, never switch the global backend and are freed when dropped.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from benchmark.core.spec import MASK, DatasetSpec, Modality
from benchmark.system.errors import BenchmarkError
from benchmark.system.io import atomic_output, check_outputs

log = logging.getLogger(__name__)

_SINGLE_BAND_CMAPS = {"dsm": "terrain", "sar": "gray", "ndsm": "terrain"}


def stretch(image: np.ndarray, low: float = 2.0, high: float = 98.0) -> np.ndarray:
    """Per-band percentile stretch of [C,H,W] to [0,1], so dim reflectances stay visible."""
    out = np.empty_like(image, dtype=np.float32)
    for b in range(image.shape[0]):
        lo, hi = np.percentile(image[b], [low, high])
        out[b] = np.clip((image[b] - lo) / max(hi - lo, 1e-6), 0, 1)
    return out


def colourise(labels: np.ndarray, spec: DatasetSpec) -> np.ndarray:
    """Label map -> RGB uint8 with the spec palette; ignored pixels black."""
    lut = np.zeros((256, 3), np.uint8)
    lut[: spec.num_classes] = np.asarray(spec.palette, np.uint8)
    return lut[np.clip(labels, 0, 255).astype(np.intp)]


def draw_modality(ax: Axes, modality: Modality, data: np.ndarray, fontsize: float = 9) -> None:
    """False colour (first three bands) for multi-band data, else a colour-mapped band.
    `fontsize` is the title's; labels and ticks are one and two points smaller."""
    fig = ax.figure
    if data.shape[0] >= 3:
        ax.imshow(stretch(data[:3]).transpose(1, 2, 0), interpolation="nearest")
        ax.set_title(f"{modality.name} (bands 1-3 as RGB)", fontsize=fontsize)
        if modality.description:
            ax.set_xlabel(modality.description, fontsize=fontsize - 1)
        return
    band = data[0]
    lo, hi = np.percentile(band, [2, 98])
    cmap = _SINGLE_BAND_CMAPS.get(modality.name, "viridis")
    im = ax.imshow(band, cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
    cbar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
    cbar.ax.tick_params(labelsize=fontsize - 2)
    if modality.description:
        cbar.set_label(modality.description, fontsize=fontsize - 1)
    ax.set_title(modality.name, fontsize=fontsize)


def draw_labels(ax: Axes, labels: np.ndarray, spec: DatasetSpec, title: str) -> None:
    ax.imshow(colourise(labels, spec), interpolation="nearest")
    ax.set_title(title, fontsize=9)


def _legend(fig: Figure, spec: DatasetSpec) -> None:
    handles = [
        Patch(facecolor=np.asarray(c) / 255, edgecolor="black", linewidth=0.5, label=name)
        for name, c in zip(spec.classes, spec.palette, strict=True)
    ]
    fig.legend(
        handles=handles, loc="lower center", ncol=min(len(handles), 6), fontsize=8, frameon=False
    )


def _figure(size: tuple[float, float]) -> Figure:
    fig = Figure(figsize=size)
    FigureCanvasAgg(fig)
    return fig


def _clean(ax: Axes) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def plot_sample(
    spec: DatasetSpec,
    sample: dict[str, np.ndarray],
    prediction: np.ndarray | None = None,
    title: str = "",
) -> Figure:
    """One row: each modality present in `sample`, the labels, and the prediction if given."""
    mods = [m for m in spec.modalities if m.name in sample]
    panels = len(mods) + 1 + (prediction is not None)
    fig = _figure((3.4 * panels, 3.9))
    axes = fig.subplots(1, panels, squeeze=False)
    row = axes[0]
    for ax, modality in zip(row, mods, strict=False):
        draw_modality(ax, modality, np.asarray(sample[modality.name]))
    draw_labels(row[len(mods)], np.asarray(sample[MASK]), spec, "labels")
    if prediction is not None:
        draw_labels(row[-1], np.asarray(prediction), spec, "prediction")
    for ax in row:
        _clean(ax)
    if title:
        fig.suptitle(title, fontsize=10)
    _legend(fig, spec)
    fig.tight_layout(rect=(0, 0.07, 1, 0.95 if title else 1))
    return fig


def figure_format(path: Path) -> str:
    """The format of a figure file, from its suffix; one a matplotlib canvas cannot write is
    refused in one line."""
    suffix = path.suffix[1:].lower()
    formats = FigureCanvasAgg.get_supported_filetypes()
    if suffix not in formats:
        raise BenchmarkError(
            f"--out {path}: cannot write a {path.suffix or 'suffix-less'} figure; use one of "
            f"{', '.join('.' + f for f in sorted(formats))}"
        )
    return suffix


def save_example_figure(
    dataset_name: str, root: Path, path: Path, n: int = 3, dpi: int = 150, **options: object
) -> Path:
    """Save `n` test tiles of `dataset_name` (all modalities + labels) as a multi-row figure.

    The file is checked first (writable, a format matplotlib writes), before any data load.
    """
    from benchmark.core.plugins import DATASETS

    path = Path(path)
    if not path.suffix and not path.is_dir():  # what matplotlib does with a bare name
        path = path.with_name(path.name + ".png")
    check_outputs({"--out": path}, force=True, make_folders=True)
    figure_format(path)
    cls = DATASETS.get(dataset_name)
    dataset = cls(Path(root), "test", cls.make_options(options))
    spec = dataset.spec
    n = min(n, len(dataset))
    cols = len(spec.modalities) + 1
    fig = _figure((3.4 * cols, 3.2 * n + 0.6))
    axes = fig.subplots(n, cols, squeeze=False)
    for r in range(n):
        sample = dataset.load(r)
        for c, modality in enumerate(spec.modalities):
            draw_modality(axes[r, c], modality, sample[modality.name])
        draw_labels(axes[r, -1], sample[MASK], spec, "labels")
        axes[r, 0].set_ylabel(dataset.tile_name(r), fontsize=9)
        for ax in axes[r]:
            _clean(ax)
    fig.suptitle(f"{spec.name}: {n} test tiles", fontsize=11)
    _legend(fig, spec)
    fig.tight_layout(rect=(0, 0.04, 1, 0.97))
    path = Path(path)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format=figure_format(path))
    log.info("wrote %s", path)
    return path
