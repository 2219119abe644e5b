"""The public surface: every exported name resolves, and `profiling` costs nothing until used."""

from __future__ import annotations

import subprocess
import sys

from tests.paths import REPO


def test_every_exported_name_resolves_and_profiling_loads_on_first_use():
    code = "\n".join(
        [
            "import sys",
            "import benchmark.api as api",
            "assert 'benchmark.profile.kit' not in sys.modules, 'profiling imported eagerly'",
            "missing = [n for n in api.__all__ if getattr(api, n, None) is None]",
            "assert not missing, missing",
            "from benchmark.api import profiling",
            "assert callable(profiling.measure) and profiling.ProfileReport",
            "try:",
            "    api.no_such_name",
            "except AttributeError as error:",
            "    assert 'no_such_name' in str(error)",
            "else:",
            "    raise AssertionError('an unknown name resolved')",
        ]
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
