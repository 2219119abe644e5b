"""The contract every registered profiler honours, parametrised over `PROFILERS` (the
harness's and those a method registers next to its code): a new profiler is checked here at
once. The runs are shared with test_profile.py (conftest.profiled)."""

from __future__ import annotations

import importlib
import inspect

import pandas as pd
import pytest

from benchmark.cli import main
from benchmark.profile.profilers import PROFILERS

NAMES = PROFILERS.names()


@pytest.mark.parametrize("name", NAMES)
def test_profiler_module_imports_and_has_both_entry_points(name):
    module = importlib.import_module(PROFILERS.get(name).module)
    for entry, arguments in (("run_profile", 2), ("write_profile", 2)):
        function = getattr(module, entry, None)
        assert callable(function), f"{module.__name__} has no {entry}"
        inspect.signature(function).bind(*[None] * arguments)  # (settings, methods), (frame, out)


@pytest.mark.parametrize("name", NAMES)
def test_profiler_is_described_in_the_listing(name, capsys):
    description = PROFILERS.get(name).description
    assert description.strip() and "\n" not in description
    capsys.readouterr()
    assert main(["list", "--markdown"]) == 0
    escaped = description.replace("|", "\\|")  # as the Markdown table escapes it
    assert f"| `{name}` | {escaped} |" in capsys.readouterr().out.splitlines()


@pytest.mark.parametrize("name", NAMES)
def test_profiler_help_works(name, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["profile", name, "--help"])
    assert exit_.value.code == 0
    assert "usage:" in capsys.readouterr().out


@pytest.mark.parametrize("name", NAMES)
def test_profiler_runs_with_the_smallest_settings_and_writes_its_files(name, profiled):
    """A CSV with a row per measurement, a Markdown summary, a figure; the summary named."""
    run = profiled(name)
    assert run.status == 0
    written = sorted(run.out.iterdir())
    suffixes = {path.suffix for path in written}
    assert {".csv", ".md"} <= suffixes and suffixes & {".png", ".pdf"}, written
    assert all(path.stat().st_size > 0 for path in written), written
    for table in run.out.glob("*.csv"):
        assert len(pd.read_csv(table)) > 0, table
    (summary,) = run.out.glob("*.md")
    assert f"profile: {summary}" in run.printed.replace("\n", "")
