"""`run_benchmark.py predict`: apply a finished run to your own georeferenced scene.

Inputs are GeoTIFFs (read with rasterio), one per modality, any non-empty subset of the
modalities the run was trained on; they must share size and georeferencing (CRS and transform,
or ground control points). The scene is normalised with the run's stored statistics and
predicted with the harness's own sliding windows, streamed: the scene is cut into vertical
stripes `STRIPE` pixels wide, each predicted top to bottom in bands of rows, and every batch of
windows reads only its own rows and columns (a windowed read), so memory depends on the window,
the batch and the stripe, never on the scene's height or width. Windows that straddle two
stripes are predicted in each (about 3 % more windows at the default window), which keeps a
stripe's sums in the order of a whole-scene prediction: a scene one stripe wide gives exactly
the labels of `DeployedModel.predict` on the whole scene in memory.

What a scene must be, each checked before a pixel is read, each refusal one line (exit 2):
- its declared size fits the size rule: the decoded bytes of every input (bands x height x
  width x the dtype's size) and of the outputs (one byte per pixel of labels, four per class of
  `--probabilities`) at most `--max-scene-gib` (default `MAX_SCENE_GIB`). Streaming bounds the
  memory, but a sparse file of a few hundred kilobytes can declare 200 000 x 200 000 pixels:
  days of work and outputs larger than the disk; the limit makes that a decision, not an
  accident;
- every band real-valued: integer or floating point (`ACCEPTED_DTYPES`); complex input (SAR
  single-look complex) is refused rather than cut to its real part: give its amplitude or
  intensity, as the run was trained on;
- complete: a tiled or striped GeoTIFF whose last blocks lie past its end is truncated; a read
  that fails later (damage inside the file) is also one line naming the file;
- georeferenced by a geotransform, or only by ground control points (Sentinel-1 GRD style):
  GCP-only inputs are kept as they are, not warped; the outputs are in the input's pixel grid
  and carry its GCPs and their CRS (and RPCs where the input has them), so GIS software places
  them as it places the input; `gdalwarp` makes a map-grid copy of either. Inputs without any
  georeferencing give outputs without any (logged);
- not too thin: a side shorter than the window is padded by reflection to a multiple of 32,
  which needs more pixels than the padding (a side of 2 to 16 px is refused, 1 px repeated).

A pixel that is nodata in any input (the file's nodata value, or NaN) is nodata (255) in the
output. The output is a single-band uint8 GeoTIFF with the input's georeferencing and the
dataset's palette as its colour table; `--probabilities` adds a float32 GeoTIFF with one band
per class. Both are tiled, written tile-aligned a stripe's row of tiles at a time, BigTIFF
where they might pass 4 GB. Every output is checked before any work (writable, not a folder,
not an input, not another output: `check_outputs`), written to a temporary name of its own and
renamed when complete (`atomic_output`); a killed prediction's temporary files are removed by
the next one.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import resource
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from benchmark.core.method import evaluation_mode
from benchmark.core.options import parse_pairs
from benchmark.deploy.model import NODATA, DeployedModel, load_model, nodata_mask, thin_side
from benchmark.run.inference import scene_grid
from benchmark.run.store import STALE_TMP_S
from benchmark.system.errors import BenchmarkError, describe
from benchmark.system.io import atomic_output, check_outputs, remove_orphans
from benchmark.system.progress import ProgressLines

log = logging.getLogger(__name__)
# rasterio logs each GDAL error at INFO before raising it; the raised error becomes our one
# line naming the file, so the log line would only say it twice.
logging.getLogger("rasterio._env").setLevel(logging.WARNING)
logging.getLogger("rasterio._err").setLevel(logging.WARNING)

GDAL_CACHE_MB = 256
"""GDAL's raster block cache during a prediction. GDAL's default is 5 % of the machine's
memory, which the streamed reads of a large scene fill: on a 23 GB machine it was 1.2 GB of the
2.4 GB peak on a 10 000 x 10 000 scene. A row of tiles is read a few times as the windows
pass over it, which a small cache still holds (given in bytes: through rasterio.Env a bare 256
meant a cache too small for one tile row and halved the speed). A `GDAL_CACHEMAX` set in the
environment wins."""


BLOCK = 256
"""Tile size of the written GeoTIFFs; rows are written a whole row of tiles at a time."""

STRIPE = 16 * BLOCK
"""Width of the vertical stripes a scene is predicted in (a multiple of `BLOCK`, so a stripe's
writes fill whole tiles). The logits of a band of rows of one stripe are what memory holds:
classes x about two windows' height x `STRIPE` x 4 bytes, 50 MB at 6 classes and a 256 px
window, whatever the scene's width."""

MAX_SCENE_GIB = 64.0
"""Default of `--max-scene-gib`: the largest scene, in GiB of decoded inputs and outputs, that
`predict` takes without being told (64 GiB: a 100 000 x 100 000 px optical + DSM scene of
8-bit bands with no probabilities passes, a 200 000 x 200 000 one does not)."""

ACCEPTED_DTYPES = (
    "uint8",
    "int8",
    "uint16",
    "int16",
    "uint32",
    "int32",
    "uint64",
    "int64",
    "float32",
    "float64",
)
"""Band types `predict` honours: read as float32, the type the run was trained on. Complex
bands are refused (a cast would keep the real part and drop the imaginary one)."""

ALL_BLOCKS_CHECKED = 4096
"""Up to this many blocks per band every block's extent is checked against the file's size
before reading (a truncated file); beyond it only the last row of blocks is."""


class TileRowWriter:
    """Buffers predicted rows and writes them to a tiled GeoTIFF a whole row of tiles at a time.

    Bands of predicted rows do not line up with the file's 256-row tiles; written as they come,
    a compressed tile would be written, evicted from GDAL's cache, read back and rewritten,
    which doubled the time of a 10 000 x 10 000 prediction. The buffer holds at most one row of
    tiles (rows x width x bands) of the columns [col0, col0 + width) (one stripe).
    """

    def __init__(
        self, dataset, bands: int, dtype: type, width: int, height: int, col0: int = 0
    ) -> None:
        self.dataset = dataset
        self.height = height
        self.width = width
        self.col0 = col0
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

        window = Window(self.col0, self.row0, self.width, rows)
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


def _gcps(src) -> tuple:
    """A dataset's ground control points as comparable tuples, and their CRS."""
    points, crs = src.gcps
    return tuple((p.row, p.col, p.x, p.y, p.z) for p in points), crs


def gcp_only(src) -> bool:
    """Georeferenced by ground control points alone (Sentinel-1 GRD style): no geotransform."""
    return bool(src.gcps[0]) and src.transform.is_identity


def georeferencing(src) -> dict:
    """Creation options that give an output the georeferencing of input `src`: its CRS and
    transform, or its GCPs and their CRS when it has only those; its RPCs where it has any."""
    if gcp_only(src):
        points, crs = src.gcps
        geo = {"gcps": points, "crs": crs}
    elif src.crs is None and src.transform.is_identity:
        log.info("%s has no georeferencing; the outputs have none either", src.name)
        geo = {}
    else:
        geo = {"crs": src.crs, "transform": src.transform}
    if src.rpcs is not None:
        geo["rpcs"] = src.rpcs
    return geo


def _check_dtypes(flag: str, src) -> None:
    """Refuse bands `predict` cannot read without changing their meaning (complex)."""
    refused = sorted(set(src.dtypes) - set(ACCEPTED_DTYPES))
    if refused:
        complex_ = any("complex" in name for name in refused)
        why = "the imaginary part would be dropped" if complex_ else "not a real number type"
        raise BenchmarkError(
            f"{flag}: band type {', '.join(refused)} cannot be predicted ({why}); accepted: "
            f"{', '.join(ACCEPTED_DTYPES)}"
            + (" (give its amplitude or intensity, as the run was trained on)" if complex_ else "")
        )


def _check_complete(flag: str, path: Path, src) -> None:
    """Refuse a GeoTIFF whose blocks lie past its end (a truncated file), before any read.

    GDAL opens such a file (its header is intact) and fails only when the missing blocks are
    read. Every block is checked up to `ALL_BLOCKS_CHECKED` per band, else the last row of
    blocks (where a file cut short loses its data first). Formats without block offsets pass;
    a read that fails later is still one line (`SceneReader.read`).
    """
    size = path.stat().st_size
    block_h, block_w = src.block_shapes[0]
    rows, cols = math.ceil(src.height / block_h), math.ceil(src.width / block_w)
    first_row = 0 if rows * cols <= ALL_BLOCKS_CHECKED else rows - 1
    bands = src.indexes if src.interleaving is None or src.interleaving.name == "BAND" else [1]
    for band in bands:
        for row, col in itertools.product(range(first_row, rows), range(cols)):
            offset = src.get_tag_item(f"BLOCK_OFFSET_{col}_{row}", "TIFF", bidx=band)
            if offset is None:
                return  # not a TIFF: nothing to check up front
            length = src.get_tag_item(f"BLOCK_SIZE_{col}_{row}", "TIFF", bidx=band) or 0
            end = int(offset) + int(length)
            if end > size:
                raise BenchmarkError(
                    f"{flag}: truncated: its band {band} block ({row}, {col}) ends at byte {end} "
                    f"but the file has {size} bytes; copy or download it again"
                )


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
        _check_dtypes(f"--input {name}={path}", sources[name])
    first_name, first = next(iter(sources.items()))
    for name, src in sources.items():
        for what, mine, theirs in (
            ("size", (src.height, src.width), (first.height, first.width)),
            ("CRS", src.crs, first.crs),
            ("transform", src.transform, first.transform),
            ("ground control points", _gcps(src), _gcps(first)),
            ("RPCs", _rpcs(src), _rpcs(first)),
        ):
            if mine != theirs:
                if what in ("ground control points", "RPCs"):  # too long to print
                    mine, theirs = "(these)", "(those)"
                raise BenchmarkError(
                    f"--input {name}={inputs[name]}: {what} {mine} differs from "
                    f"{first_name}'s {theirs}; inputs must be co-registered"
                )
    return sources


def _rpcs(src) -> dict | None:
    """A dataset's RPCs as a comparable mapping (None without)."""
    return None if src.rpcs is None else src.rpcs.to_gdal()


def gib(size: float) -> str:
    """Bytes as GiB, one decimal."""
    return f"{size / 2**30:.1f} GiB"


def check_thin_sides(sources: Mapping, inputs: Mapping[str, Path], window: int) -> None:
    """Refuse a scene with a side the windows cannot pad: a side shorter than the window is
    padded by reflection up to a multiple of 32, which needs more pixels than the padding
    (a side of 1 px is repeated instead)."""
    first = next(iter(sources.values()))
    thin = thin_side(first.height, first.width, window)
    if thin is not None:
        scene = ",".join(f"{name}={path}" for name, path in inputs.items())
        raise BenchmarkError(f"--input {scene}: {first.height} x {first.width} px {thin}")


def check_scene_size(
    sources: Mapping, inputs: Mapping[str, Path], classes: int, probabilities: bool, limit: float
) -> int:
    """The size rule: the decoded bytes of the inputs (bands x height x width x the dtype's
    size) and the outputs (labels, probabilities), from the declared size alone; over `limit`
    bytes is one line naming the scene, its size, the estimate, the limit and how to raise it.
    Returns the estimate."""
    first = next(iter(sources.values()))
    pixels = first.height * first.width
    per_pixel_in = sum(np.dtype(t).itemsize for src in sources.values() for t in src.dtypes)
    per_pixel_out = 1 + (4 * classes if probabilities else 0)
    estimate = pixels * (per_pixel_in + per_pixel_out)
    if estimate > limit:
        scene = ",".join(f"{name}={path}" for name, path in inputs.items())
        size_in, size_out = gib(pixels * per_pixel_in), gib(pixels * per_pixel_out)
        raise BenchmarkError(
            f"--input {scene}: {first.height} x {first.width} px is {size_in} of decoded input "
            f"and {size_out} of output, {gib(estimate)} in all, over the limit of {gib(limit)}; "
            f"predict it in parts, or raise the limit with --max-scene-gib "
            f"{math.ceil(estimate / 2**30)}"
        )
    return estimate


class SceneReader:
    """Reads regions of every input as normalised tensors, remembering the nodata mask.

    Regions are given on the scene as the windows see it: padded (reflect, as
    `sliding_window_views` pads a tile) to `full_h` x `full_w` where a side is smaller than
    the window. A padded side is one every window spans whole, so a region that reaches into
    the padding starts at 0 on that side and is read whole and padded, as in memory.
    """

    def __init__(
        self, sources: Mapping, inputs: Mapping[str, Path], model: DeployedModel, full_h, full_w
    ) -> None:
        first = next(iter(sources.values()))
        self.sources, self.inputs, self.model = sources, inputs, model
        self.height, self.width = first.height, first.width
        self.full_h, self.full_w = full_h, full_w
        self.mode = "reflect" if min(self.height, self.width) > 1 else "replicate"

    def read(self, row0: int, row1: int, col0: int, col1: int) -> tuple[dict, np.ndarray]:
        """Normalised tensors [C, row1 - row0, col1 - col0] of rows [row0, row1) and columns
        [col0, col1) of every input, and their nodata mask (False in the padding)."""
        import rasterio
        from rasterio.windows import Window

        real_h, real_w = min(row1, self.height) - row0, min(col1, self.width) - col0
        window = Window(col0, row0, real_w, real_h)
        raw, invalid = {}, np.zeros((real_h, real_w), dtype=bool)
        for name, src in self.sources.items():
            try:
                data = src.read(window=window, out_dtype="float32")
            except rasterio.errors.RasterioError as error:
                while error.__cause__ is not None:  # GDAL's own words are the first cause
                    error = error.__cause__
                raise BenchmarkError(
                    f"--input {name}={self.inputs[name]}: reading rows {row0}-{row0 + real_h}, "
                    f"columns {col0}-{col0 + real_w} failed ({describe(error)}); the file is "
                    "truncated or damaged"
                ) from None
            invalid |= nodata_mask(data, src.nodata)  # NaN there: the normaliser's mean fill
            raw[name] = data
        tensors = self.model.normalise(raw)
        pad_h, pad_w = row1 - row0 - real_h, col1 - col0 - real_w
        if pad_h or pad_w:
            tensors = {
                k: F.pad(v[None], (0, pad_w, 0, pad_h), mode=self.mode)[0]
                for k, v in tensors.items()
            }
            invalid = np.pad(invalid, ((0, pad_h), (0, pad_w)))
        return tensors, invalid


def window_starts_lazy(length: int, window: int, stride: int) -> Iterator[int]:
    """`benchmark.run.inference.window_starts`, one at a time (a 50-million-row strip has
    1.5 million window rows)."""
    if length <= window:
        yield 0
        return
    last = length - window
    start = 0
    for start in range(0, last + 1, stride):
        yield start
    if start != last:
        yield last


def _boxes(ys: Iterable[int], xs: list[int]) -> Iterator[tuple[int, int]]:
    """Window corners (y, x), row by row."""
    for y in ys:
        for x in xs:
            yield y, x


def _batches(boxes: Iterator[tuple[int, int]], size: int) -> Iterator[list[tuple[int, int]]]:
    """`boxes` in lists of `size` (the last one shorter)."""
    while batch := list(itertools.islice(boxes, size)):
        yield batch


Band = tuple[int, int, int, int, torch.Tensor, np.ndarray]
"""(row0, row1, col0, col1, logits [K, rows, cols], nodata mask [rows, cols]) of the scene."""


def stripe_bands(
    predict,
    reader: SceneReader,
    num_classes: int,
    window: int,
    overlap: float,
    batch_size: int,
    stripe: int,
) -> Iterator[Band]:
    """Average logits of the scene's sliding windows, stripe by stripe, top to bottom.

    Within a stripe (columns [c0, c1)) the windows that overlap it go in row-major order,
    `batch_size` at a time, as `sliding_window_bands` goes over a tile; each batch reads only
    the rows and columns its windows cover. Rows above the next batch's first window are final
    and yielded, cropped to the stripe and the scene.
    """
    height, width = reader.height, reader.width
    full_h, full_w, win_h, win_w, stride_h, stride_w = scene_grid(height, width, window, overlap)
    xs = list(window_starts_lazy(full_w, win_w, stride_w))
    for c0 in range(0, width, stripe):
        c1 = min(c0 + stripe, width)
        mine = [x for x in xs if x < c1 and x + win_w > c0]
        left = mine[0]
        span = mine[-1] + win_w - left
        chunks = _batches(_boxes(window_starts_lazy(full_h, win_h, stride_h), mine), batch_size)
        top, logits, counts, invalid = 0, None, None, np.zeros((0, span), dtype=bool)
        chunk = next(chunks)
        while chunk:
            following = next(chunks, [])
            row0, row1 = chunk[0][0], chunk[-1][0] + win_h
            col0 = min(x for _, x in chunk)
            col1 = max(x for _, x in chunk) + win_w
            tensors, mask = reader.read(row0, row1, col0, col1)
            batch = {
                k: torch.stack(
                    [
                        t[:, y - row0 : y - row0 + win_h, x - col0 : x - col0 + win_w]
                        for y, x in chunk
                    ]
                )
                for k, t in tensors.items()
            }
            out = predict(batch)
            if out.shape[-2:] != (win_h, win_w):
                raise ValueError(
                    f"predict returned {tuple(out.shape)}; expected (B, K, {win_h}, {win_w})"
                )
            out = out.float()
            if logits is None:
                logits = out.new_zeros(num_classes, 0, span)
                counts = out.new_zeros(1, 0, span)
            grow = row1 - (top + counts.shape[1])
            if grow > 0:  # grow the band downwards
                logits = torch.cat([logits, logits.new_zeros(num_classes, grow, span)], 1)
                counts = torch.cat([counts, counts.new_zeros(1, grow, span)], 1)
                invalid = np.concatenate([invalid, np.zeros((grow, span), dtype=bool)])
            invalid[row0 - top : row1 - top, col0 - left : col1 - left] = mask
            for y, x in chunk:
                counts[:, y - top : y - top + win_h, x - left : x - left + win_w] += 1
            for (y, x), window_logits in zip(chunk, out, strict=True):
                logits[:, y - top : y - top + win_h, x - left : x - left + win_w] += window_logits
            done = following[0][0] if following else full_h
            if done > top:  # rows above the next batch's windows are final
                rows = min(done, height) - top
                if rows > 0:
                    cols = slice(c0 - left, c1 - left)
                    yield (
                        top,
                        top + rows,
                        c0,
                        c1,
                        logits[:, :rows, cols] / counts[:, :rows, cols],
                        invalid[:rows, cols],
                    )
                logits, counts = logits[:, done - top :], counts[:, done - top :]
                invalid = invalid[done - top :]
                top = done
            chunk = following


def predict_scene(
    run_dir: Path,
    inputs: Mapping[str, Path],
    out: Path,
    probabilities: Path | None = None,
    device: torch.device | str = "cpu",
    force: bool = False,
    max_scene_gib: float = MAX_SCENE_GIB,
) -> PredictSummary:
    """Predict the scene in `inputs` with the run in `run_dir`; write `out` (and
    `probabilities`). Scenes over `max_scene_gib` GiB of decoded inputs and outputs, complex
    bands and truncated files are refused before a pixel is read (module docstring)."""
    import rasterio

    if not (isinstance(max_scene_gib, int | float) and 0 < max_scene_gib < math.inf):
        raise BenchmarkError(f"--max-scene-gib {max_scene_gib}: expected a positive number of GiB")
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
        check_scene_size(
            sources,
            inputs,
            model.spec.num_classes,
            probabilities is not None,
            max_scene_gib * 2**30,
        )
        check_thin_sides(sources, inputs, model.card["window"])
        for name, src in sources.items():
            _check_complete(f"--input {name}={inputs[name]}", inputs[name], src)
        first = next(iter(sources.values()))
        height, width = first.height, first.width
        profile = {
            "driver": "GTiff",
            "height": height,
            "width": width,
            **georeferencing(first),
            "compress": "deflate",
            "tiled": True,
            "blockxsize": BLOCK,
            "blockysize": BLOCK,
            "BIGTIFF": "IF_SAFER",
            # Every tile is written on success; a failed prediction's file (removed) is closed
            # without writing the tiles it never reached.
            "sparse_ok": True,
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
        nodata = _write_stripes(model, sources, inputs, labels_file, probs_file)
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


def _write_stripes(model, sources, inputs, labels_file, probs_file) -> int:
    """Predict stripe by stripe, band by band, and write each band as it is final; returns
    the nodata pixel count."""
    card = model.card
    window, overlap, batch = card["window"], card["overlap"], card["batch_size"]
    first = next(iter(sources.values()))
    height, width = first.height, first.width
    full_h, full_w, *_ = scene_grid(height, width, window, overlap)
    reader = SceneReader(sources, inputs, model, full_h, full_w)
    classes = model.spec.num_classes
    lines = ProgressLines(
        f"predict {height}x{width}", height * width, every_share=0.1, unit="pixel"
    )
    nodata, done, started = 0, 0, time.perf_counter()
    writers: dict[int, tuple[TileRowWriter, TileRowWriter | None]] = {}
    with evaluation_mode(model.method):
        bands = stripe_bands(model.method.predict, reader, classes, window, overlap, batch, STRIPE)
        for row0, row1, col0, col1, logits, invalid in bands:
            if col0 not in writers:  # a new stripe: the previous one is written
                writers = {
                    col0: (
                        TileRowWriter(labels_file, 1, np.uint8, col1 - col0, height, col0),
                        TileRowWriter(probs_file, classes, np.float32, col1 - col0, height, col0)
                        if probs_file is not None
                        else None,
                    )
                }
            labels_rows, probs_rows = writers[col0]
            labels = logits.argmax(0).to(torch.uint8).cpu().numpy()
            labels[invalid] = NODATA
            nodata += int(invalid.sum())
            labels_rows.write(row0, labels[None])
            if probs_rows is not None:
                probs = torch.softmax(logits.float(), 0).cpu().numpy()
                probs[:, invalid] = np.nan
                probs_rows.write(row0, probs)
            done += (row1 - row0) * (col1 - col0)
            lines.step(done, done / max(time.perf_counter() - started, 1e-9))
    return nodata
