"""Hostile dataset cards (issue 20, classes 1-4): each is refused in one line with exit status 2,
and nothing anywhere under the test's folder changes — the results, the data, the cache, or a
path a card tried to reach."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
import yaml

from tests.benchmark.cli.cli_helpers import invoke, snapshot
from tests.benchmark.cli.test_bad_data import folder_args, write_folder

BOMB = """name: probe
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""
"""The classic billion laughs: 9^9 ≈ 387 million strings from about 500 bytes."""


@pytest.fixture()
def card(tmp_path) -> Path:
    return write_folder(tmp_path / "mydata")


def edit(card: Path, change) -> None:
    data = yaml.safe_load(card.read_text())
    change(data)
    card.write_text(yaml.safe_dump(data))


def outside_cache(root: Path) -> dict:
    return {k: v for k, v in snapshot(root).items() if ".missbench_cache" not in k}


def refused(card: Path, tmp_path: Path, capsys, message: str, *extra: str, cache=False) -> str:
    """Run on the card; assert exit 2, one line naming `message`, and nothing changed (but the
    tile cache, with `cache=True`, for data found bad only once earlier tiles were decoded)."""
    look = outside_cache if cache else snapshot
    before = look(tmp_path)
    capsys.readouterr()
    code = invoke([*folder_args(card), *extra], card.parent, tmp_path / "results")
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert message in err, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert look(tmp_path) == before
    return err


# ------------------------------------------------------------- 1. resource exhaustion


def key_bomb(valid: str) -> str:
    """The bomb's anchors, then the valid card with the bomb inside an ordinary key."""
    anchors = BOMB.replace("name: probe\n", "").replace("i: &i", "description: &i")
    return valid.replace("name: probe\n", "name: probe\n" + anchors)


MERGE_BOMB = BOMB.replace("i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]", "m: &m {x: [*h, *h, *h]}")


@pytest.mark.parametrize(
    "make,message",
    [
        pytest.param(
            lambda valid: BOMB + valid.replace("name: probe\n", ""),
            "aliases are expanded",
            id="unknown-keys",
        ),
        pytest.param(key_bomb, "aliases are expanded", id="in-description"),
        pytest.param(
            lambda valid: (
                MERGE_BOMB
                + "labels: {<<: *m, folder: labels}\n"
                + valid.replace("name: probe\n", "")
            ),
            "aliases are expanded",
            id="merge-key",
        ),
        pytest.param(lambda valid: "a: &a [*a]\n" + valid, "nested deeper", id="self-reference"),
        pytest.param(
            lambda valid: valid + "description: " + "[" * 60 + "]" * 60 + "\n",
            "nested deeper",
            id="nesting",
        ),
        pytest.param(
            lambda valid: valid + "description: '" + "x" * (1 << 20) + "'\n",
            "larger than",
            id="oversize",
        ),
    ],
)
def test_cards_that_would_exhaust_memory_are_refused(card, tmp_path, capsys, make, message):
    card.write_text(make(card.read_text()))
    err = refused(card, tmp_path, capsys, message)
    assert str(card) in err


def test_a_card_that_is_not_text_is_refused_without_echoing_it(card, tmp_path, capsys):
    card.write_bytes(b"\xff\xfe\x00\x01secret-bytes" * 10)
    err = refused(card, tmp_path, capsys, "not UTF-8")
    assert "secret" not in err


# ------------------------------------------------------------- 2. paths that escape


@pytest.mark.parametrize(
    "bad_id", ["../../escape/zz", "/tmp/abs", "a/b", "..", ".hidden", "a\\b", "x\x00y", ""]
)
@pytest.mark.parametrize("launcher", ["local", "dry_run"])
def test_tile_ids_that_would_become_paths_are_refused(card, tmp_path, capsys, bad_id, launcher):
    edit(card, lambda d: d["splits"]["train"].append(bad_id))
    refused(card, tmp_path, capsys, "splits.train", "--launcher", launcher)


@pytest.mark.parametrize(
    "where,value",
    [
        ("folder", "../elsewhere"),
        ("folder", "/etc"),
        ("folder", "~/data"),
        ("pattern", "../{id}"),
        ("pattern", "{id}{other}"),
        ("pattern", "fixed_name"),
        ("pattern", "{id"),
    ],
)
def test_folders_and_patterns_stay_inside_the_data_folder(card, tmp_path, capsys, where, value):
    edit(card, lambda d: d["modalities"]["dsm"].__setitem__(where, value))
    refused(card, tmp_path, capsys, f"modalities.dsm.{where}")


def test_cache_keys_never_name_a_file_outside_the_cache(tmp_path):
    from datasets.files.tile_cache import TileCache

    cache = TileCache(tmp_path / "cache")
    for key in ["../../x", "a/b", "tile 1.optical", "..", "/abs"]:
        path = cache.path(key, "f" * 16)
        assert path.parent == tmp_path / "cache", key
    assert cache.path("top_mosaic_09cm_area1.optical", "f").name.startswith("top_mosaic")


# ------------------------------------------------------------- 3. values of the wrong type


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda d: d.__setitem__("palette", ["red", "blue", "green"]), "palette[0]"),
        (lambda d: d.__setitem__("palette", [[0, 0, 0], [0, 0, 256], [1, 2, 3]]), "palette[1]"),
        (lambda d: d.__setitem__("palette", [[0, 0], [0, 0, 1], [1, 2, 3]]), "palette[0]"),
        (lambda d: d.__setitem__("palette", [[0, 0, 0]]), "palette"),
        (lambda d: d["modalities"]["dsm"].__setitem__("channels", "one"), "channels = 'one'"),
        (lambda d: d["modalities"]["dsm"].__setitem__("channels", 0), "channels = 0"),
        (lambda d: d["modalities"]["dsm"].__setitem__("channels", 1.5), "channels = 1.5"),
        (lambda d: d["modalities"]["dsm"].__setitem__("channels", True), "channels = True"),
        (lambda d: d["modalities"]["dsm"].__setitem__("bands", ["b1"]), "bands"),
        (lambda d: d["modalities"]["dsm"].__setitem__("bands", [0, 1]), "bands"),
        (lambda d: d["modalities"].__setitem__("dsm", [1]), "modalities.dsm"),
        (lambda d: d["modalities"].__setitem__("my-dsm", {"channels": 1}), "modalities"),
        (lambda d: d.__setitem__("seed", -1), "seed = -1"),
        (lambda d: d.__setitem__("seed", "zero"), "seed = 'zero'"),
        (lambda d: d.__setitem__("eval_classes", [0, 7]), "eval_classes[1] = 7"),
        (lambda d: d.__setitem__("eval_classes", "all"), "eval_classes"),
        (lambda d: d.__setitem__("classes", "road"), "classes"),
        (lambda d: d.__setitem__("classes", [["road"], "roof", "grass"]), "classes[0]"),
        (lambda d: d["labels"].__setitem__("encoding", "rgb"), "labels.encoding"),
        (lambda d: d["labels"].__setitem__("ignore", ["none"]), "labels.ignore"),
        (lambda d: d["labels"].update(encoding="values", values={"a": 0}), "labels.values"),
        (lambda d: d["labels"].update(encoding="values", values={10: 9}), "labels.values.10"),
        (lambda d: d["labels"].__setitem__("colour", 1), "unknown key(s) colour"),
        (lambda d: d["modalities"]["dsm"].__setitem__("chanels", 1), "unknown key(s) chanels"),
        (lambda d: d.__setitem__("name", "my city"), "name"),
        (lambda d: d.__setitem__("name", ["x"]), "name"),
        (
            lambda d: (d.pop("splits"), d.__setitem__("split_ratios", {"train": "most"})),
            "split_ratios",
        ),
        (
            lambda d: (
                d.pop("splits"),
                d.__setitem__("split_ratios", {"train": 0.8, "val": 0, "test": 0.2}),
            ),
            "split_ratios.val = 0",
        ),
        (lambda d: d["splits"].__setitem__("train", "a0"), "splits.train"),
        (lambda d: d["splits"]["train"].append(7), "splits.train = 7"),
    ],
)
def test_wrongly_typed_values_name_key_value_and_expectation(
    card, tmp_path, capsys, change, message
):
    edit(card, change)
    err = refused(card, tmp_path, capsys, message)
    assert str(card) in err


# ------------------------------------------------------------- 4. wrong but well-typed


@pytest.mark.parametrize(
    "classes", [["road", "road", "grass"], ["road", "roof", "road"], ["a", "a", "a"]]
)
def test_repeated_class_names_are_refused(card, tmp_path, capsys, classes):
    edit(card, lambda d: d.__setitem__("classes", classes))
    refused(card, tmp_path, capsys, "repeated")


@pytest.mark.parametrize("fill", [np.nan, np.inf, -np.inf])
def test_a_modality_without_any_finite_value_is_refused(card, tmp_path, capsys, fill):
    path = card.parent / "dsm" / "a1.tif"
    tifffile.imwrite(path, np.full((64, 64), fill, dtype=np.float32))
    refused(card, tmp_path, capsys, "a1.tif", cache=True)


def test_a_partly_invalid_modality_runs_with_a_warning_saying_how_much(
    card, tmp_path, capsys, caplog
):
    path = card.parent / "optical" / "a2.tif"
    optical = tifffile.imread(path)
    optical[:, :16, :] = np.nan  # a quarter of every band
    tifffile.imwrite(path, optical, photometric="minisblack")
    with caplog.at_level("WARNING"):
        assert invoke(folder_args(card), card.parent, tmp_path / "results") == 0
    assert any("a2.tif" in r.getMessage() and "25.0 %" in r.getMessage() for r in caplog.records)
