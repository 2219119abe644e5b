"""A run's id includes the bytes of every file it reads by path (issue 33, class 4).

`weights=<path>` and a `folder` card are read by path: editing the file behind the path makes
another run; the same weights at another path are the same run (a hyperparameter naming a
file hashes as its bytes), a card's path stays in the id (its data are found relative to it).
A card's tiles are in the id too (`dataset_files`; tests/datasets/test_folder.py).
Runs that read no file keep the ids they had, so finished results stay valid.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from benchmark.core.hparams import Params
from benchmark.core.options import NamedConfig
from benchmark.core.plugins import DATASETS
from benchmark.core.presets import PRESETS
from benchmark.core.records import RunSpec
from benchmark.run.sweep import SweepRequest, expand, make_run_spec
from benchmark.system.errors import BenchmarkError
from benchmark.system.io import content_digest

REPO = Path(__file__).resolve().parents[3]
CARD = REPO / "tests" / "data" / "folder" / "my_city" / "card.yaml"


def spec_for(method: str = "baseline", dataset: str = "synthetic", **overrides) -> RunSpec:
    return make_run_spec(
        NamedConfig(method, Params(overrides)),
        NamedConfig(dataset),
        seed=0,
        preset=PRESETS.get("quick"),
        steps=400,
        train_modalities=("dsm", "optical"),
    )


def weights_spec(path: Path) -> RunSpec:
    return spec_for(weights=str(path))


def card_spec(card: Path) -> RunSpec:
    return make_run_spec(
        NamedConfig("baseline"),
        NamedConfig("folder", Params({"card": str(card)})),
        seed=0,
        preset=PRESETS.get("smoke"),
        steps=6,
        train_modalities=("dsm", "optical", "sar"),
    )


@pytest.mark.parametrize(
    ("preset", "dataset", "method", "modalities", "run_id"),
    [
        # The first is a finished run of results/2026-12-07_d0d5baa/invalid_fill.
        ("quick", "synthetic", "baseline", "dsm+optical", "77802153be14a938"),
        ("quick", "synthetic", "unimodal", "dsm", "1d3d0e839919a939"),
        ("paper", "synthetic", "baseline", "dsm+optical", "1a46e08cb609d42c"),  # imagenet: no file
        ("smoke", "synthetic_sar", "shaspec", "optical+sar", "c9ea27865117be87"),
    ],
)
def test_runs_that_read_no_file_keep_their_ids(preset, dataset, method, modalities, run_id):
    sweep = expand(
        SweepRequest(
            methods=(NamedConfig(method),),
            datasets=(NamedConfig(dataset),),
            seeds=(0,),
            preset=PRESETS.get(preset),
        )
    )
    (spec,) = [s for s in sweep.specs if "+".join(s.train_modalities) == modalities]
    assert spec.file_digests == ()
    assert spec.run_id == run_id
    assert "file_digests" not in spec.to_json()  # spec.json as it was


def test_every_committed_runs_spec_still_names_its_folder():
    specs = sorted(REPO.glob("results/*/*/runs/*/spec.json"))
    assert specs, "no committed run folders found"
    for path in specs:
        assert RunSpec.from_json(json.loads(path.read_text())).run_id == path.parent.name, path


def test_the_weights_files_bytes_are_part_of_the_run_id(tmp_path):
    weights = tmp_path / "encoder.pth"
    weights.write_bytes(b"first weights")
    first = weights_spec(weights)
    assert [key for key, _ in first.file_digests] == ["hparams.weights"]
    assert first.run_id != spec_for().run_id

    weights.write_bytes(b"other weights")  # same path, new bytes: another run
    changed = weights_spec(weights)
    assert changed.run_id != first.run_id

    weights.write_bytes(b"first weights")  # the old bytes again: the old run
    os.utime(weights, (1, 1))
    assert weights_spec(weights).run_id == first.run_id

    elsewhere = tmp_path / "copy" / "same.safetensors"  # the same bytes at another path
    elsewhere.parent.mkdir()
    shutil.copy(weights, elsewhere)
    moved = weights_spec(elsewhere)
    assert moved.run_id == first.run_id and moved.hparams["weights"] == str(elsewhere)

    rebuilt = RunSpec.from_json(json.loads(json.dumps(changed.to_json())))  # as a worker does
    assert rebuilt.file_digests == changed.file_digests and rebuilt.run_id == changed.run_id


def test_a_missing_weights_file_is_the_one_line_error(tmp_path):
    absent = tmp_path / "absent.pth"
    with pytest.raises(BenchmarkError, match=r"weights=.*absent\.pth: no such file; expected"):
        weights_spec(absent)
    with pytest.raises(BenchmarkError, match="no such file"):
        weights_spec(tmp_path)  # a folder is not a weights file either


def test_a_folder_cards_bytes_are_part_of_the_run_id(tmp_path, monkeypatch):
    monkeypatch.setenv("MISSBENCH_CACHE", str(tmp_path / "cache"))
    text = CARD.read_text()
    shutil.copytree(CARD.parent, tmp_path / "city")  # a card's tiles are part of its id too
    card = tmp_path / "city" / "card.yaml"
    first = card_spec(card)
    assert [key for key, _ in first.file_digests] == ["dataset_files", "dataset_options.card"]

    card.write_text(text.replace("description: fake", "description: edited fake"))
    assert card_spec(card).run_id != first.run_id
    card.write_text(text)
    assert card_spec(card).run_id == first.run_id

    # The same card elsewhere describes the data beside it: its path stays in the id.
    other = tmp_path / "other" / "card.yaml"
    shutil.copytree(CARD.parent, other.parent)
    assert card_spec(other).run_id != first.run_id


def test_a_sweep_digests_a_folders_files_once(tmp_path, monkeypatch):
    """Every spec of a sweep on one folder dataset reads the same files: they are stated and
    digested once, not once per method and seed, and every spec carries the same digests."""
    monkeypatch.setenv("MISSBENCH_CACHE", str(tmp_path / "cache"))
    shutil.copytree(CARD.parent, tmp_path / "city")
    folder = DATASETS.get("folder")
    calls = []
    digest = folder.data_digest.__func__
    monkeypatch.setattr(
        folder, "data_digest", classmethod(lambda cls, o: calls.append(o) or digest(cls, o))
    )
    sweep = expand(
        SweepRequest(
            methods=(NamedConfig("baseline"), NamedConfig("moddrop")),
            datasets=(
                NamedConfig("folder", Params({"card": str(tmp_path / "city" / "card.yaml")})),
            ),
            seeds=(0, 1),
            preset=PRESETS.get("smoke"),
        )
    )
    assert len(sweep.specs) == 4 and len(calls) == 1
    assert len({s.file_digests for s in sweep.specs}) == 1


def test_content_digest_reads_a_rewritten_file_again_and_refuses_a_fifo(tmp_path):
    path = tmp_path / "w.bin"
    path.write_bytes(b"a" * 10)
    first = content_digest(path)
    assert first.startswith("sha256:") and content_digest(path) == first
    path.write_bytes(b"b" * 10)  # same size; the modification time moves
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert content_digest(path) != first
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(BenchmarkError, match="not a regular file"):
        content_digest(fifo)
