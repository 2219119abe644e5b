"""The Python model API (`load_model`): callable like a segmentation model on arrays or tensors,
one image or a batch, `predict_proba`, the CLI's nodata rule and one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import torch

from benchmark.deploy.model import NODATA, load_model
from benchmark.system.errors import BenchmarkError
from tests.benchmark.deploy.test_predict import predict


@pytest.fixture(scope="module")
def model(finished_run):
    return load_model(finished_run)


@pytest.fixture(scope="module")
def raw(scene) -> dict[str, np.ndarray]:
    """The scene's rasters as read from disk (the DSM's void still holds -9999)."""
    arrays = {}
    for name, path in scene.items():
        with rasterio.open(path) as src:
            arrays[name] = src.read()
    return arrays


def test_a_model_is_callable_on_arrays_and_tensors_one_image_or_a_batch(model, raw):
    optical = raw["optical"]
    labels = model.predict({"optical": optical})
    assert labels.dtype == np.uint8 and labels.shape == optical.shape[1:]
    np.testing.assert_array_equal(model({"optical": optical}), labels)
    # a batch of one [1, 3, H, W] is one image of three bands, not one band
    np.testing.assert_array_equal(model({"optical": optical[None]}), labels[None])
    tensor = model({"optical": torch.from_numpy(optical).double()[None]})
    assert isinstance(tensor, torch.Tensor) and tensor.dtype == torch.uint8
    np.testing.assert_array_equal(tensor[0].numpy(), labels)
    flipped = optical[:, ::-1].copy()
    both = model({"optical": np.stack([optical, flipped]), "dsm": np.stack([raw["dsm"]] * 2)})
    assert both.shape == (2, *labels.shape)
    np.testing.assert_array_equal(both[1], model({"optical": flipped, "dsm": raw["dsm"]}))


def test_predict_proba_gives_probabilities_whose_argmax_is_predict(model, raw):
    inputs = {"optical": torch.from_numpy(raw["optical"])[None]}
    probs = model.predict_proba(inputs)
    assert isinstance(probs, torch.Tensor) and probs.shape == (1, 6, *raw["optical"].shape[1:])
    torch.testing.assert_close(probs.sum(1), torch.ones_like(probs[:, 0]))
    assert torch.equal(probs.argmax(1).to(torch.uint8), model(inputs))


def test_nan_and_nodata_pixels_are_255_as_the_cli_writes_them(
    model, raw, finished_run, scene, tmp_path
):
    out = tmp_path / "labels.tif"
    assert predict(finished_run, scene, out) == 0
    with rasterio.open(out) as dst:
        written = dst.read(1)
    labels = model.predict(raw, nodata=-9999.0)
    np.testing.assert_array_equal(labels, written)
    assert (labels[5:9, 10:20] == NODATA).all() and (labels[labels != NODATA] < 6).all()
    with_nan = {"optical": raw["optical"].astype(np.float32), "dsm": raw["dsm"]}
    with_nan["optical"][1, 30:32, 40:44] = np.nan
    labels = model.predict(with_nan, nodata=-9999.0)
    assert (labels[30:32, 40:44] == NODATA).all() and (labels[5:9, 10:20] == NODATA).all()
    probs = model.predict_proba(with_nan, nodata=-9999.0)
    assert np.isnan(probs[:, labels == NODATA]).all()
    assert not np.isnan(probs[:, labels != NODATA]).any()


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"optical": np.zeros((64, 64))}, "expected a numeric array [C, H, W] or a batch"),
        ({"optical": np.array([["a"] * 4] * 3)}, "got an array of <U1"),
        ({"optical": "scene.tif"}, "got a str"),
        ({"optical": np.zeros((3, 0, 64))}, "got the empty shape (3, 0, 64)"),
        ({"optical": [[[1.0, 2.0]], [[3.0]], [[4.0]]]}, "not a rectangular array"),
        ({"optical": torch.zeros(3, 8, 8, dtype=torch.complex64)}, "tensor of torch.complex64"),
        ({"optical": np.zeros((1, 64, 64))}, "1 band(s) (axis -3 of shape (1, 64, 64))"),
        ({"sar": np.zeros((1, 64, 64))}, "modalities ['sar']: this model takes"),
        ({}, "modalities (none)"),
        (np.zeros((3, 64, 64)), "expected a mapping of modality to array"),
        (
            {"optical": np.zeros((3, 96, 96)), "dsm": np.zeros((1, 192, 192))},
            "inputs differ in batch or size (optical (3, 96, 96), dsm (1, 192, 192))",
        ),
        (
            {"optical": np.zeros((2, 3, 64, 64)), "dsm": np.zeros((1, 64, 64))},
            "co-registered inputs share N, H and W",
        ),
        (
            {"optical": np.zeros((3, 10, 300), np.float32)},
            "inputs of 10 x 300 px has a side of 10 px, too thin to pad by reflection",
        ),
    ],
)
def test_bad_inputs_are_one_line_naming_what_was_expected(model, inputs, message):
    for call in (model, model.predict, model.predict_proba):
        with pytest.raises(BenchmarkError) as caught:
            call(inputs)
        text = str(caught.value)
        assert message in text and len(text.splitlines()) == 1, text
