"""Band-exact raster reading (TIFF / PNG / JPEG) and label decoding, without GDAL.

`read_raster` returns the file's samples as stored, as a native-dtype [C, H, W] array: no
colour conversion, no alpha handling, so a 4-band R,G,B,IR TIFF whose fourth band is tagged
"unassociated alpha" (ISPRS Potsdam `4_Ortho_RGBIR`) comes back as four plain bands.

TIFFs are read with tifffile (uncompressed and deflate work out of the box; LZW / PackBits
need the optional `imagecodecs` package); when tifffile cannot decode a file, Pillow is tried
(it reads LZW / PackBits for 8-bit and float32 rasters). PNG / JPEG are read with Pillow in
their stored mode (`L`, `RGB`, `I;16`, ...), never converted.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path

import numpy as np

from benchmark.api import BenchmarkError, describe

RASTER_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg")
_TIFF = (".tif", ".tiff")
ROWS_PER_CHUNK = 512


def _to_chw(array: np.ndarray, axes: str | None = None) -> np.ndarray:
    """[H, W] / [H, W, S] / [S, H, W] (per `axes` when known) -> [C, H, W]."""
    if array.ndim == 2:
        return array[None]
    if array.ndim != 3:
        raise ValueError(f"unsupported raster shape {array.shape}")
    if axes is not None:
        if axes.endswith("S"):  # contiguous samples: YXS
            return np.moveaxis(array, -1, 0)
        return array  # separate planes: SYX / QYX / IYX
    # without axes: channels last when the last axis is small
    return np.moveaxis(array, -1, 0) if array.shape[-1] <= 16 < array.shape[0] else array


def _read_tiff(path: Path) -> np.ndarray:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        array = series.asarray()
        axes = series.axes
    if array.ndim == 3 and axes[-2:] != "YX" and not axes.endswith("S"):
        axes = None
    return _to_chw(array, axes)


def _read_pillow(path: Path) -> np.ndarray:
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None  # 6000 x 6000 ortho tiles are legitimate, not bombs
    with Image.open(path) as image:
        frames = getattr(image, "n_frames", 1)
        if frames > 1 and path.suffix.lower() in _TIFF:
            bands = []
            for i in range(frames):  # multi-page (one band per page) TIFF
                image.seek(i)
                bands.append(np.asarray(image))
            return np.stack(bands)
        array = np.asarray(image)
    return _to_chw(array)


# tifffile logs every broken tag at ERROR level before raising; we turn the exception into
# one error line that names the file, so its log lines would only repeat it in pieces.
logging.getLogger("tifffile").setLevel(logging.CRITICAL)


def read_raster(path: Path) -> np.ndarray:
    """All bands of `path` as stored: native dtype, [C, H, W]."""
    path = Path(path)
    try:
        if path.suffix.lower() in _TIFF:
            try:
                return _read_tiff(path)
            except Exception as tiff_error:  # e.g. LZW without imagecodecs: try Pillow
                try:
                    return _read_pillow(path)
                except Exception:
                    raise tiff_error from None
        return _read_pillow(path)
    except BenchmarkError:
        raise
    except Exception as error:
        hint = (
            " (install `imagecodecs` for LZW/PackBits/JPEG-compressed TIFFs)"
            if "imagecodecs" in str(error)
            else ""
        )
        raise BenchmarkError(f"cannot read raster {path}: {describe(error)}{hint}") from None


def raster_size(path: Path) -> tuple[int, int]:
    """(H, W) of a raster from its header only (no pixel decoding)."""
    path = Path(path)
    try:
        if path.suffix.lower() in _TIFF:
            import tifffile

            with tifffile.TiffFile(path) as tif:
                page = tif.pages[0]
                return int(page.imagelength), int(page.imagewidth)
        from PIL import Image

        Image.MAX_IMAGE_PIXELS = None
        with Image.open(path) as image:
            return int(image.height), int(image.width)
    except Exception as error:
        raise BenchmarkError(f"cannot read raster header {path}: {describe(error)}") from None


def select_bands(array: np.ndarray, bands: Iterable[int] | None, path: Path) -> np.ndarray:
    """Keep `bands` (0-based, in that order) of a [C, H, W] raster; all when None."""
    if bands is None:
        return array
    bands = list(bands)
    if any(not 0 <= b < array.shape[0] for b in bands):
        raise BenchmarkError(f"{path}: has {array.shape[0]} band(s), asked for bands {bands}")
    return array[bands]


# ------------------------------------------------------------------------ label decoding


def _single_band(label: np.ndarray, path: Path) -> np.ndarray:
    """A grey label stored as 1 band, or as 3 identical bands (some mirrors save RGB)."""
    if label.shape[0] == 1:
        return label[0]
    if label.shape[0] in (3, 4) and all(np.array_equal(label[0], label[c]) for c in (1, 2)):
        return label[0]
    raise BenchmarkError(f"{path}: expected a single-band label raster, got {label.shape[0]}")


def decode_palette(
    label: np.ndarray,
    palette: Iterable[tuple[int, int, int]],
    ignore_index: int,
    path: Path = Path("?"),
    dtype: type = np.uint8,
) -> np.ndarray:
    """RGB-coded label [3(+), H, W] -> class indices; ANY colour not in `palette` -> ignore.

    Matching is exact (e.g. the black boundary of the ISPRS eroded labels is ignored, never
    silently mapped to a class).
    """
    if label.shape[0] < 3:
        raise BenchmarkError(f"{path}: expected an RGB-coded label, got {label.shape[0]} band(s)")
    colours = [((r << 16) | (g << 8) | b, index) for index, (r, g, b) in enumerate(palette)]
    out = np.full(label.shape[1:], ignore_index, dtype=dtype)
    for start in range(0, label.shape[1], ROWS_PER_CHUNK):  # bounded memory on huge tiles
        rows = slice(start, start + ROWS_PER_CHUNK)
        rgb = label[:3, rows].astype(np.uint32)
        code = (rgb[0] << 16) | (rgb[1] << 8) | rgb[2]
        chunk = out[rows]
        for value, index in colours:
            chunk[code == value] = index
    return out


def decode_values(
    label: np.ndarray,
    mapping: Mapping[int, int],
    ignore_index: int,
    path: Path = Path("?"),
    dtype: type = np.uint8,
    unlabelled: Collection[int] | None = None,
) -> np.ndarray:
    """Single-band label with raw values -> class indices via `mapping`; unmapped -> ignore.

    Float labels (some providers store masks as float32) are rounded first. With
    `unlabelled` given, the label is strict: a raw value that is neither mapped nor listed
    there is an error naming the file (a wrong label file, not a convention to paper over).
    """
    grey_all = _single_band(label, path)
    out = np.full(grey_all.shape, ignore_index, dtype=dtype)
    for start in range(0, grey_all.shape[0], ROWS_PER_CHUNK):  # bounded memory on huge tiles
        rows = slice(start, start + ROWS_PER_CHUNK)
        grey = grey_all[rows]
        if np.issubdtype(grey.dtype, np.floating):
            grey = np.where(np.isfinite(grey), np.rint(grey), -(2**31)).astype(np.int64)
        else:
            grey = grey.astype(np.int64)
        chunk = out[rows]
        for raw, index in mapping.items():
            chunk[grey == int(raw)] = index
        if unlabelled is not None:
            known = np.asarray(sorted({int(v) for v in mapping} | {int(v) for v in unlabelled}))
            stray = np.setdiff1d(np.unique(grey), known)
            if stray.size:
                raise BenchmarkError(
                    f"{path}: label value(s) {', '.join(map(str, stray[:5].tolist()))} are not "
                    f"classes of the spec (expected {', '.join(map(str, known.tolist()))}; list "
                    "raw values meaning 'unlabelled' under labels.ignore)"
                )
    return out


def find_file(folder: Path, stem: str, suffixes: Iterable[str] = RASTER_SUFFIXES) -> Path | None:
    """`folder/<stem><suffix>` for the first suffix that exists (any case), else None."""
    for suffix in suffixes:
        for candidate in (suffix, suffix.upper()):
            path = folder / f"{stem}{candidate}"
            if path.is_file():
                return path
    return None
