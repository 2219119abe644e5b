"""A model folder is read where it is, and its card and weights are checked before use.

`load_model(folder)` reads the folder itself (moved or copied anywhere, never a same-named run
folder elsewhere); a tampered card is refused by its schema before any module is built; weights
whose tensors do not fit the card's model are refused with a one-line diff; special files are
refused without being opened (a FIFO never hangs). Every refusal is one line naming the field,
and exit status 2 through `predict`.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from benchmark.cli import main
from benchmark.deploy.model import load_model
from benchmark.system.errors import BenchmarkError

GUARD_S = 20
"""Seconds after which a load that blocks (a FIFO opened for reading) fails the test."""


def inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "optical": rng.random((3, 64, 64), dtype=np.float32),
        "dsm": rng.normal(5, 5, (1, 64, 64)).astype(np.float32),
    }


def card_of(run: Path) -> dict[str, Any]:
    return json.loads((run / "model.json").read_text())


def folder_with(run: Path, where: Path, card: Any, weights: Path | None = None) -> Path:
    """A model folder at `where` holding `card` (any JSON) and a link to the run's weights."""
    where.mkdir(parents=True)
    (where / "model.json").write_text(json.dumps(card))
    (where / "model.safetensors").symlink_to(weights or run / "model.safetensors")
    return where


@pytest.fixture
def no_modules(monkeypatch):
    """Fails the test if any torch module is constructed (a model built, memory allocated)."""

    def refuse(self, *args, **kwargs):
        raise AssertionError("a module was built before the card was refused")

    monkeypatch.setattr(torch.nn.Module, "__init__", refuse)


def refused(folder: Path) -> str:
    """The one-line error `load_model(folder)` raises, with a guard against blocking."""

    def late(signum, frame):
        raise TimeoutError(f"load_model blocked for {GUARD_S} s")

    previous = signal.signal(signal.SIGALRM, late)
    signal.alarm(GUARD_S)
    try:
        with pytest.raises(BenchmarkError) as error:
            load_model(folder)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    message = str(error.value)
    assert "\n" not in message and "Traceback" not in message, message
    return message


def cli_refuses(folder: Path, tmp_path: Path, capsys, optical: Path) -> str:
    capsys.readouterr()
    out = tmp_path / "never.tif"
    code = main(["predict", str(folder), "--input", f"optical={optical}", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert not out.exists()
    return err


# ------------------------------------------------------------------ the folder is read where it is
def test_a_moved_folder_loads_and_predicts_the_same_labels(finished_run, tmp_path):
    moved = tmp_path / "mymodel"  # no ../../runs/<name> above it
    shutil.copytree(finished_run, moved)
    expected = load_model(finished_run).predict(inputs())
    model = load_model(moved)
    assert model.card == card_of(finished_run)
    np.testing.assert_array_equal(model.predict(inputs()), expected)


def test_a_same_named_run_folder_elsewhere_is_never_used(finished_run, tmp_path, scene, capsys):
    """The old lookup read <folder>/../../runs/<name>: a decoy there must not be what predicts."""
    base = tmp_path / "base"
    moved = base / "models" / finished_run.name
    shutil.copytree(finished_run, moved)
    decoy = base / "runs" / finished_run.name
    shutil.copytree(finished_run, decoy)
    weights = load_file(str(decoy / "model.safetensors"))
    save_file(
        {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in weights.items()},
        str(decoy / "model.safetensors"),
    )
    (decoy / "model.json").write_text(json.dumps({**card_of(decoy), "label": "decoy"}))
    model = load_model(moved)
    assert model.card["label"] != "decoy"
    np.testing.assert_array_equal(
        model.predict(inputs()), load_model(finished_run).predict(inputs())
    )
    out = tmp_path / "labels.tif"
    args = ["predict", str(moved), "--input", f"optical={scene['optical']}", "--out", str(out)]
    assert main(args) == 0
    import rasterio

    with rasterio.open(out) as dst:
        assert dst.tags()["method"] != "decoy"


def test_cards_written_without_format_selected_steps_or_kind_load_as_format_1(
    finished_run, tmp_path
):
    card = card_of(finished_run)
    del card["format"], card["selected_steps"]
    for modality in card["dataset_spec"]["modalities"]:
        del modality["kind"]
    card["hparams"].append(["a_name_this_version_dropped", 1])
    model = load_model(folder_with(finished_run, tmp_path / "old", card))
    np.testing.assert_array_equal(
        model.predict(inputs()), load_model(finished_run).predict(inputs())
    )


# ------------------------------------------------------------- tampered cards: refused, unbuilt
def modality(card: dict, name: str) -> dict:
    return next(m for m in card["dataset_spec"]["modalities"] if m["name"] == name)


def hparam(card: dict, name: str, value: Any) -> dict:
    card["hparams"] = [[k, value if k == name else v] for k, v in card["hparams"]]
    return card


def with_class(card: dict) -> dict:
    card["dataset_spec"]["classes"].append("extra")
    card["dataset_spec"]["palette"].append([1, 2, 3])
    return card


CARD_CASES: dict[str, tuple[Callable[[dict], Any], str]] = {
    "wrong backbone": (lambda c: hparam(c, "backbone", "resnet_none"), "hparams.backbone="),
    "hf-hub backbone": (
        lambda c: hparam(c, "backbone", "hf-hub:timm/resnet18.a1_in1k"),
        "hparams.backbone=",
    ),
    "local-dir backbone": (lambda c: hparam(c, "backbone", "local-dir:/tmp/x"), "hparams.backbone"),
    "huge decoder_channels": (
        lambda c: hparam(c, "decoder_channels", 10**7),
        "decoder_channels=10000000: must be <= 1024",
    ),
    "band count out of range": (
        lambda c: modality(c, "optical").update(channels=10**6) or c,
        "dataset_spec.modalities[0].channels=1000000",
    ),
    "band count unlike the statistics": (
        lambda c: modality(c, "optical").update(channels=4) or c,
        "dataset_spec.modalities[0].mean=",
    ),
    "window": (lambda c: {**c, "window": 10**6}, "window=1000000: expected an integer"),
    "window as text": (lambda c: {**c, "window": "128"}, "window='128'"),
    "batch size": (lambda c: {**c, "batch_size": 0}, "batch_size=0"),
    "overlap": (lambda c: {**c, "overlap": 1.0}, "overlap=1.0"),
    "class count": (with_class, "class_frequencies="),
    "too many classes": (
        lambda c: c["dataset_spec"].update(classes=[f"c{i}" for i in range(300)]) or c,
        "dataset_spec.classes=",
    ),
    "std zero": (lambda c: modality(c, "dsm").update(std=[0.0]) or c, "modalities[1].std=[0.0]"),
    "mean not finite": (
        lambda c: modality(c, "dsm").update(mean=[math.nan]) or c,
        "modalities[1].mean=[nan]",
    ),
    "std of the wrong length": (
        lambda c: modality(c, "optical").update(std=[1.0]) or c,
        "modalities[0].std=[1.0]: expected 3 values",
    ),
    "newer version": (lambda c: {**c, "format": 2}, "format=2: expected 1"),
    "version as text": (lambda c: {**c, "format": "1"}, "format='1'"),
    "unknown modality": (
        lambda c: {**c, "train_modalities": ["optical", "lidar"]},
        "train_modalities=['optical', 'lidar']",
    ),
    "list instead of mapping": (lambda c: [c], "the card is a list"),
    "dataset_spec a list": (lambda c: {**c, "dataset_spec": [c["dataset_spec"]]}, "dataset_spec"),
    "hparams a mapping": (lambda c: {**c, "hparams": dict(c["hparams"])}, "hparams="),
    "unknown key": (lambda c: {**c, "trust_me": True}, "unknown field(s) 'trust_me'"),
    "unknown method": (lambda c: {**c, "method": "nope"}, "method='nope'"),
}


@pytest.mark.parametrize("case", list(CARD_CASES))
def test_a_tampered_card_is_one_line_before_anything_is_built(
    case, finished_run, tmp_path, scene, capsys, no_modules
):
    edit, field = CARD_CASES[case]
    folder = folder_with(finished_run, tmp_path / "model", edit(card_of(finished_run)))
    message = refused(folder)
    assert field in message and str(folder / "model.json") in message, message
    assert field in cli_refuses(folder, tmp_path, capsys, scene["optical"])


def test_a_key_given_twice_is_refused(finished_run, tmp_path):
    folder = folder_with(finished_run, tmp_path / "model", card_of(finished_run))
    text = (folder / "model.json").read_text()
    (folder / "model.json").write_text(text[:-1] + ', "window": 64}')
    assert "key 'window' given twice" in refused(folder)


# ------------------------------------------------------------------ weights that do not fit
def first_weight(tensors: dict[str, torch.Tensor]) -> str:
    return next(k for k, v in tensors.items() if v.ndim == 4)


def wrong_shape(tensors: dict) -> dict:
    name = first_weight(tensors)
    shape = list(tensors[name].shape)
    return {**tensors, name: torch.zeros(shape[0] + 1, *shape[1:])}


TENSOR_CASES: dict[str, tuple[Callable[[dict], dict], Callable[[dict], Any], str]] = {
    "wrong shape": (wrong_shape, lambda c: c, "1 wrong shape: "),
    "missing tensor": (
        lambda t: {k: v for k, v in t.items() if k != first_weight(t)},
        lambda c: c,
        "1 missing: ",
    ),
    "extra tensor": (lambda t: {**t, "smuggled.weight": torch.zeros(2)}, lambda c: c, "1 extra: "),
    "bands consistent in the card, not in the tensors": (
        lambda t: t,
        lambda c: modality(c, "optical").update(channels=4, mean=[0.0] * 4, std=[1.0] * 4) or c,
        "wrong shape: ",
    ),
    "classes consistent in the card, not in the tensors": (
        lambda t: t,
        lambda c: {**with_class(c), "class_frequencies": [1 / 7] * 7},
        "wrong shape: ",
    ),
}


@pytest.mark.parametrize("case", list(TENSOR_CASES))
def test_weights_that_do_not_fit_the_cards_model_are_a_one_line_diff(
    case, finished_run, tmp_path, scene, capsys
):
    edit_tensors, edit_card, expected = TENSOR_CASES[case]
    tensors = edit_tensors(load_file(str(finished_run / "model.safetensors")))
    weights = tmp_path / "weights.safetensors"
    save_file(tensors, str(weights))
    folder = folder_with(
        finished_run, tmp_path / "model", edit_card(card_of(finished_run)), weights
    )
    message = refused(folder)
    assert expected in message and "tensors do not fit the model its card describes" in message
    assert "model.safetensors" in cli_refuses(folder, tmp_path, capsys, scene["optical"])


# ------------------------------------------------------------------ special files, never opened
def fifo(path: Path) -> None:
    os.mkfifo(path)


def directory(path: Path) -> None:
    path.mkdir()


def device(path: Path) -> None:
    path.symlink_to(os.devnull)


@pytest.mark.parametrize("name", ["model.safetensors", "model.json"])
@pytest.mark.parametrize(
    "make, kind",
    [(fifo, "a FIFO"), (directory, "a directory"), (device, "a character device")],
    ids=["fifo", "directory", "device"],
)
def test_special_files_are_refused_without_opening_them(
    finished_run, tmp_path, name, make, kind, scene, capsys
):
    folder = tmp_path / "model"
    shutil.copytree(finished_run, folder)
    (folder / name).unlink()
    make(folder / name)
    message = refused(folder)
    assert f"{folder / name}: {kind}, not a regular file" in message, message
    assert kind in cli_refuses(folder, tmp_path, capsys, scene["optical"])
