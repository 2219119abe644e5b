"""Nothing is written outside `--out`, the data root and the caches (issue 20 §2): a symlink
inside one of them that leads elsewhere is refused in one line with exit status 2, and the
place it leads to stays as it was."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from benchmark.cli import main
from benchmark.system.confine import OutsideRootsError, active_roots, confined_to, write_target
from benchmark.system.errors import describe
from tests.benchmark.cli.cli_helpers import invoke, snapshot
from tests.benchmark.cli.test_bad_data import folder_args, write_folder


def test_write_target_allows_inside_and_refuses_outside(tmp_path):
    inside, outside = tmp_path / "out", tmp_path / "elsewhere"
    inside.mkdir()
    outside.mkdir()
    (inside / "link").symlink_to(outside)
    assert write_target(outside / "x") == outside / "x"  # unconfined: anything goes
    with confined_to([inside, None]):
        assert write_target(inside / "a" / "b.json") == inside / "a" / "b.json"
        assert write_target(inside) == inside
        for bad in (outside / "x", inside / ".." / "elsewhere" / "x", inside / "link" / "x"):
            with pytest.raises(OutsideRootsError, match="refusing to write"):
                write_target(bad)
        with confined_to([outside]):  # nested: the inner roots, then the outer ones again
            assert write_target(outside / "x")
        with pytest.raises(OutsideRootsError):
            write_target(outside / "x")
    assert active_roots() is None


def test_error_descriptions_never_quote_file_bytes():
    class TiffFileError(Exception):
        pass

    assert describe(TiffFileError("not a TIFF file: header=b'SECR'")) == (
        "TiffFileError: not a TIFF file: header=<bytes>"
    )
    try:
        b"\x89PNG".decode()
    except UnicodeDecodeError as error:
        assert "0x89" not in describe(error)
    assert describe(ValueError("first\x00 line\nsecond")) == "ValueError: first line"
    assert len(describe(ValueError("x" * 1000))) < 320


def refused(args: list[str], watched: list[Path], capsys, data_root: Path, out: Path) -> None:
    before = [snapshot(w) for w in watched]
    capsys.readouterr()
    assert invoke(args, data_root, out) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "refusing to write" in err and "Traceback" not in err, err
    assert [snapshot(w) for w in watched] == before


def test_a_runs_folder_linked_elsewhere_is_refused(results, data_root, tmp_path, capsys):
    elsewhere = tmp_path / "elsewhere"
    shutil.move(results / "runs", elsewhere)  # the finished run now lives elsewhere
    (results / "runs").symlink_to(elsewhere)
    refused(
        ["--methods", "moddrop", "--missing", "none"],
        [results, elsewhere],
        capsys,
        data_root,
        results,
    )


def test_a_report_folder_linked_elsewhere_is_refused(results, tmp_path, capsys):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("mine")
    (results / "report").symlink_to(elsewhere)
    before = snapshot(elsewhere), snapshot(results)
    capsys.readouterr()
    assert main(["report", str(results), "--no-qualitative"]) == 2
    err = capsys.readouterr().err.strip()
    assert "refusing to write" in err and len(err.splitlines()) == 1, err
    assert (snapshot(elsewhere), snapshot(results)) == before
    assert sorted(p.name for p in elsewhere.iterdir()) == ["keep.txt"]


def test_a_tile_cache_linked_elsewhere_is_refused(tmp_path, capsys, monkeypatch):
    card = write_folder(tmp_path / "mydata")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (card.parent / ".missbench_cache").symlink_to(elsewhere)
    monkeypatch.delenv("MISSBENCH_CACHE", raising=False)
    results = tmp_path / "results"
    refused(folder_args(card), [elsewhere], capsys, card.parent, results)
    assert not list(elsewhere.iterdir())


def test_generated_synthetic_data_linked_elsewhere_is_refused(tmp_path, capsys):
    data_root, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    data_root.mkdir()
    elsewhere.mkdir()
    (data_root / "synthetic").symlink_to(elsewhere)
    refused(["--missing", "none"], [elsewhere], capsys, data_root, tmp_path / "results")
    assert not list(elsewhere.iterdir())


@pytest.mark.parametrize("damage", [b"SECRET\x89" * 8, b"", b"\x93NUMPY\x01\x00"])
def test_a_damaged_tile_cache_entry_is_decoded_again(tmp_path, damage, caplog):
    from datasets.files.tile_cache import TileCache

    cache = TileCache(tmp_path)
    produce = lambda: np.arange(12, dtype=np.float32).reshape(3, 4)  # noqa: E731
    first = np.array(cache.get("tile", "fp", produce))
    cache.path("tile", "fp").write_bytes(damage)
    again = cache.get("tile", "fp", produce)
    np.testing.assert_array_equal(again, first)
    assert "decoding it again" in caplog.text and "SECRET" not in caplog.text
