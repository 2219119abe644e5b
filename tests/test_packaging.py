"""Packaging: the repo's own packages are the ones imported (DESIGN: `datasets` shadows HF
datasets), they register through entry points, and the harness imports no method or dataset."""

import ast
import os
import subprocess
import sys
import tomllib
from importlib.metadata import entry_points
from pathlib import Path

import yaml

from benchmark.core.plugins import DATASET_GROUP, DATASETS, METHOD_GROUP, METHODS

REPO = Path(__file__).resolve().parent.parent


def test_datasets_package_is_ours():
    import datasets

    assert Path(datasets.__file__).resolve().is_relative_to(REPO)
    assert DATASETS.get("synthetic").__module__ == "datasets.synthetic"


def test_own_methods_and_datasets_come_through_entry_points():
    own = {
        group: [
            p.value for p in entry_points(group=group) if p.dist.metadata["Name"] == "missbench"
        ]
        for group in (METHOD_GROUP, DATASET_GROUP)
    }
    assert own == {METHOD_GROUP: ["methods"], DATASET_GROUP: ["datasets"]}
    assert METHODS.names()[0] == "baseline" and DATASETS.names()[0] == "synthetic"


def test_harness_imports_no_method_or_dataset_module():
    """benchmark/ reaches methods and datasets only through the registries."""
    for path in (REPO / "benchmark").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top not in ("methods", "datasets"), (path, name)


def test_ci_runs_the_readme_test_command():
    readme_lines = (REPO / "README.md").read_text().splitlines()
    test_command = readme_lines[2]
    assert "pytest" in test_command and "run_benchmark.py" in readme_lines[1]
    assert test_command in (REPO / ".ci" / "run").read_text().splitlines()


def test_own_corruptions_come_through_entry_points():
    from benchmark.corrupt.registry import CORRUPTION_GROUP, CORRUPTIONS

    own = [
        p.value
        for p in entry_points(group=CORRUPTION_GROUP)
        if p.dist.metadata["Name"] == "missbench"
    ]
    assert own == ["benchmark.corrupt.catalogue"]
    assert CORRUPTIONS.names()[0] == "clouds"


# -- another `datasets` (Hugging Face's, or a folder of that name) first on the import path ----
STAND_IN = '"""A stand-in for Hugging Face\'s `datasets`: same name, not MissBench\'s."""\n'


def shadowing_site(tmp_path: Path) -> Path:
    """A folder holding a package named `datasets`, as site-packages does with HF installed."""
    (tmp_path / "site" / "datasets").mkdir(parents=True)
    (tmp_path / "site" / "datasets" / "__init__.py").write_text(STAND_IN)
    return tmp_path / "site"


def python(args: list[str], cwd: Path, pythonpath: Path | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["OMP_NUM_THREADS"] = "1"
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    command = [sys.executable, *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def assert_says_what_to_do(line: str, site: Path) -> None:
    assert str(site / "datasets") in line and str(REPO / "datasets") in line, line
    assert "Hugging Face" in line and "virtual environment" in line, line
    assert "pip uninstall datasets" in line and "run_benchmark.py" in line, line


def test_the_cli_stops_in_one_line_when_another_datasets_comes_first(tmp_path):
    """The `missbench` console script (or `from benchmark.cli import main`) outside the
    checkout: the editable install's finder comes after every path entry, so a `datasets` in
    site-packages or on PYTHONPATH wins. Exit 2 with one line, before any command runs."""
    site = shadowing_site(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    console_script = "import sys; from benchmark.cli import main; sys.exit(main())"
    result = python(["-c", console_script, "list"], elsewhere, site)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert_says_what_to_do(lines[0], site)
    assert result.stdout == ""  # nothing listed: it stopped before loading any plugin


def test_run_benchmark_py_imports_its_own_datasets_first(tmp_path):
    """`python run_benchmark.py`: the script's folder comes before PYTHONPATH and
    site-packages, so the checkout's `datasets` wins and the check lets it run."""
    site = shadowing_site(tmp_path)
    result = python([str(REPO / "run_benchmark.py"), "list", "--markdown"], tmp_path, site)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "`synthetic`" in result.stdout


def test_importing_the_api_beside_a_datasets_folder_raises_a_one_line_import_error(tmp_path):
    """A script in a project that has its own `datasets/` folder (first on the path: the
    script's folder) imports `benchmark.api`: an ImportError that is a BenchmarkError."""
    project = shadowing_site(tmp_path)  # the script runs in the folder holding `datasets/`
    script = (
        "from benchmark.system.errors import BenchmarkError\n"
        "try:\n"
        "    import benchmark.api\n"
        "except ImportError as error:\n"
        "    print(isinstance(error, BenchmarkError), len(str(error).splitlines()))\n"
        "    print(error)\n"
    )
    (project / "use_api.py").write_text(script)
    result = python(["use_api.py"], project, None)
    assert result.returncode == 0, result.stderr[-2000:]
    kinds, message = result.stdout.strip().splitlines()
    assert kinds == "True 1"
    assert_says_what_to_do(message, project)


def test_shadowing_is_named_only_where_the_package_is_not_ours(tmp_path):
    from benchmark.system.packages import OWN_PACKAGES, shadowing_problem

    assert [shadowing_problem(name) for name in OWN_PACKAGES] == ["", ""]
    elsewhere = shadowing_problem("methods", root=tmp_path)  # as if ours lived in tmp_path
    assert f"not MissBench's {tmp_path / 'methods'}" in elsewhere and "Hugging" not in elsewhere


# -- licence and citation ------------------------------------------------------------------------
def test_license_file_is_the_mit_licence_pyproject_declares():
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert pyproject["project"]["license"] == {"text": "MIT"}
    text = (REPO / "LICENSE").read_text()
    assert text.splitlines()[0] == "MIT License"
    assert "Copyright (c) 2026 the MissBench authors" in text
    assert 'THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND' in text


def test_citation_file_has_the_required_keys_and_agrees_with_pyproject():
    """CITATION.cff 1.2.0 (what GitHub's "Cite this repository" reads): its required keys,
    and the version, licence and repository as pyproject.toml states them."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert {"cff-version", "message", "title", "authors"} <= set(cff)
    assert cff["cff-version"] == "1.2.0" and cff["title"] == "MissBench"
    assert isinstance(cff["message"], str) and cff["message"].strip()
    assert cff["authors"] == [{"name": "the MissBench authors"}]  # an entity, not a person
    assert cff["version"] == project["version"]
    assert cff["license"] == project["license"]["text"]
    assert str(cff["date-released"]) == "2026-12-07"
    urls = {key.lower(): url for key, url in project.get("urls", {}).items()}
    assert cff.get("repository-code") == urls.get("repository")  # none until pyproject has one
