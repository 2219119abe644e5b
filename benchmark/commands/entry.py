"""One entry path for the command line and the Python API.

`cli.main` and `benchmark.api` start a command the same way: the environment, the plugins and
the data root are checked (`check_start`), the command's writes are confined to its output
folder, the data root and the caches (`command_scope`, the write guard of
`benchmark.system.confine`), and the request is built by the same builder (`commands.requests`
for `run` and `tune`, `report_command` here for `report`), so a bad value, a symlink inside the
output folder that leads elsewhere or an option that applies to nothing is the same one-line
`BenchmarkError` through either, before anything is written.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from benchmark.commands.requests import choice, default_data_root, path_value, switch, text_value
from benchmark.core.dataset import data_root_scope
from benchmark.core.plugins import load_plugins
from benchmark.run.selection import SELECTION_DESCRIPTION
from benchmark.system.confine import confined_to
from benchmark.system.environment import check_data_root, check_environment, run_roots
from benchmark.system.errors import BenchmarkError

if TYPE_CHECKING:
    from benchmark.report.freeze import Frozen
    from benchmark.report.generate import ReportFile

SPLITS = ("test", "val")
"""`report --split` values (`benchmark.report.frames.SPLIT_NAMES`)."""


def check_start(data_root: Path | None) -> None:
    """The environment variables and the data root, checked before a command does anything
    (the plugins first: they register the variables they read)."""
    load_plugins()
    check_environment()
    if data_root is not None:  # MISSBENCH_DATA itself: checked above
        check_data_root(data_root, "--data-root")


@contextmanager
def command_scope(roots: Iterable[Path | str | None], data_root: Path | None) -> Iterator[None]:
    """Within the block a command runs: checked at its start, its writes confined to `roots`, a
    relative folder-card path resolved against `data_root` (None: not given)."""
    check_start(data_root)
    with confined_to(roots), data_root_scope(data_root):
        yield


def output_roots(out: Path | str, data_root: Path | str | None) -> list[Path | str | None]:
    """Where a command that trains, tunes or reports into `out` may write (`run_roots`)."""
    return run_roots(out, data_root if data_root is not None else default_data_root())


def report_roots(
    results_dir: Path, out: Path | None, freeze: Path | None, data_root: Path | None
) -> list[Path | str | None]:
    """Where `report` may write: the report's folder only (a frozen folder's runs stay
    untouched), or the frozen folder it freezes into."""
    return output_roots(freeze or out or results_dir, data_root)


# ------------------------------------------------------------------------------ report
@dataclass(frozen=True)
class ReportResult:
    """What `report` wrote: its files (the index `report.md` first), and the freeze if any."""

    files: list[ReportFile]
    frozen: Frozen | None = None


def _integer(flag: str, value: object) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
        raise BenchmarkError(f"{flag} {value!r}: expected an integer")
    return value


def _number(flag: str, value: object) -> float | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
        raise BenchmarkError(f"{flag} {value!r}: expected a number")
    return value


def report_command(
    results_dir: Path | str,
    *,
    reference: str | None = None,
    selection: str | None = None,
    leaderboard_steps: int | None = None,
    flat_delta: float | None = None,
    data_root: Path | str | None = None,
    qualitative: bool = True,
    overwrite: bool = False,
    out: Path | str | None = None,
    split: str = "test",
    html: bool = False,
    freeze: Path | str | None = None,
) -> ReportResult:
    """Rebuild a results directory's report from its records, or freeze it into `freeze` first
    (`report DIR [--freeze DEST]`). Options left None take a frozen folder's own (those it was
    frozen with), else the defaults; every value is checked, types included, before anything
    is written."""
    from benchmark.report.freeze import freeze as freeze_results
    from benchmark.report.freeze import frozen_options
    from benchmark.report.generate import generate_report

    results_dir = path_value("results_dir", results_dir, required=True)
    chosen = {
        "reference": None if reference is None else text_value("--reference", reference),
        "selection": None
        if selection is None
        else choice("--selection", selection, tuple(SELECTION_DESCRIPTION)),
        "leaderboard_steps": _integer("--leaderboard-steps", leaderboard_steps),
        "flat_delta": _number("--flat-delta", flat_delta),
    }
    data_root = path_value("--data-root", data_root)
    out, freeze = path_value("--out", out), path_value("--freeze", freeze)
    common = {
        "data_root": data_root if data_root is not None else default_data_root(),
        "qualitative": switch("qualitative", qualitative),
        "overwrite": switch("--overwrite", overwrite),
        "strict_reference": reference is not None,  # named here, not a frozen folder's own
    }
    choice("--split", split, SPLITS)
    switch("--html", html)
    # a frozen folder regenerates with the options it was frozen with, unless told otherwise
    saved = frozen_options(results_dir) if freeze is None else {}
    options = {k: v if v is not None else saved.get(k) for k, v in chosen.items()}
    common |= {k: v for k, v in options.items() if v is not None}
    if freeze is None:
        return ReportResult(generate_report(results_dir, out=out, split=split, html=html, **common))
    if out is not None:
        raise BenchmarkError("report: --freeze writes the report into DEST/report; drop --out")
    if split != "test":
        raise BenchmarkError(
            f"report: --freeze writes the test report; freeze first, then `report DEST "
            f"--split {split}` writes DEST/report/{split}/"
        )
    if html:
        raise BenchmarkError(
            "report: --freeze writes the report without the web leaderboard; freeze first, "
            "then `report DEST --html --overwrite` (or `--out DIR --html`) writes it"
        )
    frozen = freeze_results(results_dir, freeze, **common)
    return ReportResult(frozen.report, frozen)
