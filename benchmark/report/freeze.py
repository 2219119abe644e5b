"""Frozen folders: a study's records, without weights, committed beside the report they make.

    python run_benchmark.py report <results-dir> --freeze results/<date>_<commit>/<study>

copies what `report` reads of every run under `<results-dir>/runs/` into the frozen folder
and writes the report there, from the frozen copy:

    <study>/frozen.json                     where, when and by which commit it was frozen, and
                                            the SHA-256 of every run file (edits are named)
    <study>/runs/<run_id>/spec.json         as in any results directory (`RunStore.freeze_run`)
                          train_log.jsonl
                          records.jsonl.gz  every evaluation, per-tile confusions included
                          corrupted.jsonl.gz
                          failed.json, done
                          *.damaged         lines a run set aside as damaged
    <study>/report/                         `report`'s outputs (report.md indexes them)
    <study>/protocol.json, *.db, trials.csv, search_cost.csv/.md, best.json
                                            a tune folder's (`tune --out X`, frozen from
                                            X/tune): its studies and tables, checksummed too,
                                            so `run --hparams-from <study>` reads its best.json
    <study>/README.md                       by hand: the commands and what the study shows

No weights and no checkpoints: the qualitative grids, the one output that needs them, are
drawn from the source's weights when freezing and are not redrawn later (the report says so).
Everything else regenerates byte for byte: `report <study> --out DIR` writes elsewhere, and
`report <study>` refuses to replace the committed report unless given `--overwrite`.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmark.core.records import SELECTION_FULL_VAL
from benchmark.report.generate import (
    REPORT_DIR,
    ReportFile,
    check_reference,
    generate_report,
    load_results,
)
from benchmark.run.store import FROZEN, RUNS, RunStore, file_sha256, read_frozen, tune_files
from benchmark.system.confine import write_target
from benchmark.system.errors import BenchmarkError
from benchmark.system.io import atomic_write_bytes, atomic_write_json
from benchmark.system.provenance import git_commit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Frozen:
    """What a freeze wrote."""

    dest: Path
    runs: int
    runs_done: int
    run_bytes: int
    """Size of the frozen runs (gzipped records included)."""
    source_bytes: int
    """Size of the same files in the source before gzip (weights and checkpoints excluded)."""
    report: list[ReportFile]


REPORT_OPTIONS = ("reference", "selection", "leaderboard_steps", "flat_delta")
"""`generate_report` options a frozen folder keeps, so that a plain `report <folder>` regenerates
its tables as they were frozen."""


def freeze(
    source: Path,
    dest: Path,
    overwrite: bool = False,
    data_root: Path | None = None,
    qualitative: bool = True,
    strict_reference: bool = False,
    **options: Any,
) -> Frozen:
    """Copy every run of `source` into the frozen folder `dest` (no weights) and write its
    report there from the copy, with `options` (`REPORT_OPTIONS`, as `generate_report` takes
    them); `overwrite` replaces an earlier freeze's runs and report."""
    source, dest = Path(source), Path(dest)
    unknown = sorted(set(options) - set(REPORT_OPTIONS))
    if unknown:
        raise TypeError(f"freeze() got unexpected options {unknown}")
    reference = options.setdefault("reference", "baseline")
    selection = options.setdefault("selection", SELECTION_FULL_VAL)
    # no runs, all unreadable, a --reference that names no method: one line, nothing written
    results = load_results(source, reference, selection)
    if strict_reference:  # otherwise the report written below warns, once
        check_reference(reference, results.methods, source, strict=True)
    check_dest(source, dest, overwrite)
    manifest = {
        "frozen_from": str(source),
        "frozen_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "report_options": {k: v for k, v in options.items() if v is not None},
    }
    atomic_write_json(dest / FROZEN, manifest)  # first: an interrupted freeze can be redone
    store, frozen = RunStore(source), RunStore(dest)
    names = sorted(p.name for p in (source / RUNS).iterdir() if p.is_dir())
    written, source_bytes = [], 0
    for name in names:
        files = store.freeze_run(name, frozen)
        written += files
        source_bytes += sum(
            store.jsonl_path(name, f.name.removesuffix(".gz")).stat().st_size for f in files
        )
    for path in tune_files(source):  # a tune folder: its studies and tables travel too
        atomic_write_bytes(dest / path.name, path.read_bytes())
        written.append(dest / path.name)
    runs = frozen.scan()
    log.info("froze %d run(s) into %s (no weights); writing its report", len(runs), dest)
    manifest["runs"] = len(runs)
    manifest["runs_done"] = sum(r.state == "done" for r in runs)
    manifest["sha256"] = {str(p.relative_to(dest)): file_sha256(p) for p in written}
    atomic_write_json(dest / FROZEN, manifest)
    report = generate_report(
        dest, data_root=data_root, qualitative=qualitative, overwrite=True, weights=source,
        **options,
    )  # fmt: skip
    run_bytes = sum(p.stat().st_size for p in written)
    return Frozen(dest, len(runs), manifest["runs_done"], run_bytes, source_bytes, report)


def check_dest(source: Path, dest: Path, overwrite: bool) -> None:
    """Refuse, before writing, a destination that is the source or inside it, or that holds
    anything but an earlier freeze (which `overwrite` clears: its runs and report, and a tune
    folder's studies and tables, only)."""
    resolved, origin = dest.resolve(), source.resolve()
    if resolved == origin or origin in resolved.parents:
        raise BenchmarkError(f"--freeze {dest}: inside the results directory {source}")
    if dest.exists() and not dest.is_dir():
        raise BenchmarkError(f"--freeze {dest}: exists and is not a directory")
    if not dest.is_dir() or not any(dest.iterdir()):
        return
    if not (dest / FROZEN).exists():
        raise BenchmarkError(
            f"--freeze {dest}: a non-empty directory that is not a frozen folder (no {FROZEN}); "
            "choose a new or empty directory"
        )
    if not overwrite:
        raise BenchmarkError(
            f"--freeze {dest}: already a frozen folder; pass --overwrite to freeze again "
            "(its runs/ and report/, and a tune folder's studies and tables, are replaced, "
            "nothing else)"
        )
    for folder in (dest / RUNS, dest / REPORT_DIR):
        if folder.is_dir():
            shutil.rmtree(write_target(folder))
    for path in tune_files(dest):
        write_target(path).unlink()


def frozen_options(root: Path) -> dict[str, Any]:
    """The report options a frozen folder was frozen with ({} for any other folder)."""
    saved = read_frozen(Path(root)).get("report_options")
    return (
        {k: v for k, v in saved.items() if k in REPORT_OPTIONS} if isinstance(saved, dict) else {}
    )
