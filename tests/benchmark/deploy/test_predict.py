"""Applying a finished run to a georeferenced scene: `predict` and `load_model`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from rasterio.crs import CRS
from rasterio.transform import from_origin

from benchmark.cli import main
from benchmark.core.plugins import DATASETS
from benchmark.core.spec import MASK
from benchmark.deploy.model import load_model
from benchmark.run.metrics import ConfusionMatrix
from tests.benchmark.cli.cli_helpers import invoke
from tests.conftest import TINY

TRANSFORM = from_origin(500000.0, 5800000.0, 0.5, 0.5)


@pytest.fixture(scope="module")
def finished_run(data_root, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("predict") / "results"
    assert invoke(["--missing", "all", "--steps", "6"], data_root, out) == 0
    (run_dir,) = (out / "runs").iterdir()
    return run_dir


def write_tif(
    path: Path, array: np.ndarray, crs: str = "EPSG:32632", nodata=None, **profile
) -> Path:
    """A georeferenced GeoTIFF of `array` ([C, H, W]); `profile` adds creation options."""
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=array.shape[1],
        width=array.shape[2],
        count=array.shape[0],
        dtype=array.dtype,
        crs=CRS.from_string(crs),
        transform=TRANSFORM,
        nodata=nodata,
        **profile,
    ) as dst:
        dst.write(array)
    return path


@pytest.fixture(scope="module")
def scene(data_root, tmp_path_factory) -> dict[str, Path]:
    """A two-modality scene (the tiny test tiles side by side) with a DSM void."""
    cls = DATASETS.get("synthetic")
    test = cls(data_root, "test", cls.make_options(TINY))
    tiles = [test.load(i) for i in range(len(test))]
    optical = np.concatenate([t["optical"] for t in tiles], axis=2).astype(np.float32)
    dsm = np.concatenate([t["dsm"] for t in tiles], axis=2).astype(np.float32)
    dsm[:, 5:9, 10:20] = -9999.0
    folder = tmp_path_factory.mktemp("scene")
    return {
        "optical": write_tif(folder / "optical.tif", optical),
        "dsm": write_tif(folder / "dsm.tif", dsm, nodata=-9999.0),
    }


def predict(run_dir, inputs, out, *extra) -> int:
    text = ",".join(f"{m}={p}" for m, p in inputs.items())
    return main(["predict", str(run_dir), "--input", text, "--out", str(out), *extra])


@pytest.mark.parametrize("modalities", [("optical", "dsm"), ("optical",), ("dsm",)])
def test_predict_writes_a_georeferenced_label_map(finished_run, scene, tmp_path, modalities):
    out = tmp_path / "labels.tif"
    probs = tmp_path / "probs.tif"
    inputs = {m: scene[m] for m in modalities}
    assert predict(finished_run, inputs, out, "--probabilities", str(probs)) == 0
    with rasterio.open(scene[modalities[0]]) as src, rasterio.open(out) as dst:
        assert (dst.crs, dst.transform, dst.shape) == (src.crs, src.transform, src.shape)
        assert dst.count == 1 and dst.dtypes[0] == "uint8" and dst.nodata == 255
        labels = dst.read(1)
        assert dst.colormap(1)[1][:3] == (0, 0, 255)  # the dataset's palette: building blue
    void = labels[5:9, 10:20]
    if "dsm" in modalities:  # nodata in any input is nodata out
        assert (void == 255).all() and (labels[labels != 255] < 6).all()
    else:
        assert (labels < 6).all()
    with rasterio.open(probs) as p:
        assert p.count == 6
        values = p.read()
    total = np.nansum(values, axis=0)[labels != 255]
    np.testing.assert_allclose(total, 1.0, rtol=1e-4)


def test_bad_scenes_are_one_line_and_exit_2(finished_run, scene, tmp_path, capsys):
    one_band = np.zeros((1, 128, 128), np.float32)
    wrong_bands = write_tif(tmp_path / "one_band.tif", one_band)
    other_crs = write_tif(
        tmp_path / "other_crs.tif", np.zeros((1, 64, 128), np.float32), "EPSG:4326"
    )
    cases = [
        ({"optical": wrong_bands}, "band(s), the run's optical has 3"),
        ({"optical": scene["optical"], "dsm": other_crs}, "inputs must be co-registered"),
        ({"optical": tmp_path / "absent.tif"}, "no such file"),
        ({"sar": scene["dsm"]}, "does not know modality sar"),
    ]
    for inputs, message in cases:
        capsys.readouterr()
        out = tmp_path / "never.tif"
        assert predict(finished_run, inputs, out) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err, err
        assert not out.exists() and not list(tmp_path.glob(".never.tif*"))


def test_load_model_reproduces_the_runs_own_test_predictions(finished_run, data_root):
    model = load_model(finished_run)
    cls = DATASETS.get("synthetic")
    test = cls(data_root, "test", cls.make_options(TINY))
    records = [json.loads(line) for line in (finished_run / "records.jsonl").open()]
    selected = {r["scenario"]: r for r in records if r["split"] == "test" and r["selection"]}
    assert set(selected) == {"dsm+optical", "dsm", "optical"}
    for scenario, record in selected.items():
        present = scenario.split("+")
        for index in range(len(test)):
            sample = test.load(index)
            labels = model.predict({m: sample[m] for m in present})
            matrix = ConfusionMatrix(6, 255)
            matrix.update(torch.from_numpy(labels.astype(np.int64)), torch.from_numpy(sample[MASK]))
            assert matrix.matrix.tolist() == record["tile_confusions"][index], (scenario, index)


def test_a_model_card_describes_the_run(finished_run):
    card = json.loads((finished_run / "model.json").read_text())
    spec = json.loads((finished_run / "spec.json").read_text())
    assert card["run_id"] == spec["run_id"] and card["method"] == "baseline"
    modalities = {m["name"]: m for m in card["dataset_spec"]["modalities"]}
    assert modalities["optical"]["channels"] == 3 and len(modalities["dsm"]["mean"]) == 1
    assert card["dataset_spec"]["palette"][1] == [0, 0, 255]
    assert len(card["class_frequencies"]) == 6 and card["commit"]


def test_a_tall_scene_written_in_rows_of_tiles_equals_the_in_memory_prediction(
    finished_run, scene, tmp_path
):
    """Bands of predicted rows are buffered into whole rows of 256-px tiles before writing."""
    raw = {}
    for name, path in scene.items():
        with rasterio.open(path) as src:
            raw[name] = np.tile(src.read(), (1, 5, 1))[:, :300]  # 300 rows: two tile rows
    raw["dsm"][raw["dsm"] == -9999.0] = 0.0
    inputs = {name: write_tif(tmp_path / f"tall_{name}.tif", array) for name, array in raw.items()}
    out = tmp_path / "tall_labels.tif"
    assert predict(finished_run, inputs, out) == 0
    with rasterio.open(out) as dst:
        written = dst.read(1)
    expected = load_model(finished_run).predict(raw)
    assert written.shape == (300, raw["optical"].shape[2])
    np.testing.assert_array_equal(written, expected)


def test_row_writer_writes_whole_rows_of_tiles_in_order():
    from benchmark.deploy.predict import BLOCK, TileRowWriter

    class Recorder:
        def __init__(self):
            self.writes = []

        def write(self, array, window):
            self.writes.append((int(window.row_off), int(window.height), array.copy()))

    height, width = BLOCK + 60, 5
    image = np.arange(height * width, dtype=np.int64).reshape(1, height, width)
    recorder = Recorder()
    writer = TileRowWriter(recorder, 1, np.int64, width, height)
    for row0 in range(0, height, 100):
        writer.write(row0, image[:, row0 : row0 + 100])
    assert [(row, rows) for row, rows, _ in recorder.writes] == [(0, BLOCK), (BLOCK, 60)]
    np.testing.assert_array_equal(np.concatenate([a for *_, a in recorder.writes], 1), image)
    with pytest.raises(RuntimeError, match="out of order"):
        TileRowWriter(recorder, 1, np.int64, width, height).write(100, image[:, 100:200])


def test_unreadable_inputs_and_weights_are_one_line_without_their_bytes(
    finished_run, scene, tmp_path, capsys
):
    """Garbage where a raster or the weights should be: named, never echoed (issue 20 §10)."""
    secret = b"II*\x00SECRET\x89PNG\xff" * 8
    garbage = tmp_path / "garbage.tif"
    garbage.write_bytes(secret)
    damaged = tmp_path / "out" / "runs" / finished_run.name
    shutil.copytree(finished_run, damaged)
    (damaged / "model.safetensors").write_bytes(secret)
    cases = [
        (finished_run, {"optical": garbage, "dsm": scene["dsm"]}, "not a readable raster"),
        (damaged, {"optical": scene["optical"]}, "unreadable model weights"),
    ]
    for run_dir, inputs, message in cases:
        capsys.readouterr()
        assert predict(run_dir, inputs, tmp_path / "never.tif") == 2
        captured = capsys.readouterr()
        err = captured.err.strip()
        assert message in err and len(err.splitlines()) == 1, err
        assert "SECRET" not in captured.out + captured.err
        assert not (tmp_path / "never.tif").exists()


def test_input_may_be_repeated_once_per_modality(finished_run, scene, tmp_path, capsys):
    out = tmp_path / "labels.tif"
    args = ["predict", str(finished_run), "--out", str(out)]
    assert (
        main([*args, "--input", f"optical={scene['optical']}", "--input", f"dsm={scene['dsm']}"])
        == 0
    )
    with rasterio.open(out) as dst:
        assert dst.tags()["modalities"] == "dsm+optical"
    twice = ["--input", f"optical={scene['optical']}", "--input", f"optical={scene['dsm']}"]
    assert main([*args[:-1], str(tmp_path / "other.tif"), *twice]) == 2


def test_a_label_file_linked_outside_its_folder_is_refused(finished_run, scene, tmp_path, capsys):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "precious.tif").write_bytes(b"keep me")
    here = tmp_path / "here"
    here.mkdir()
    (here / "labels.tif").symlink_to(elsewhere / "precious.tif")
    capsys.readouterr()
    assert predict(finished_run, {"optical": scene["optical"]}, here / "labels.tif", "--force") == 2
    err = capsys.readouterr().err.strip()
    assert "refusing to write" in err and len(err.splitlines()) == 1, err
    assert (elsewhere / "precious.tif").read_bytes() == b"keep me"
    assert sorted(p.name for p in here.iterdir()) == ["labels.tif"]
