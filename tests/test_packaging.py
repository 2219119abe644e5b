"""Packaging: the repo's own packages are the ones imported (DESIGN: `datasets` shadows HF
datasets), they register through entry points, and the harness imports no method or dataset."""

import ast
from importlib.metadata import entry_points
from pathlib import Path

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
