"""Frozen folders: `report --freeze DEST` keeps what the report reads of every run (no weights)
and the report made from it; `report DEST --out DIR` regenerates every table byte for byte,
and `report DEST` never replaces the committed report unless asked."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest
from PIL import Image

from benchmark.cli import main
from benchmark.report.freeze import check_dest, frozen_options
from benchmark.report.generate import frozen_notes, report_target
from benchmark.run.store import RunStore, frozen_changes
from benchmark.system.errors import BenchmarkError
from tests.benchmark.cli.cli_helpers import snapshot
from tests.benchmark.report.report_variants import copy_fixture

TABLES = (".csv", ".md", ".tex")
INDEX = ("report.md",)
"""The index names where and how the report was built; every other text output is a table."""


def tables(report: Path) -> dict[str, bytes]:
    """Every CSV, Markdown and LaTeX output of a report but its index, by relative path."""
    return {
        str(p.relative_to(report)): p.read_bytes()
        for p in sorted(report.rglob("*"))
        if p.suffix in TABLES and p.name not in INDEX
    }


REFERENCE = "baseline[class_weighting=none]"


@pytest.fixture(scope="module")
def frozen(tmp_path_factory):
    """The report fixture's runs (one given fake weights and a checkpoint), frozen from the
    command line with another reference than the default."""
    source = copy_fixture(tmp_path_factory.mktemp("source"))
    done = sorted(p for p in (source / "runs").iterdir() if (p / "done").exists())
    (done[0] / "model.safetensors").write_bytes(b"weights" * 1000)
    (done[0] / "checkpoint.pt").write_bytes(b"checkpoint" * 1000)
    dest = tmp_path_factory.mktemp("results") / "2026-12-07_abc1234" / "study"
    args = ["report", str(source), "--freeze", str(dest), "--no-qualitative"]
    assert main([*args, "--reference", REFERENCE]) == 0
    return source, dest


def test_a_frozen_run_keeps_spec_records_and_log_but_no_weights(frozen):
    source, dest = frozen
    sources = sorted(p.name for p in (source / "runs").iterdir())
    assert sorted(p.name for p in (dest / "runs").iterdir()) == sources
    assert not [p for p in dest.rglob("*") if p.suffix in (".safetensors", ".pt")]
    store, copy = RunStore(source), RunStore(dest)
    compressed = plain = 0
    for name in sources:
        here, there = source / "runs" / name, dest / "runs" / name
        assert (there / "spec.json").read_bytes() == (here / "spec.json").read_bytes()
        assert (there / "done").exists() == (here / "done").exists()
        if (here / "records.jsonl").exists():
            assert not (there / "records.jsonl").exists()
            raw = gzip.decompress((there / "records.jsonl.gz").read_bytes())
            assert raw == (here / "records.jsonl").read_bytes()
            assert copy.read_records(name) == store.read_records(name)  # read transparently
            assert copy.load(name).state == store.load(name).state == "done"
            compressed += (there / "records.jsonl.gz").stat().st_size
            plain += len(raw)
    assert 0 < compressed < plain / 2
    assert frozen_changes(dest) == []
    assert frozen_options(dest) == {"reference": REFERENCE, "selection": "full_val"}
    index = (dest / "report" / "report.md").read_text(encoding="utf-8")
    assert f"Reference method: `{REFERENCE}`" in index


def test_report_regenerates_every_table_byte_for_byte(frozen, tmp_path):
    _source, dest = frozen
    committed = tables(dest / "report")
    names = {"leaderboard.csv", "significance.csv", "tables/synthetic.md", "compute.csv"}
    assert names | {"compute.md"} <= set(committed)  # compute: the hours a README quotes
    before = snapshot(dest)
    # a plain `report` with --out: the frozen reference, the qualitative grid said skipped
    assert main(["report", str(dest), "--out", str(tmp_path / "again")]) == 0
    assert tables(tmp_path / "again") == committed
    assert snapshot(dest) == before  # the frozen folder is only read
    figures = sorted(p.name for p in (dest / "report" / "figures").glob("*.png"))
    assert figures and figures == sorted(
        p.name for p in (tmp_path / "again" / "figures").glob("*.png")
    )
    for name in figures:
        with Image.open(tmp_path / "again" / "figures" / name) as image:
            image.verify()
    index = (tmp_path / "again" / "report.md").read_text(encoding="utf-8")
    assert "qualitative grids not redrawn: a frozen folder keeps no weights" in index


def test_the_committed_report_is_replaced_only_when_asked(frozen, tmp_path, capsys):
    source, dest = frozen
    before = snapshot(dest)
    assert main(["report", str(dest)]) == 2
    err = capsys.readouterr().err.strip()
    assert "frozen folder" in err and "--out" in err and len(err.splitlines()) == 1
    assert main(["report", str(dest), "--out", str(dest / "runs" / "x")]) == 2
    assert "inside" in capsys.readouterr().err
    assert main(["report", str(source), "--freeze", str(dest), "--no-qualitative"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert snapshot(dest) == before
    assert report_target(dest, None, overwrite=True) == dest / "report"
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert main(["report", str(source), "--freeze", str(other)]) == 2
    assert [p.name for p in other.iterdir()] == ["notes.txt"]
    with pytest.raises(BenchmarkError, match="inside the results directory"):
        check_dest(source, source / "frozen", overwrite=False)
    again = tmp_path / "again"
    shutil.copytree(dest, again)
    (again / "README.md").write_text("by hand")
    check_dest(source, again, overwrite=True)  # a new freeze replaces runs and report only
    assert sorted(p.name for p in again.iterdir()) == ["README.md", "frozen.json"]


def test_an_edited_record_is_named_in_the_report(frozen, tmp_path):
    dest = tmp_path / "frozen"
    shutil.copytree(frozen[1], dest)
    run = next(p for p in sorted((dest / "runs").iterdir()) if (p / "records.jsonl.gz").exists())
    records = gzip.decompress((run / "records.jsonl.gz").read_bytes())
    (run / "records.jsonl.gz").write_bytes(gzip.compress(records.replace(b"0.", b"0.9", 1)))
    assert frozen_changes(dest) == [f"runs/{run.name}/records.jsonl.gz"]
    notes = frozen_notes(dest)
    assert any("1 run file(s) differ from what was frozen" in n for n in notes)


def test_a_named_reference_that_is_no_method_is_one_line_and_writes_nothing(tmp_path, capsys):
    """`--reference` given on the command line must name a method of the folder (a typo would
    give tables without their comparisons); the default reference only warns."""
    source = copy_fixture(tmp_path / "source")
    before = snapshot(source)
    for extra in ([], ["--freeze", str(tmp_path / "frozen")]):
        args = ["report", str(source), "--reference", "star", "--no-qualitative", *extra]
        assert main(args) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        assert "--reference star: not among the methods of" in err and "baseline" in err
    assert snapshot(source) == before and not (tmp_path / "frozen").exists()
