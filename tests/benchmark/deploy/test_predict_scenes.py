"""Huge and odd scenes in `predict` (issue 33, class 5): the size rule before any read, windowed
reads bounded by the window and the stripe (never the scene's width or height), one line for a
truncated or damaged file and for complex bands, GCP-only georeferencing kept on the outputs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.control import GroundControlPoint
from rasterio.io import DatasetReader

import benchmark.deploy.predict as predict_module
import benchmark.run.inference as inference_module
from benchmark.cli import main
from benchmark.deploy.model import load_model
from benchmark.run.inference import window_grid, window_starts
from tests.benchmark.deploy.test_predict import TRANSFORM, write_tif

WINDOW, BATCH = 64, 4
"""A smaller window and batch than the tiny run's card (256, 16), so a test scene spans many
windows and several stripes while staying small."""


def predict(run_dir, inputs, out, *extra) -> int:
    text = ",".join(f"{m}={p}" for m, p in inputs.items())
    return main(["predict", str(run_dir), "--input", text, "--out", str(out), *extra])


def small_model(run_dir, device="cpu"):
    model = load_model(run_dir, device)
    return dataclasses.replace(model, card={**model.card, "window": WINDOW, "batch_size": BATCH})


@pytest.fixture
def small_windows(monkeypatch):
    """`predict` with the run's model at a 64 px window and batches of 4."""
    monkeypatch.setattr(predict_module, "load_model", small_model)


@pytest.fixture
def reads(monkeypatch) -> list:
    """Every window any input read is asked for: (col_off, row_off, width, height)."""
    seen = []
    real = DatasetReader.read

    def recording(self, *args, **kwargs):
        window = kwargs.get("window")
        if window is None:  # a whole raster
            seen.append((0, 0, self.width, self.height))
        else:
            seen.append((window.col_off, window.row_off, window.width, window.height))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(DatasetReader, "read", recording)
    return seen


def raw_scene(scene) -> dict[str, np.ndarray]:
    out = {}
    for name, path in scene.items():
        with rasterio.open(path) as src:
            out[name] = src.read()
    return out


def tiled_scene(scene, folder: Path, rows: int, cols: int, tag: str) -> dict[str, Path]:
    """The test scene repeated to `rows` x `cols` px (DSM void included, nodata -9999)."""
    paths = {}
    for name, array in raw_scene(scene).items():
        reps = (1, -(-rows // array.shape[1]), -(-cols // array.shape[2]))
        big = np.tile(array, reps)[:, :rows, :cols].copy()
        nodata = -9999.0 if name == "dsm" else None
        paths[name] = write_tif(folder / f"{tag}_{name}.tif", big, nodata=nodata)
    return paths


def in_memory(run_dir, paths) -> tuple[np.ndarray, np.ndarray]:
    """Labels and probabilities of the scene in memory (`DeployedModel`, the model `predict`
    uses), nodata -9999 as the DSM declares it."""
    model = predict_module.load_model(run_dir)
    raw = raw_scene(paths)
    return model.predict(raw, nodata=-9999.0), model.predict_proba(raw, nodata=-9999.0)


def read_outputs(labels: Path, probs: Path | None = None):
    with rasterio.open(labels) as dst:
        out = [dst.read(1)]
    if probs is not None:
        with rasterio.open(probs) as dst:
            out.append(dst.read())
    return out


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_a_scene_declaring_200000_px_a_side_is_refused_before_any_read(
    finished_run, tmp_path, monkeypatch, capsys
):
    huge = tmp_path / "huge.tif"
    with rasterio.open(
        huge,
        "w",
        driver="GTiff",
        height=200_000,
        width=200_000,
        count=3,
        dtype="uint8",
        crs="EPSG:32632",
        transform=TRANSFORM,
        tiled=True,
        blockxsize=1024,
        blockysize=1024,
        compress="deflate",
        sparse_ok=True,
        BIGTIFF="YES",
    ):
        pass  # no block written: a sparse file of a few hundred kilobytes
    assert huge.stat().st_size < 5 * 2**20

    def never(*args, **kwargs):
        raise AssertionError("a pixel was read before the size rule refused the scene")

    monkeypatch.setattr(DatasetReader, "read", never)
    capsys.readouterr()
    out = tmp_path / "labels.tif"
    assert predict(finished_run, {"optical": huge}, out) == 2
    err = one_line_error(capsys)
    for part in (str(huge), "200000 x 200000 px", "GiB", "over the limit of 64.0 GiB"):
        assert part in err, err
    assert "--max-scene-gib 150" in err, err  # 4e10 px x (3 + 1) bytes = 149.0 GiB
    assert sorted(p.name for p in tmp_path.iterdir()) == ["huge.tif"]


def test_the_size_rule_counts_outputs_and_its_limit_can_be_raised(
    finished_run, scene, tmp_path, capsys
):
    out, probs = tmp_path / "labels.tif", tmp_path / "probs.tif"
    # 64 x 128 px: inputs 16 B/px (four float32 bands), labels 1, probabilities 6 x 4 = 24
    pixels = 64 * 128
    just_inputs_and_labels = 17 * pixels / 2**30
    limit = f"{just_inputs_and_labels * 1.01:.9f}"
    capsys.readouterr()
    assert (
        predict(finished_run, scene, out, "--probabilities", str(probs), "--max-scene-gib", limit)
        == 2
    )
    assert "over the limit" in one_line_error(capsys)
    assert not out.exists() and not probs.exists()
    assert predict(finished_run, scene, out, "--max-scene-gib", limit) == 0
    for bad in ("0", "-1", "nan", "inf"):
        capsys.readouterr()
        assert predict(finished_run, scene, tmp_path / "x.tif", "--max-scene-gib", bad) == 2
        assert "expected a positive number of GiB" in one_line_error(capsys)


def test_windowed_reads_touch_only_their_windows_columns(
    finished_run, scene, tmp_path, monkeypatch, small_windows, reads
):
    """300 x 700 px in stripes of 256: no read is wider than a stripe and its windows' margin,
    and none reads a row whole; the labels are those of the whole scene in memory."""
    monkeypatch.setattr(predict_module, "STRIPE", 256)
    paths = tiled_scene(scene, tmp_path, 300, 700, "wide")
    reads.clear()
    labels, probs = tmp_path / "labels.tif", tmp_path / "probs.tif"
    assert predict(finished_run, paths, labels, "--probabilities", str(probs)) == 0
    assert reads
    widest = max(width for _, _, width, _ in reads)
    tallest = max(height for *_, height in reads)
    assert widest <= 256 + 2 * WINDOW and widest < 700
    assert tallest <= 2 * WINDOW  # a batch of 4 windows spans at most two window rows
    assert {col for col, *_ in reads} != {0}  # reads start inside the scene, not at its edge
    expected_labels, expected_probs = in_memory(finished_run, paths)
    written_labels, written_probs = read_outputs(labels, probs)
    np.testing.assert_array_equal(written_labels, expected_labels)
    np.testing.assert_allclose(written_probs, expected_probs, atol=1e-6)


def test_a_tall_narrow_strip_is_read_in_bounded_windows(
    finished_run, scene, tmp_path, small_windows, reads
):
    """40 x 2000 px (narrower than the window: padded as in memory): every read is the strip's
    width and a batch's rows, never the strip."""
    paths = tiled_scene(scene, tmp_path, 2000, 40, "strip")
    reads.clear()
    labels = tmp_path / "labels.tif"
    assert predict(finished_run, paths, labels) == 0
    stride = WINDOW // 2  # the tiny run's overlap 0.5
    assert max(height for *_, height in reads) <= (BATCH - 1) * stride + WINDOW
    assert {width for _, _, width, _ in reads} == {40}
    (written,) = read_outputs(labels)
    expected, _ = in_memory(finished_run, paths)
    np.testing.assert_array_equal(written, expected)


def test_labels_equal_the_whole_scene_prediction_of_the_card(finished_run, scene, tmp_path):
    """Regression: at the run's own window (256, larger than the 64 x 128 scene), the labels
    and probabilities are those predict wrote before streaming in stripes, i.e. the model's
    whole-scene prediction in memory, bit for bit."""
    labels, probs = tmp_path / "labels.tif", tmp_path / "probs.tif"
    assert predict(finished_run, scene, labels, "--probabilities", str(probs)) == 0
    expected_labels, expected_probs = in_memory(finished_run, scene)
    written_labels, written_probs = read_outputs(labels, probs)
    np.testing.assert_array_equal(written_labels, expected_labels)
    np.testing.assert_array_equal(written_probs, expected_probs)
    assert (written_labels == 255).sum() == 4 * 10  # the DSM void


def tiled_tif(path: Path, array: np.ndarray) -> Path:
    """A tiled, compressed GeoTIFF: reads of it come in 64 px blocks."""
    return write_tif(path, array, tiled=True, blockxsize=64, blockysize=64, compress="deflate")


def test_a_truncated_or_damaged_geotiff_is_one_line_naming_it(
    finished_run, scene, tmp_path, capsys
):
    optical = np.random.default_rng(0).normal(size=(3, 128, 128)).astype(np.float32)
    whole = tiled_tif(tmp_path / "whole.tif", optical)
    data = whole.read_bytes()
    truncated = tmp_path / "truncated.tif"
    truncated.write_bytes(data[: len(data) * 2 // 3])
    with rasterio.open(whole) as src:  # one block's compressed bytes overwritten
        offset = int(src.get_tag_item("BLOCK_OFFSET_1_1", "TIFF", bidx=1))
    damaged = tmp_path / "damaged.tif"
    damaged.write_bytes(data[:offset] + b"\xff" * 64 + data[offset + 64 :])
    for path, message in ((truncated, "truncated: its band"), (damaged, "truncated or damaged")):
        capsys.readouterr()
        out = tmp_path / "labels.tif"
        assert predict(finished_run, {"optical": path}, out) == 2
        err = one_line_error(capsys)
        assert f"--input optical={path}" in err and message in err, err
        assert not out.exists() and not list(tmp_path.glob(".labels.tif*"))


def gcp_tif(path: Path, array: np.ndarray, shift: float = 0.0) -> Path:
    """A raster georeferenced only by ground control points (no geotransform), as a
    Sentinel-1 GRD scene is."""
    rows, cols = array.shape[1:]
    points = [
        GroundControlPoint(row=r, col=c, x=11.0 + c * 1e-4 + shift, y=48.0 - r * 1e-4, z=0.0)
        for r in (0, rows - 1)
        for c in (0, cols - 1)
    ]
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=rows,
        width=cols,
        count=array.shape[0],
        dtype=array.dtype,
        gcps=points,
        crs="EPSG:4326",
    ) as dst:
        dst.write(array)
    return path


def test_gcp_only_georeferencing_is_kept_on_the_outputs(finished_run, scene, tmp_path, capsys):
    raw = raw_scene(scene)
    paths = {name: gcp_tif(tmp_path / f"gcp_{name}.tif", array) for name, array in raw.items()}
    labels, probs = tmp_path / "labels.tif", tmp_path / "probs.tif"
    assert predict(finished_run, paths, labels, "--probabilities", str(probs)) == 0
    with rasterio.open(paths["optical"]) as src:
        points, crs = src.gcps
        expected = [(p.row, p.col, p.x, p.y, p.z) for p in points]
    for output in (labels, probs):
        with rasterio.open(output) as dst:
            kept, kept_crs = dst.gcps
            assert [(p.row, p.col, p.x, p.y, p.z) for p in kept] == expected
            assert kept_crs == crs and dst.transform.is_identity and dst.crs is None
    (written,) = read_outputs(labels)
    np.testing.assert_array_equal(written, load_model(finished_run).predict(raw))
    capsys.readouterr()
    shifted = gcp_tif(tmp_path / "shifted_dsm.tif", raw["dsm"], shift=0.5)
    assert predict(finished_run, {"optical": paths["optical"], "dsm": shifted}, tmp_path / "x") == 2
    err = one_line_error(capsys)
    assert "ground control points" in err and "inputs must be co-registered" in err, err


def test_complex_bands_are_refused_naming_the_dtype(finished_run, tmp_path, capsys):
    sar_like = (np.ones((3, 64, 64)) + 1j * np.ones((3, 64, 64))).astype(np.complex64)
    path = write_tif(tmp_path / "complex.tif", sar_like)
    capsys.readouterr()
    assert predict(finished_run, {"optical": path}, tmp_path / "labels.tif") == 2
    err = one_line_error(capsys)
    assert "band type complex64" in err and "accepted: uint8, int8" in err, err
    assert not (tmp_path / "labels.tif").exists()


@pytest.mark.parametrize("height, width", [(64, 128), (300, 700), (2000, 40), (5, 300), (256, 256)])
def test_the_streamed_grid_is_the_in_memory_grid(height, width):
    """`scene_grid` and `window_starts_lazy` give the windows `sliding_window_views` uses."""
    full_h, full_w, win_h, win_w, stride_h, stride_w = inference_module.scene_grid(
        height, width, WINDOW, 0.5
    )
    grid = window_grid(full_h, full_w, WINDOW, 0.5)
    boxes = [
        (y, x)
        for y in predict_module.window_starts_lazy(full_h, win_h, stride_h)
        for x in predict_module.window_starts_lazy(full_w, win_w, stride_w)
    ]
    assert (win_h, win_w, boxes) == grid
    assert list(predict_module.window_starts_lazy(full_h, win_h, stride_h)) == window_starts(
        full_h, win_h, stride_h
    )


def test_a_side_too_thin_to_pad_is_one_line_and_one_pixel_is_predicted(
    finished_run, tmp_path, capsys
):
    rng = np.random.default_rng(1)
    thin = write_tif(tmp_path / "thin.tif", rng.normal(size=(3, 5, 300)).astype(np.float32))
    capsys.readouterr()
    assert predict(finished_run, {"optical": thin}, tmp_path / "labels.tif") == 2
    err = one_line_error(capsys)
    assert "5 x 300 px has a side of 5 px" in err and "at least 17 px" in err, err
    line = rng.normal(size=(3, 1, 300)).astype(np.float32)
    one_row = write_tif(tmp_path / "row.tif", line)
    assert predict(finished_run, {"optical": one_row}, tmp_path / "row_labels.tif") == 0
    (written,) = read_outputs(tmp_path / "row_labels.tif")
    np.testing.assert_array_equal(written, load_model(finished_run).predict({"optical": line}))
