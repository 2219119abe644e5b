"""Damaged corrupted records (issue 33, class 7): a damaged line of a run's `corrupted.jsonl`
is skipped by every reader, set aside in `corrupted.jsonl.damaged` by whoever holds the run's
lock (appended, never overwritten), and its evaluation is missing again, so the next
`--corruptions` command redoes it; a damaged `records.jsonl` is kept the same way before its run
is trained again. Store-level cases use the committed report fixture (no training)."""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path

import pytest

from benchmark.core.plugins import DATASETS
from benchmark.core.records import RunSpec
from benchmark.corrupt.tile import TileCorruption
from benchmark.run.corrupted import corruptions_pending, pending_evaluations
from benchmark.run.store import CORRUPTED, DAMAGED, RECORDS, RunStore
from benchmark.system.io import read_jsonl, read_jsonl_lines
from tests.benchmark.cli.cli_helpers import VOLATILE, invoke, snapshot
from tests.benchmark.report.report_variants import copy_fixture, read_records, scaled
from tests.conftest import TINY

CLOUDS = TileCorruption("clouds", 2, fill="own")

DAMAGE = {
    "truncated": lambda line: line[: len(line) // 2],
    "not utf-8": lambda line: b"\x80\xff" + line[10:],
    "not an object": lambda _line: b"[1, 2, 3]",
    "without its severity": lambda line: _edit(line, lambda r: r.pop("severity")),
    "a severity of the wrong type": lambda line: _edit(line, lambda r: r.update(severity="2")),
    "a boolean severity": lambda line: _edit(line, lambda r: r.update(severity=True)),
    "a score of the wrong type": lambda line: _edit(line, lambda r: r.update(miou=None)),
}


def _edit(line: bytes, change) -> bytes:
    row = json.loads(line)
    change(row)
    return json.dumps(row).encode()


def _lines(records: list[dict]) -> list[bytes]:
    return [json.dumps(r, sort_keys=True).encode() for r in records]


def _write(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(line + b"\n" for line in lines))


@pytest.fixture()
def run(tmp_path) -> tuple[RunStore, Path, list[dict]]:
    """A finished fixture run with its clean test records corrupted by CLOUDS on the scenarios
    that hold the optical modality, in `corrupted.jsonl`."""
    root = copy_fixture(tmp_path)
    run_dir = next(p for p in sorted((root / "runs").iterdir()) if (p / "done").exists())
    records = [
        scaled(r, 0.9, corruption="clouds", severity=2, invalid_fill="own")
        for r in read_records(run_dir)
        if r["split"] == "test" and r["selection"] and "optical" in r["scenario"].split("+")
    ]
    assert len(records) == 2
    _write(run_dir / CORRUPTED, _lines(records))
    return RunStore(root), run_dir, records


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_line_is_skipped_then_set_aside_and_the_rest_kept(run, caplog, damage):
    store, run_dir, records = run
    good, lost = _lines(records)
    bad = DAMAGE[damage](lost)
    _write(run_dir / CORRUPTED, [good, bad])
    before = (run_dir / CORRUPTED).read_bytes()
    assert store.read_corrupted(run_dir.name) == [records[0]]
    assert store.corrupted_lines(run_dir.name)[1] == [bad]
    loaded = store.load(run_dir.name)
    assert loaded.state == "done" and records[0] in loaded.records
    assert loaded.damaged == [f"{CORRUPTED}: 1 damaged line(s) skipped"]
    assert (run_dir / CORRUPTED).read_bytes() == before  # readers write nothing

    with caplog.at_level(logging.WARNING):
        assert store.set_aside_corrupted(run_dir.name) == [records[0]]
    assert read_jsonl(run_dir / CORRUPTED) == [records[0]]
    assert (run_dir / (CORRUPTED + DAMAGED)).read_bytes() == bad + b"\n"
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert str(run_dir / CORRUPTED) in warning and " 1 damaged line" in warning
    assert store.load(run_dir.name).damaged == [f"{CORRUPTED}{DAMAGED}: 1 line(s) set aside"]


def test_a_second_damage_is_appended_to_what_was_set_aside(run):
    store, run_dir, records = run
    first, second = _lines(records)
    _write(run_dir / CORRUPTED, [first, first[:30]])
    store.set_aside_corrupted(run_dir.name)
    _write(run_dir / CORRUPTED, [first, second[:40], b"{not json"])
    store.set_aside_corrupted(run_dir.name)
    kept = (run_dir / (CORRUPTED + DAMAGED)).read_bytes()
    assert kept == first[:30] + b"\n" + second[:40] + b"\n" + b"{not json\n"
    assert read_jsonl(run_dir / CORRUPTED) == [records[0]]
    assert store.set_aside_corrupted(run_dir.name) == [records[0]]  # nothing more to set aside
    assert (run_dir / (CORRUPTED + DAMAGED)).read_bytes() == kept


def test_adding_records_sets_damaged_lines_aside_rather_than_dropping_them(run):
    store, run_dir, records = run
    good, lost = _lines(records)
    _write(run_dir / CORRUPTED, [good, lost[:25]])
    store.add_corrupted(run_dir.name, [records[1]])
    assert read_jsonl(run_dir / CORRUPTED) == records
    assert (run_dir / (CORRUPTED + DAMAGED)).read_bytes() == lost[:25] + b"\n"


def test_the_evaluation_a_damaged_line_held_is_pending_again(run, data_root):
    store, run_dir, records = run
    spec = RunSpec.from_json(json.loads((run_dir / "spec.json").read_text()))
    cls = DATASETS.get("synthetic")
    dataset = cls(data_root, "test", cls.make_options(TINY)).spec
    assert pending_evaluations(spec, store, [CLOUDS], dataset) == []
    assert not corruptions_pending(spec, store, [CLOUDS])
    good, lost = _lines(records)
    _write(run_dir / CORRUPTED, [good, lost[:-7]])
    ((corruption, scenarios),) = pending_evaluations(spec, store, [CLOUDS], dataset)
    assert corruption == CLOUDS and [str(s) for s in scenarios] == [records[1]["scenario"]]
    assert corruptions_pending(spec, store, [CLOUDS])
    # a damaged line of another evaluation makes the run pending too: its job sets it aside
    _write(run_dir / CORRUPTED, [*_lines(records), b"{trunc"])
    assert pending_evaluations(spec, store, [CLOUDS], dataset) == []
    assert corruptions_pending(spec, store, [CLOUDS])


def test_a_frozen_runs_gzipped_records_are_read_line_by_line_and_never_rewritten(run):
    store, run_dir, records = run
    good, lost = _lines(records)
    frozen = gzip.compress(b"".join(line + b"\n" for line in [good, lost[:20], lost]), mtime=0)
    (run_dir / CORRUPTED).unlink()
    (run_dir / (CORRUPTED + ".gz")).write_bytes(frozen)
    before = snapshot(run_dir)
    assert store.read_corrupted(run_dir.name) == records
    assert store.set_aside_corrupted(run_dir.name) == records
    assert store.load(run_dir.name).damaged == [f"{CORRUPTED}.gz: 1 damaged line(s) skipped"]
    assert snapshot(run_dir) == before


def test_a_gzip_stream_that_breaks_off_keeps_the_lines_before_the_break(tmp_path):
    rows = [{"i": i, "pad": "x" * 200} for i in range(400)]
    data = gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode(), mtime=0)
    path = tmp_path / "records.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    kept, damaged = read_jsonl_lines(path)
    assert 0 < len(kept) < len(rows) and kept == rows[: len(kept)]
    assert len(damaged) <= 1
    with pytest.raises(ValueError, match="damaged"):
        read_jsonl(path)


def test_a_damaged_records_file_is_set_aside_before_its_run_is_trained_again(run):
    store, run_dir, _ = run
    original = (run_dir / RECORDS).read_bytes()
    (run_dir / RECORDS).write_bytes(original[:-40])
    assert store.damage(run_dir.name)
    store.reopen(run_dir.name)
    assert not (run_dir / RECORDS).exists() and not (run_dir / "done").exists()
    assert (run_dir / (RECORDS + DAMAGED)).read_bytes() == original[:-40] + b"\n"


def test_the_next_corruptions_command_redoes_a_damaged_evaluation(finished, data_root, tmp_path):
    """End to end: the command that used to fail with a traceback sets the line aside and
    evaluates it again; the records come out as before (but for wall times), and a third
    command finds nothing to do."""
    import shutil

    out = tmp_path / "results"
    shutil.copytree(finished, out)
    args = ["--missing", "none", "--corruptions", "clouds", "--severities", "2"]
    assert invoke(args, data_root, out) == 0
    (path,) = out.glob(f"runs/*/{CORRUPTED}")
    lines = path.read_bytes().splitlines()
    assert len(lines) == 2

    def rows() -> list[dict]:
        return [{k: v for k, v in r.items() if k not in VOLATILE} for r in read_jsonl(path)]

    before = rows()
    path.write_bytes(lines[0] + b"\n" + lines[1][: len(lines[1]) // 3])
    assert invoke(args, data_root, out) == 0
    assert rows() == before
    damaged = path.with_name(CORRUPTED + DAMAGED)
    assert damaged.read_bytes() == lines[1][: len(lines[1]) // 3] + b"\n"
    settled = snapshot(out / "runs")
    assert invoke(args, data_root, out) == 0
    assert snapshot(out / "runs") == settled
