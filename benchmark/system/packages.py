"""MissBench's top-level packages `methods` and `datasets` share their names with other code.

Hugging Face's `datasets` is installed in most ML environments, and a project folder named
`datasets/` or `methods/` in the working directory is common. Python imports whichever comes
first on the import path: an editable install's finder comes after every `sys.path` entry, so
`missbench`, `import benchmark.api` or `python -m` from another folder get Hugging Face's
package from site-packages, while `python run_benchmark.py` gets ours (the script's folder comes
first). Without a check, the other package is imported in ours' place and MissBench fails later
with a misleading error (no dataset registered, a missing submodule). `check_own_packages` finds
out before anything is imported and says so in one line.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from benchmark.system.errors import BenchmarkError

OWN_PACKAGES = ("methods", "datasets")
"""MissBench's top-level packages other than `benchmark` (pyproject's packages.find)."""

INSTALL_ROOT = Path(__file__).resolve().parents[2]
"""The folder holding `benchmark/` and, installed together with it, `methods/` and `datasets/`
(the checkout for an editable install, site-packages for a wheel)."""


class ShadowedPackageError(BenchmarkError, ImportError):
    """Another package or folder is imported under the name of one of MissBench's packages.

    A `BenchmarkError` (the CLI prints one line and exits 2) and an `ImportError` (what
    `import benchmark.api` raises)."""


def imported_location(name: str) -> Path | None:
    """The folder (or file) `import name` loads, without importing it; None if there is none."""
    module = sys.modules.get(name)
    if module is not None:
        where = getattr(module, "__file__", None)
        if where:
            path = Path(where)
            return path.parent if path.name == "__init__.py" else path
        locations = list(getattr(module, "__path__", []))  # a namespace package
        return Path(locations[0]) if locations else None
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.origin and spec.origin not in ("namespace", "built-in", "frozen"):
        path = Path(spec.origin)
        return path.parent if path.name == "__init__.py" else path
    locations = list(spec.submodule_search_locations or [])
    return Path(locations[0]) if locations else None


def shadowing_problem(name: str, root: Path = INSTALL_ROOT) -> str:
    """Return why `import name` would not load MissBench's package `name`, or ''."""
    found = imported_location(name)
    expected = root / name
    if found is None or found.resolve() == expected.resolve():
        return ""  # nothing of that name: the import itself reports a missing installation
    other = "Hugging Face's `datasets` or another" if name == "datasets" else "another"
    script = root / "run_benchmark.py"
    instead = f", or as `python {script}` (its folder comes first)" if script.exists() else ""
    return (
        f"`import {name}` loads {found}, not MissBench's {expected} ({other} package or folder "
        f"of that name comes first on the import path): run MissBench from its own virtual "
        f"environment, without that package (`pip uninstall {name}` there) and with no "
        f"{name}/ folder in the working directory or on PYTHONPATH{instead}"
    )


def check_own_packages(names: tuple[str, ...] = OWN_PACKAGES) -> None:
    """Refuse, in one line, to go on when another package takes the name of one of ours."""
    for name in names:
        problem = shadowing_problem(name)
        if problem:
            raise ShadowedPackageError(problem)
