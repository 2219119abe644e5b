"""Encoder weights: none, imagenet (needs timm's cache or the hub), or a local state dict."""

from __future__ import annotations

import pytest
import timm
import torch
from safetensors.torch import save_file

from benchmark.core import weights as weights_module
from benchmark.core.presets import PRESETS
from benchmark.system.errors import BenchmarkError
from methods.components.encoders import ModalityEncoder
from tests.benchmark.cli.cli_helpers import assert_rejected


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, object]:
    torch.manual_seed(0)
    full = timm.create_model("resnet10t", pretrained=False)  # a classifier head too
    state = {k: v.clone() for k, v in full.state_dict().items()}
    folder = tmp_path_factory.mktemp("weights")
    save_file(state, str(folder / "resnet10t.safetensors"))
    torch.save(state, folder / "resnet10t.pth")
    return {"state": state, "folder": folder}


@pytest.mark.parametrize("suffix", ["safetensors", "pth"])
@pytest.mark.parametrize("bands", [3, 1, 4])
def test_a_local_state_dict_is_loaded_and_its_stem_adapted(saved, suffix, bands):
    path = saved["folder"] / f"resnet10t.{suffix}"
    encoder = ModalityEncoder("resnet10t", bands, str(path))
    loaded, state = encoder.net.state_dict(), saved["state"]
    assert all(torch.equal(v, state[k]) for k, v in loaded.items() if k != "conv1.0.weight")
    expected = timm.models.adapt_input_conv(bands, state["conv1.0.weight"])
    torch.testing.assert_close(loaded["conv1.0.weight"], expected)
    random = ModalityEncoder("resnet10t", bands, "none").net.state_dict()
    assert not torch.equal(random["layer1.0.conv1.weight"], state["layer1.0.conv1.weight"])


def test_a_missing_or_foreign_file_is_one_line(saved, tmp_path):
    with pytest.raises(BenchmarkError, match="no such file"):
        ModalityEncoder("resnet10t", 3, str(tmp_path / "absent.pth"))
    foreign = tmp_path / "foreign.safetensors"
    save_file({"fc.weight": torch.zeros(2, 2)}, str(foreign))
    with pytest.raises(BenchmarkError, match="not a state dict of this backbone"):
        ModalityEncoder("resnet10t", 3, str(foreign))


def test_imagenet_without_hub_or_cache_says_how_to_provide_weights(monkeypatch):
    def offline(*args, **kwargs):
        if kwargs.get("pretrained"):
            raise OSError("cannot reach huggingface.co and no cached file")
        return real(*args, **kwargs)

    real = timm.create_model
    monkeypatch.setattr(weights_module.timm, "create_model", offline)
    with pytest.raises(BenchmarkError, match="weights=<path to a timm state dict"):
        weights_module.check_weights("resnet10t", "imagenet")


def test_the_paper_preset_starts_from_imagenet():
    assert PRESETS.get("paper").hparams["weights"] == "imagenet"
    assert "weights" not in PRESETS.get("quick").hparams  # tests and CPU runs: none


def test_a_missing_weights_file_is_refused_before_anything_runs(data_root, tmp_path, capsys):
    out = tmp_path / "results"
    args = ["--methods", f"baseline[weights={tmp_path / 'absent.pth'}]"]
    assert_rejected(args, "no such file", data_root, out, capsys)
    assert not out.exists()
