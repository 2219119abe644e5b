"""Methods and datasets from outside the repository: an installed plugin package (entry points)
and a module registered by hand, both known inside `--workers` processes."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import textwrap
import zipfile
from importlib.metadata import EntryPoint
from pathlib import Path

import pandas as pd
import pytest

from benchmark.core import plugins
from benchmark.core.plugins import DATASETS, METHODS
from benchmark.system.errors import BenchmarkError
from tests.conftest import tiny_dataset_arg
from tests.paths import REPO

PLUGIN_METHODS = '''
"""A plugin's method: one 1x1 convolution per modality, summed; absent modalities add nothing."""

from collections.abc import Mapping

import torch
from torch import nn

from benchmark.api import HParam, Method, labels_of, modality_inputs, register_method


@register_method("probe_plugin")
class ProbePlugin(Method):
    """Per-modality 1x1 convolutions, summed (a plugin test's method)."""

    SUMMARY = "Per-modality 1x1 convolutions, summed."
    MISSING_MODALITY = "leaves its term out of the sum"
    DEVIATIONS = ("A test probe, not a method.",)
    HPARAMS = {"width": HParam(4, "unused width", low=1, high=64)}

    def __init__(self, spec, hparams, context):
        super().__init__(spec, hparams, context)
        self.convs = nn.ModuleDict(
            {m: nn.Conv2d(c, spec.num_classes, 1) for m, c in self.channels.items()}
        )
        self.configure_optimizer(self.parameters())

    def predict(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return sum(self.convs[m](x) for m, x in inputs.items() if m in self.convs)

    def update(self, batch, step):
        loss = self.segmentation_loss(self.predict(modality_inputs(batch)), labels_of(batch))
        self.optimisation_step(loss)
        return {"loss": float(loss.detach())}
'''

PLUGIN_DATASETS = '''
"""A plugin's dataset: the embedded synthetic scenes under another name."""

from benchmark.api import register_dataset
from datasets.synthetic import SyntheticDataset


@register_dataset("probe_tiles")
class ProbeTiles(SyntheticDataset):
    """The synthetic optical + DSM scenes, registered by a plugin package."""
'''

ENTRY_POINTS = """\
[missbench.methods]
probe = missbench_probe_plugin.methods

[missbench.datasets]
probe = missbench_probe_plugin.datasets
"""


def build_wheel(folder: Path, files: dict[str, str], entry_points: str) -> Path:
    """A pure-Python wheel of `files` (path -> text) declaring `entry_points`."""
    dist = "missbench_probe_plugin-0.1.dist-info"
    contents = {
        **files,
        f"{dist}/METADATA": "Metadata-Version: 2.1\nName: missbench-probe-plugin\nVersion: 0.1\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
        f"{dist}/entry_points.txt": entry_points,
    }
    record = []
    for name, text in contents.items():
        digest = hashlib.sha256(text.encode()).digest()
        encoded = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        record.append(f"{name},sha256={encoded},{len(text.encode())}")
    record.append(f"{dist}/RECORD,,")
    wheel = folder / "missbench_probe_plugin-0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in contents.items():
            archive.writestr(name, text)
        archive.writestr(f"{dist}/RECORD", "\n".join(record) + "\n")
    return wheel


def install(wheel: Path, target: Path) -> None:
    """`pip install --target`: a real, offline install into a temporary location."""
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"]
    result = subprocess.run(
        [*command, "--target", str(target), str(wheel)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]


def run_cli(args: list[str], pythonpath: Path, cwd: Path = REPO) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(pythonpath), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, str(REPO / "run_benchmark.py"), *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("plugin")
    files = {
        "missbench_probe_plugin/__init__.py": "",
        "missbench_probe_plugin/methods.py": PLUGIN_METHODS,
        "missbench_probe_plugin/datasets.py": PLUGIN_DATASETS,
    }
    site = folder / "site"
    install(build_wheel(folder, files, ENTRY_POINTS), site)
    return site


def test_an_installed_plugin_runs_its_method_and_dataset_in_worker_processes(
    plugin_site, data_root, tmp_path
):
    out = tmp_path / "results"
    tiny = tiny_dataset_arg("probe_tiles")
    args = ["--methods", "probe_plugin,baseline", "--dataset", tiny, "--workers", "2"]
    args += ["--preset", "smoke", "--device", "cpu", "--threads", "1", "--missing", "all"]
    result = run_cli([*args, "--data-root", str(data_root), "--out", str(out)], plugin_site)
    assert result.returncode == 0, result.stderr[-3000:]
    board = pd.read_csv(out / "leaderboard.csv")
    assert set(board["method"]) == {"probe_plugin", "baseline"}
    assert set(board["dataset"]) == {"probe_tiles"}
    assert (board["status"] == "ok").all() and len(board) == 6

    listing = run_cli(["list", "--markdown"], plugin_site)
    assert "`probe_plugin`" in listing.stdout and "`probe_tiles`" in listing.stdout
    # Without the plugin on the path, the names are unknown: nothing leaked into the repo.
    assert "probe_plugin" not in METHODS and "probe_tiles" not in DATASETS


def test_a_plugin_that_fails_to_import_is_one_line_and_exit_2(tmp_path):
    files = {
        "missbench_probe_plugin/__init__.py": "",
        "missbench_probe_plugin/methods.py": "raise RuntimeError('broken plugin')\n",
        "missbench_probe_plugin/datasets.py": "",
    }
    site = tmp_path / "site"
    install(build_wheel(tmp_path, files, ENTRY_POINTS), site)
    result = run_cli(["list"], site)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "missbench-probe-plugin" in lines[0] and "broken plugin" in lines[0]


def test_a_method_registered_by_an_importable_module_is_known_in_workers(data_root, tmp_path):
    """No entry point: a script imports the user's module and calls the CLI with workers."""
    (tmp_path / "user_methods.py").write_text(PLUGIN_METHODS.replace("probe_plugin", "by_hand"))
    script = tmp_path / "sweep.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys

            from benchmark.cli import main

            if __name__ == "__main__":
                # Imported under the main guard: a spawned worker does not re-run this block,
                # so it knows `by_hand` only if the launcher tells it which module to import.
                import user_methods  # noqa: F401  (registers `by_hand`)

                sys.exit(main({
                [
                    "--methods",
                    "by_hand",
                    "--dataset",
                    tiny_dataset_arg(),
                    "--workers",
                    "2",
                    "--seeds",
                    "0,1",
                    "--preset",
                    "smoke",
                    "--device",
                    "cpu",
                    "--threads",
                    "1",
                    "--data-root",
                    str(data_root),
                    "--out",
                    str(tmp_path / "out"),
                ]
            }))
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    board = pd.read_csv(tmp_path / "out" / "leaderboard.csv")
    assert set(board["method"]) == {"by_hand"} and (board["status"] == "ok").all()


def test_register_method_refuses_what_is_not_a_method():
    with pytest.raises(TypeError, match="Method subclasses"):
        plugins.register_method("not_a_method")(object)
    assert "not_a_method" not in METHODS


def test_importing_an_absent_module_in_a_worker_is_a_one_line_error():
    with pytest.raises(BenchmarkError, match="cannot be imported in a worker"):
        plugins.import_modules(["no_such_module_for_missbench"])


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ("import sys\nsys.exit(0)\n", "SystemExit: 0 (the module exits at import"),
        ("import sys\nsys.exit()\n", "SystemExit: (the module exits at import"),
        ("raise SystemExit('quitting early')\n", "SystemExit: quitting early"),
        ("raise KeyboardInterrupt\n", "KeyboardInterrupt: (interrupted while importing it)"),
    ],
)
def test_a_plugin_that_exits_at_import_is_named_like_any_failure(
    body, named, tmp_path, monkeypatch
):
    """`SystemExit` and `KeyboardInterrupt` are not `Exception`s; at a plugin's import they are
    one line naming the plugin, in the parent and in a worker alike."""
    module = f"exiting_plugin_{abs(hash(body))}"
    (tmp_path / f"{module}.py").write_text(body)
    monkeypatch.syspath_prepend(str(tmp_path))
    point = EntryPoint("exiting", module, plugins.METHOD_GROUP)
    with pytest.raises(BenchmarkError) as error:
        plugins._import(point, plugins.METHOD_GROUP)
    text = str(error.value)
    assert "plugin 'exiting'" in text and named in text and "\n" not in text
    with pytest.raises(BenchmarkError, match="cannot be imported in a worker") as error:
        plugins.import_modules([module])
    assert named in str(error.value)


def test_a_plugin_calling_sys_exit_0_makes_every_command_exit_2_not_0(tmp_path):
    files = {
        "missbench_probe_plugin/__init__.py": "",
        "missbench_probe_plugin/methods.py": "import sys\nsys.exit(0)\n",
        "missbench_probe_plugin/datasets.py": "",
    }
    site = tmp_path / "site"
    install(build_wheel(tmp_path, files, ENTRY_POINTS), site)
    result = run_cli(["list"], site)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "missbench-probe-plugin" in lines[0] and "SystemExit: 0" in lines[0]
