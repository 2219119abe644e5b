"""`export RUN --format onnx`: one ONNX model per scenario that onnxruntime runs as PyTorch does,
at any height and width, with the metadata QGIS's Deepness plugin reads; and the route a user
without MissBench takes (onnxruntime and the metadata alone) reproduces `predict`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from benchmark.cli import main
from benchmark.core.plugins import METHODS
from benchmark.core.scenarios import Scenario, all_scenarios
from benchmark.deploy.export import check_against_torch, trace
from benchmark.deploy.model import NODATA, DeployedModel, load_model
from tests.benchmark.deploy.test_predict import predict
from tests.methods.zoo_helpers import build_method

ort = pytest.importorskip("onnxruntime", reason="the `export` extra is not installed")
onnx = pytest.importorskip("onnx", reason="the `export` extra is not installed")

SCENARIOS = ("dsm+optical", "optical", "dsm")


@pytest.fixture(scope="module")
def exported(finished_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "onnx"
    args = ["export", str(finished_run), "--format", "onnx", "--out", str(out)]
    assert main([*args, "--resolution", "5"]) == 0
    return out


def session(path: Path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def read_scene(scene: dict[str, Path]) -> dict[str, np.ndarray]:
    arrays = {}
    for name, path in scene.items():
        with rasterio.open(path) as src:
            arrays[name] = src.read().astype(np.float32)
    return arrays


def test_one_model_per_scenario_matches_pytorch_at_another_size(exported, finished_run, scene):
    """Probabilities within 1e-4 of softmax(PyTorch's logits) and equal labels, for every
    scenario, on a batch of two crops whose size is neither the traced one (the run's 256 px
    window) nor a multiple of 32."""
    assert sorted(p.name for p in exported.iterdir()) == sorted(f"{s}.onnx" for s in SCENARIOS)
    model = load_model(finished_run)
    raw = read_scene(scene)
    raw["dsm"][raw["dsm"] == -9999.0] = np.nan
    crops = [
        {k: v[:, :60, :100] for k, v in raw.items()},
        {k: v[:, 3:63, 20:120] for k, v in raw.items()},
    ]
    for name in SCENARIOS:
        present = [m.name for m in model.spec.modalities if m.name in Scenario.parse(name).present]
        batch = np.stack(
            [np.concatenate([model.normalise(c)[m].numpy() for m in present]) for c in crops]
        )
        (probs,) = session(exported / f"{name}.onnx").run(None, {"input": batch})
        logits = model.logits({m: np.stack([c[m] for c in crops]) for m in present})
        expected = torch.softmax(torch.from_numpy(logits), 1).numpy()
        assert probs.shape == expected.shape == (2, 6, 60, 100)
        np.testing.assert_allclose(probs, expected, atol=1e-4)
        np.testing.assert_array_equal(probs.argmax(1), logits.argmax(1))


def test_the_metadata_is_what_deepness_reads(exported, finished_run):
    card = json.loads((finished_run / "model.json").read_text())
    stats = {m["name"]: m for m in card["dataset_spec"]["modalities"]}
    proto = onnx.load(str(exported / "dsm+optical.onnx"))
    assert (proto.ir_version, [o.version for o in proto.opset_import]) == (8, [17])
    meta = {p.key: json.loads(p.value) for p in proto.metadata_props}
    assert meta["model_type"] == "Segmentor"
    assert meta["class_names"] == {str(i): c for i, c in enumerate(card["dataset_spec"]["classes"])}
    assert meta["class_colors"]["1"] == "#0000ff"
    assert meta["tile_size"] == meta["tiles_size"] == card["window"]
    assert meta["tiles_overlap"] == 50 and meta["resolution"] == 5.0
    assert meta["missbench_bands"] == ["optical:1", "optical:2", "optical:3", "dsm:1"]
    raw_mean = [*stats["optical"]["mean"], *stats["dsm"]["mean"]]
    raw_std = [*stats["optical"]["std"], *stats["dsm"]["std"]]
    np.testing.assert_allclose(np.array(meta["standardization_mean"]) * 255, raw_mean)
    np.testing.assert_allclose(np.array(meta["standardization_std"]) * 255, raw_std)
    assert (
        meta["missbench_run_id"] == card["run_id"] and meta["missbench_scenario"] == "dsm+optical"
    )
    shapes = session(exported / "dsm+optical.onnx")
    assert shapes.get_inputs()[0].shape == ["batch", 4, "height", "width"]
    assert shapes.get_outputs()[0].shape == ["batch", 6, "height", "width"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_onnxruntime_and_the_metadata_alone_reproduce_predict(
    exported, finished_run, scene, tmp_path, scenario
):
    """A user without MissBench: bands stacked in `missbench_bands` order, nodata as NaN,
    standardised as Deepness does it (pixel / 255, then the metadata's mean and std), argmax,
    255 where any input is nodata; equal to `predict`'s label GeoTIFF."""
    present = sorted(Scenario.parse(scenario).present)
    out = tmp_path / "labels.tif"
    assert predict(finished_run, {m: scene[m] for m in present}, out) == 0
    with rasterio.open(out) as dst:
        expected = dst.read(1)
    onnx_session = session(exported / f"{scenario}.onnx")
    meta = onnx_session.get_modelmeta().custom_metadata_map
    bands = []
    for band in json.loads(meta["missbench_bands"]):
        name, index = band.split(":")
        with rasterio.open(scene[name]) as src:
            values = src.read(int(index)).astype(np.float32)
            if src.nodata is not None:
                values[values == src.nodata] = np.nan
        bands.append(values)
    pixels = np.stack(bands)

    def stats(key: str) -> np.ndarray:
        return np.array(json.loads(meta[key]), np.float32)[:, None, None]

    deepness = (pixels / 255 - stats("standardization_mean")) / stats("standardization_std")
    plain = (pixels - stats("missbench_mean")) / stats("missbench_std")
    for standardised in (deepness, plain):
        (probs,) = onnx_session.run(None, {"input": standardised[None]})
        labels = probs[0].argmax(0).astype(np.uint8)
        labels[np.isnan(pixels).any(0)] = NODATA
        assert "dsm" not in present or (labels == NODATA).any()
        np.testing.assert_array_equal(labels, expected)


def test_overlapping_windows_of_log_probabilities_give_predicts_labels(
    exported, finished_run, scene
):
    """Log-probabilities differ from logits by a constant per pixel and window, so averaging
    them over overlapping windows keeps the argmax of averaged logits: with a 64 px window
    (three overlapping windows across the scene) onnxruntime's labels equal PyTorch's."""
    from benchmark.run.inference import sliding_window_logits

    base = load_model(finished_run)
    model = DeployedModel(base.method, base.spec, {**base.card, "window": 64}, base.device)
    raw = read_scene(scene)
    onnx_session = session(exported / "dsm+optical.onnx")

    def log_probabilities(view):
        stacked = torch.cat([view["optical"], view["dsm"]], 1).numpy()
        (probs,) = onnx_session.run(None, {"input": stacked})
        return torch.from_numpy(np.log(np.maximum(probs, np.finfo(np.float32).tiny)))

    expected = model.predict(raw, nodata=-9999.0)
    raw["dsm"][raw["dsm"] == -9999.0] = np.nan  # the mean fill, in the graph as in predict
    tensors = model.normalise(raw)
    windows = sliding_window_logits(log_probabilities, tensors, 6, window=64, overlap=0.5)
    labels = windows.argmax(0).numpy().astype(np.uint8)
    labels[expected == NODATA] = NODATA
    np.testing.assert_array_equal(labels, expected)


def test_bad_exports_are_one_line_and_exit_2(finished_run, exported, tmp_path, capsys, monkeypatch):
    base = ["export", str(finished_run)]
    cases = [
        ([*base, "--out", str(exported)], "exists; choose another --out or pass --force"),
        ([*base, "--out", str(tmp_path / "a"), "--resolution", "0"], "--resolution 0.0: expected"),
        (  # a results directory needs --method; a run folder must match the flags given
            ["export", str(finished_run.parent.parent), "--out", str(tmp_path / "a")],
            "pick one with --method NAME",
        ),
        (
            [*base, "--seed", "7", "--out", str(tmp_path / "a")],
            "a run of seed 0, not what --seed 7",
        ),
    ]
    for args, message in cases:
        capsys.readouterr()
        assert main(args) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
    with pytest.raises(SystemExit) as caught:  # argparse's own refusal, also one line
        main([*base, "--format", "tflite"])
    assert caught.value.code == 2 and "invalid choice: 'tflite'" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # the extra is not installed
    assert main([*base, "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        'needs the `onnxruntime` package of the `export` extra: pip install -e ".[export]"' in err
    )
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.mark.parametrize(
    "name",
    METHODS.names(),
)
def test_every_method_exports_every_scenario(finished_run, data_root, name):
    """Each registered method, untrained, traces for every scenario and onnxruntime agrees
    with PyTorch (at a 64 px trace size to keep it quick)."""
    method, _, spec = build_method(name, data_root)
    card = {**load_model(finished_run).card, "window": 64, "label": name}
    model = DeployedModel(method.eval(), spec, card, torch.device("cpu"))
    for scenario in all_scenarios(model.modalities):
        data = trace(onnx, model, scenario).SerializeToString()
        assert check_against_torch(ort, data, model, scenario) <= 1e-4
