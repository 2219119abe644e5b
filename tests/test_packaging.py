"""The repo's own packages are the ones imported (DESIGN: `datasets` shadows HF datasets)."""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_datasets_package_is_ours():
    import datasets

    assert Path(datasets.__file__).resolve().is_relative_to(REPO)
    assert hasattr(datasets, "DATASETS")


def test_harness_imports_no_specific_method_or_dataset_module():
    """benchmark/ knows registries, never a concrete method or dataset module by name."""
    from datasets import DATASETS
    from methods import METHODS

    names = set(METHODS.names()) | set(DATASETS.names())
    for path in (REPO / "benchmark").glob("*.py"):
        text = path.read_text()
        for name in names:
            assert f"methods.{name}" not in text, (path, name)
            assert f"datasets.{name}" not in text, (path, name)


def test_ci_runs_the_readme_test_command():
    readme_lines = (REPO / "README.md").read_text().splitlines()
    test_command = readme_lines[2]
    assert "pytest" in test_command and "run_benchmark.py" in readme_lines[1]
    assert test_command in (REPO / ".ci" / "run").read_text().splitlines()
