"""The corruption registry: records refuse bad fields, a plugin package adds a corruption
through the `missbench.corruptions` entry points (and the contract suite checks it), and
`TileCorruption`, what a worker receives, is names and numbers checked against the registry."""

from __future__ import annotations

import json
import os
import pickle
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from benchmark.core.spec import DatasetSpec, Modality
from benchmark.corrupt.corruption import Corruption
from benchmark.corrupt.registry import CORRUPTIONS, register_corruption
from benchmark.corrupt.tile import TileCorruption
from benchmark.system.errors import BenchmarkError
from tests.benchmark.core.test_plugins import build_wheel, install
from tests.paths import REPO

BUILT_IN = ("clouds", "haze", "dsm_voids", "speckle", "misregistration", "noise")

PLUGIN = '''
"""A plugin's corruption: every height offset by a constant (a vertical datum mismatch)."""

import numpy as np

from benchmark.api import Corruption, register_corruption


def _datum_shift(tile, x, modality):
    return x + np.float32(tile.value) * np.float32(modality.std[0]), None


register_corruption(
    Corruption(
        name="datum_shift",
        kinds=("elevation",),
        apply=_datum_shift,
        parameter="offset (x band std)",
        values=(0.25, 0.5, 1.0, 2.0, 4.0),
        targets="every elevation modality.",
        physics="A vertical datum mismatch: every height is offset by the same constant.",
        severity_step="the offset doubles.",
    )
)
'''

PROBE = """
import json

import numpy as np

from benchmark.core.spec import DatasetSpec, Modality
from benchmark.corrupt.registry import CORRUPTIONS, corrupt

spec = DatasetSpec("s", (Modality("dsm", 1, (0.0,), (2.0,)),), ("a",), ((0, 0, 0),))
out = corrupt({"dsm": np.zeros((1, 4, 4), np.float32)}, spec, "datum_shift", 3, 0, "t")
print(json.dumps({"names": CORRUPTIONS.names(), "offset": float(out.arrays["dsm"].max())}))
"""


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("corruption_plugin")
    files = {
        "missbench_probe_plugin/__init__.py": "",
        "missbench_probe_plugin/corruptions.py": PLUGIN,
    }
    site = folder / "site"
    entry_points = "[missbench.corruptions]\nprobe = missbench_probe_plugin.corruptions\n"
    install(build_wheel(folder, files, entry_points), site)
    return site


def _python(args: list[str], site: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )


def test_a_plugin_package_registers_a_corruption_after_the_own_ones(plugin_site):
    result = _python(["-c", PROBE], plugin_site)
    assert result.returncode == 0, result.stderr[-2000:]
    found = json.loads(result.stdout)
    assert found["names"] == [*BUILT_IN, "datum_shift"]
    assert found["offset"] == 2.0  # severity 3: 1 band std of 2 m
    assert "datum_shift" not in CORRUPTIONS  # nothing leaked into this process


def test_the_contract_suite_checks_a_plugin_corruption(plugin_site):
    suite = "tests/benchmark/corrupt/test_corruption_contract.py"
    args = ["-m", "pytest", "-q", "-p", "no:randomly", "-k", "datum_shift", suite]
    result = _python(args, plugin_site)
    assert result.returncode == 0, result.stdout[-3000:]
    passed = re.search(r"(\d+) passed", result.stdout)
    assert passed and int(passed[1]) >= 8, result.stdout[-1000:]  # every contract test ran


def _record(**changes: object) -> Corruption:
    base = CORRUPTIONS.get("noise")
    return replace(base, **changes)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": "Fog"}, "'Fog'"),
        ({"name": "all"}, "'all'"),
        ({"name": "a,b"}, "'a,b'"),
        ({"kinds": ()}, "kinds ()"),
        ({"kinds": ("infrared",)}, "'infrared'"),
        ({"values": (1.0, 2.0)}, "2 values"),
        ({"physics": " "}, "physics"),
        ({"apply": None}, "callable apply"),
    ],
)
def test_a_record_refuses_bad_fields_in_one_line(changes, message):
    with pytest.raises(BenchmarkError, match="corruption") as error:
        _record(**changes)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_register_refuses_what_is_not_a_record_and_a_taken_name():
    with pytest.raises(TypeError, match="Corruption record"):
        register_corruption("noise")
    with pytest.raises(ValueError, match="'noise' is already registered"):
        register_corruption(_record())


def test_tile_corruption_is_checked_names_and_numbers():
    pair = TileCorruption("dsm_voids", 2)
    assert pair.record is CORRUPTIONS.get("dsm_voids") and pair.seed == 0
    assert pickle.loads(pickle.dumps(pair)) == pair  # what a worker process receives
    with pytest.raises(BenchmarkError, match="unknown corruption 'fog'"):
        TileCorruption("fog", 2)
    for severity in (0, 6, 2.0, True):
        with pytest.raises(BenchmarkError, match=f"bad severity {severity!r}"):
            TileCorruption("noise", severity)


def test_tile_corruption_applies_its_record():
    spec = DatasetSpec("s", (Modality("dsm", 1, (6.0,), (2.0,)),), ("a",), ((0, 0, 0),))
    raw = {"dsm": np.full((1, 32, 32), 6.0, np.float32)}
    pair = TileCorruption("noise", 4, seed=3)
    direct = CORRUPTIONS.get("noise").corrupt(raw, spec, 4, 3, "tile_9")
    assert np.array_equal(pair.apply(raw, spec, "tile_9").arrays["dsm"], direct.arrays["dsm"])
    assert pair.touches(spec) == ("dsm",)
