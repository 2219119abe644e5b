"""`run_benchmark.py predict`: apply a finished run to your own georeferenced scene.

Inputs are GeoTIFFs (read with rasterio), one per modality, any non-empty subset of the
modalities the run was trained on; they must share CRS, transform and size. The scene is
normalised with the run's stored statistics and predicted with the harness's own sliding
windows, streamed in bands of rows (`sliding_window_bands`), so memory depends on the scene's
width and the window, not on its height: a 10 000 x 10 000 scene never lives in memory whole.
A pixel that is nodata in any input (the file's nodata value, or NaN) is nodata (255) in the
output. The output is a single-band uint8 GeoTIFF with the input's CRS and transform and the
dataset's palette as its colour table; `--probabilities` adds a float32 GeoTIFF with one band
per class. Every output is checked before any work (writable, not a folder, not an input, not
another output: `check_outputs`), written to a temporary name of its own and renamed when
complete (`atomic_output`); a killed prediction's temporary files are removed by the next one.
"""

from __future__ import annotations

import logging
import os
import resource
import time
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from benchmark.core.method import evaluation_mode
from benchmark.core.options import parse_pairs
from benchmark.deploy.model import NODATA, DeployedModel, load_model, nodata_mask
from benchmark.run.inference import one_by_one, sliding_window_bands, sliding_window_logits
from benchmark.run.store import STALE_TMP_S
from benchmark.system.errors import BenchmarkError, describe
from benchmark.system.io import atomic_output, check_outputs, remove_orphans
from benchmark.system.progress import ProgressLines

log = logging.getLogger(__name__)
# rasterio logs each GDAL error at INFO before raising it; the raised error becomes our one
# line naming the file, so the log line would only say it twice.
logging.getLogger("rasterio._env").setLevel(logging.WARNING)

GDAL_CACHE_MB = 256
"""GDAL's raster block cache during a prediction. GDAL's default is 5 % of the machine's
memory, which the streamed reads of a large scene fill: on a 23 GB machine it was 1.2 GB of the
2.4 GB peak on a 10 000 x 10 000 scene. A row of tiles is read a few times as the windows
pass over it, which a small cache still holds (given in bytes: through rasterio.Env a bare 256
meant a cache too small for one tile row and halved the speed). A `GDAL_CACHEMAX` set in the
environment wins."""


BLOCK = 256
"""Tile size of the written GeoTIFFs; rows are written a whole row of tiles at a time."""


class TileRowWriter:
    """Buffers predicted rows and writes them to a tiled GeoTIFF a whole row of tiles at a time.

    Bands of predicted rows do not line up with the file's 256-row tiles; written as they come,
    a compressed tile would be written, evicted from GDAL's cache, read back and rewritten,
    which doubled the time of a 10 000 x 10 000 prediction. The buffer holds at most one row of
    tiles (rows x width x bands).
    """

    def __init__(self, dataset, bands: int, dtype: type, width: int, height: int) -> None:
        self.dataset = dataset
        self.height = height
        self.width = width
        self.buffer = np.zeros((bands, 0, width), dtype=dtype)
        self.row0 = 0

    def write(self, row0: int, rows: np.ndarray) -> None:
        """Append rows [bands, n, width] starting at image row `row0` (rows come in order)."""
        if row0 != self.row0 + self.buffer.shape[1]:
            raise RuntimeError(f"rows from {row0} arrive out of order (expected {self.row0})")
        self.buffer = np.concatenate([self.buffer, rows], 1)
        complete = (self.buffer.shape[1] // BLOCK) * BLOCK
        if self.row0 + self.buffer.shape[1] == self.height:
            complete = self.buffer.shape[1]
        if complete:
            self._flush(complete)

    def _flush(self, rows: int) -> None:
        from rasterio.windows import Window

        window = Window(0, self.row0, self.width, rows)
        self.dataset.write(self.buffer[:, :rows], window=window)
        self.buffer = self.buffer[:, rows:]
        self.row0 += rows


def gdal_cache_option() -> dict[str, int]:
    """`GDAL_CACHEMAX` for rasterio.Env, unless the user set their own."""
    return {} if "GDAL_CACHEMAX" in os.environ else {"GDAL_CACHEMAX": GDAL_CACHE_MB * 2**20}


@dataclass(frozen=True)
class PredictSummary:
    """What a prediction wrote and what it cost."""

    labels: Path
    probabilities: Path | None
    height: int
    width: int
    modalities: tuple[str, ...]
    nodata_pixels: int
    seconds: float
    peak_rss_mb: float
    """The process's peak resident memory after the prediction (includes the model)."""


def parse_inputs(text: str) -> dict[str, Path]:
    """`optical=scene.tif,dsm=scene_dsm.tif` -> {modality: path}."""
    items = filter(None, (p.strip() for p in text.split(",")))  # paths may hold brackets
    pairs = parse_pairs(items, "--input pair", text, "modality=path[,modality=path...]")
    inputs = {name: Path(path) for name, path in pairs.items()}
    if not inputs:
        raise BenchmarkError("--input: expected modality=path[,modality=path...]")
    return inputs


def _open_inputs(stack: ExitStack, model: DeployedModel, inputs: Mapping[str, Path]) -> dict:
    import rasterio

    unknown = sorted(set(inputs) - set(model.modalities))
    if unknown:
        raise BenchmarkError(
            f"--input: this run does not know modality {', '.join(unknown)}; it takes a "
            f"non-empty subset of {', '.join(model.modalities)}"
        )
    sources = {}
    for name, path in inputs.items():
        if not path.is_file():
            raise BenchmarkError(f"--input {name}={path}: no such file")
        try:
            sources[name] = stack.enter_context(rasterio.open(path))
        except rasterio.errors.RasterioError as error:
            raise BenchmarkError(
                f"--input {name}={path}: not a readable raster ({describe(error)})"
            ) from None
        bands = model.spec.modality(name).channels
        if sources[name].count != bands:
            raise BenchmarkError(
                f"--input {name}={path}: {sources[name].count} band(s), the run's {name} has "
                f"{bands}"
            )
    first_name, first = next(iter(sources.items()))
    for name, src in sources.items():
        for what, mine, theirs in (
            ("size", (src.height, src.width), (first.height, first.width)),
            ("CRS", src.crs, first.crs),
            ("transform", src.transform, first.transform),
        ):
            if mine != theirs:
                raise BenchmarkError(
                    f"--input {name}={inputs[name]}: {what} {mine} differs from "
                    f"{first_name}'s {theirs}; inputs must be co-registered"
                )
    return sources


class RowReader:
    """Reads rows of every input as raw float32 (nodata -> NaN) and remembers which pixels of
    the rows not yet written were nodata in any input."""

    def __init__(self, sources: Mapping, model: DeployedModel) -> None:
        self.sources = sources
        self.model = model
        self.width = next(iter(sources.values())).width
        self.invalid: dict[int, np.ndarray] = {}

    def raw(self, row0: int, row1: int) -> dict[str, np.ndarray]:
        from rasterio.windows import Window

        window = Window(0, row0, self.width, row1 - row0)
        out, invalid = {}, np.zeros((row1 - row0, self.width), dtype=bool)
        for name, src in self.sources.items():
            data = src.read(window=window, out_dtype="float32")
            invalid |= nodata_mask(data, src.nodata)  # NaN there: the normaliser's mean fill
            out[name] = data
        for offset, row in enumerate(range(row0, row1)):
            self.invalid[row] = invalid[offset]
        return out

    def tensors(self, row0: int, row1: int) -> dict[str, torch.Tensor]:
        return self.model.normalise(self.raw(row0, row1))

    def invalid_rows(self, row0: int, row1: int) -> np.ndarray:
        """Nodata mask of rows [row0, row1), forgetting them (they are written once)."""
        return np.stack([self.invalid.pop(row) for row in range(row0, row1)])


def predict_scene(
    run_dir: Path,
    inputs: Mapping[str, Path],
    out: Path,
    probabilities: Path | None = None,
    device: torch.device | str = "cpu",
    force: bool = False,
) -> PredictSummary:
    """Predict the scene in `inputs` with the run in `run_dir`; write `out` (and
    `probabilities`)."""
    import rasterio

    outputs = {"--out": out, "--probabilities": probabilities}
    check_outputs(outputs, force, reads={f"--input {m}": p for m, p in inputs.items()})
    for flag, path in outputs.items():
        if path is not None and Path(run_dir).resolve() in Path(path).resolve().parents:
            raise BenchmarkError(f"{flag} {path}: inside the run folder {run_dir}; write elsewhere")
        if path is not None:
            remove_orphans(path.parent, STALE_TMP_S, name=path.name, dead_writers=True)
    model = load_model(run_dir, device)
    tic = time.perf_counter()
    with ExitStack() as stack:
        stack.enter_context(rasterio.Env(**gdal_cache_option()))
        sources = _open_inputs(stack, model, inputs)
        first = next(iter(sources.values()))
        height, width = first.height, first.width
        reader = RowReader(sources, model)
        profile = {
            "driver": "GTiff",
            "height": height,
            "width": width,
            "crs": first.crs,
            "transform": first.transform,
            "compress": "deflate",
            "tiled": True,
            "blockxsize": BLOCK,
            "blockysize": BLOCK,
        }
        # Each output its own temporary file, renamed into place together once both are
        # complete (files close before their renames: the stack unwinds in reverse).
        labels_tmp = stack.enter_context(atomic_output(out))
        probs_tmp = stack.enter_context(atomic_output(probabilities)) if probabilities else None
        labels_file = stack.enter_context(
            rasterio.open(labels_tmp, "w", **profile, count=1, dtype="uint8", nodata=NODATA)
        )
        labels_file.write_colormap(1, {i: (*rgb, 255) for i, rgb in enumerate(model.spec.palette)})
        labels_file.update_tags(
            run_id=model.card["run_id"],
            method=model.card["label"],
            modalities="+".join(sorted(inputs)),
            classes=",".join(model.spec.classes),
        )
        probs_file = None
        if probs_tmp is not None:
            probs_file = stack.enter_context(
                rasterio.open(
                    probs_tmp,
                    "w",
                    **profile,
                    count=model.spec.num_classes,
                    dtype="float32",
                    nodata=float("nan"),
                )
            )
            for index, name in enumerate(model.spec.classes, start=1):
                probs_file.set_band_description(index, name)
        nodata = _write_bands(model, reader, labels_file, probs_file, height, width)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return PredictSummary(
        out,
        probabilities,
        height,
        width,
        tuple(sorted(inputs)),
        nodata,
        time.perf_counter() - tic,
        peak,
    )


def _write_bands(model, reader, labels_file, probs_file, height: int, width: int) -> int:
    """Predict band by band and write each as it is final; returns the nodata pixel count."""
    card = model.card
    window, overlap, batch = card["window"], card["overlap"], card["batch_size"]
    lines = ProgressLines(f"predict {height}x{width}", height, every_share=0.1, unit="row")
    nodata = 0
    with evaluation_mode(model.method):
        if height >= window and width >= window:
            views = sliding_window_bands(
                one_by_one(model.method.predict),
                lambda row0, row1: [reader.tensors(row0, row1)],
                height,
                width,
                model.spec.num_classes,
                window,
                overlap,
                batch,
            )
            bands = ((row0, row1, logits) for row0, row1, (logits,) in views)
        else:  # smaller than one window: the whole scene at once
            logits = sliding_window_logits(
                model.method.predict,
                reader.tensors(0, height),
                model.spec.num_classes,
                window=window,
                overlap=overlap,
                batch_size=batch,
            )
            bands = [(0, height, logits)]
        started = time.perf_counter()
        labels_rows = TileRowWriter(labels_file, 1, np.uint8, width, height)
        probs_rows = (
            TileRowWriter(probs_file, model.spec.num_classes, np.float32, width, height)
            if probs_file is not None
            else None
        )
        for row0, row1, logits in bands:
            invalid = reader.invalid_rows(row0, row1)
            labels = logits.argmax(0).to(torch.uint8).cpu().numpy()
            labels[invalid] = NODATA
            nodata += int(invalid.sum())
            labels_rows.write(row0, labels[None])
            if probs_rows is not None:
                probs = torch.softmax(logits.float(), 0).cpu().numpy()
                probs[:, invalid] = np.nan
                probs_rows.write(row0, probs)
            elapsed = time.perf_counter() - started
            lines.step(row1, row1 / max(elapsed, 1e-9))
    return nodata
