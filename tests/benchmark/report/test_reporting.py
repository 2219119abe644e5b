"""Report tables, CSVs and figures from a small committed set of records (golden files).

Regenerate the goldens after an intended change of the tables (then review the diff):

    MISSBENCH_REGEN_GOLDENS=1 pytest tests/benchmark/report/test_reporting.py

The fixture's records come from a tiny sweep; `tests/data/report_fixture/shrink.py` says how.
It has one unfinished seed (cells marked †) and one method without any finished run ("–").
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from benchmark.cli import main
from benchmark.report import render, tables
from benchmark.report.generate import generate_report, load_results
from tests.benchmark.report.report_variants import FIXTURE, GOLDEN, GOLDEN_FILES

REGEN = os.environ.get("MISSBENCH_REGEN_GOLDENS") == "1"


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("results")
    shutil.copytree(FIXTURE / "runs", root / "runs")
    generate_report(root, reference="baseline", qualitative=False)
    return root / "report"


@pytest.mark.parametrize("name", GOLDEN_FILES)
def test_tables_match_goldens(report_dir, name):
    produced = (report_dir / name).read_text(encoding="utf-8")
    golden = GOLDEN / name
    if REGEN:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(produced, encoding="utf-8")
    assert golden.exists(), f"no golden {golden}; run MISSBENCH_REGEN_GOLDENS=1 pytest {__file__}"
    assert produced == golden.read_text(encoding="utf-8"), (
        f"{name} differs from its golden; if intended: MISSBENCH_REGEN_GOLDENS=1 pytest {__file__}"
    )


def test_every_output_is_written_and_indexed(report_dir):
    index = (report_dir / "report.md").read_text(encoding="utf-8")
    for name in ("runs.csv", "leaderboard.csv", *GOLDEN_FILES, "provenance.json"):
        assert (report_dir / name).exists()
        assert f"]({name})" in index
    for kind in ("heatmap", "class_iou", "robustness", "training", "imbalance"):
        for suffix in (".png", ".pdf"):
            path = report_dir / "figures" / f"synthetic_{kind}{suffix}"
            assert path.stat().st_size > 1000
            assert f"({path.relative_to(report_dir)})" in index


def test_missing_runs_are_shown_never_dropped(report_dir):
    index = (report_dir / "report.md").read_text(encoding="utf-8")
    assert index.count(": incomplete (") == 2  # the unfinished seed and the spec-only method
    markdown = (report_dir / "tables" / "synthetic.md").read_text(encoding="utf-8")
    lr_rows = [line for line in markdown.splitlines() if line.startswith("| ×1 | baseline[lr")]
    # every value cell of the never-finished method is missing (the cost table's kind and
    # budget stub columns say what it is)
    values = [line.replace("| single-model |", "|").split("|")[3:-1] for line in lr_rows]
    assert lr_rows and all(set(cells) == {" – "} for cells in values)
    assert "†" in markdown  # the ×10 variant with one of two seeds
    latex = (report_dir / "tables" / "synthetic.tex").read_text(encoding="utf-8")
    assert r"$^{\dagger}$" in latex and " -- " in latex


def _markdown_tables(text: str) -> list[list[str]]:
    tables, current = [], []
    for line in text.splitlines():
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    return tables + ([current] if current else [])


def test_markdown_tables_are_well_formed(report_dir):
    text = (report_dir / "tables" / "synthetic.md").read_text(encoding="utf-8")
    tables = _markdown_tables(text)
    assert len(tables) == 7  # mIoU, mF1, tail mIoU, 2 robustness, imbalance, cost
    for table in tables:
        width = len(re.split(r"(?<!\\)\|", table[0]))
        assert re.fullmatch(r"\|(:?-+:?\|)+", table[1])
        assert all(len(re.split(r"(?<!\\)\|", row)) == width for row in table)
    from markdown_it import MarkdownIt  # rich's own Markdown parser

    html = MarkdownIt("commonmark").enable("table").render(text)
    assert html.count("<table>") == 7 and html.count("<em>") == 7  # one italic caption each


def test_latex_tables_are_well_formed(report_dir):
    text = (report_dir / "tables" / "synthetic.tex").read_text(encoding="utf-8")
    body = "\n".join(line for line in text.splitlines() if not line.startswith("%"))
    depth = 0
    for char in re.sub(r"\\[{}]", "", body):
        depth += {"{": 1, "}": -1}.get(char, 0)
        assert depth >= 0
    assert depth == 0
    environments = re.findall(r"\\begin\{tabular\}\{([lr]+)\}(.*?)\\end\{tabular\}", body, re.S)
    assert len(environments) == 7
    for spec, content in environments:
        lines = [line for line in content.strip().splitlines() if line.strip()]
        assert lines[0] == r"\toprule" and lines[-1] == r"\bottomrule" and r"\midrule" in lines
        rows = [line for line in lines if line.endswith(r"\\")]
        for row in rows:
            cells = re.split(r"(?<!\\)&", row)
            assert len(cells) == len(spec), row
    assert body.count(r"\begin{table") == body.count(r"\end{table") == 7
    assert "paired bootstrap" in body and r"full\_val" in body


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no TeX engine installed")
def test_latex_compiles(report_dir, tmp_path):
    document = tmp_path / "doc.tex"
    document.write_text(
        "\\documentclass{article}\n\\usepackage[T1]{fontenc}\n\\usepackage{booktabs}\n"
        "\\usepackage[margin=1in]{geometry}\n\\begin{document}\n"
        f"\\input{{{report_dir / 'tables' / 'synthetic.tex'}}}\n\\end{{document}}\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", document.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-2000:]
    assert (tmp_path / "doc.pdf").exists()


def test_method_order_reference_first_then_registry_then_variants():
    results = load_results(FIXTURE)
    assert results.methods == ["baseline", "baseline[class_weighting=none]", "baseline[lr=0.003]"]
    assert set(results.expected.values()) == {2}


def test_cell_formatting_and_bold():
    table = tables.TextTable("t", "c", ["m"], ["a"])
    best = tables.Cell(0.5, 0.01, 2, 2, significant=True)
    other = tables.Cell(0.4, float("nan"), 1, 2)
    table.rows = [(["x"], [best]), (["z"], [other]), (["y"], [tables.Cell()])]
    tables._bold_best(table, ["max"])
    markdown = render.to_markdown(table)
    assert "| x | **50.0 ± 1.0**\\* |" in markdown and "| y | – |" in markdown
    assert "| z | 40.0† |" in markdown
    latex = render.to_latex(table)
    assert r"\textbf{50.0 $\pm$ 1.0}$^{*}$" in latex and "y & --" in latex
    assert r"40.0$^{\dagger}$" in latex
    assert render.latex_escape("a_b[c=1]&%") == r"a\_b[c=1]\&\%"


def test_report_command_errors_are_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no runs" in err and len(err.strip().splitlines()) == 1
    assert main(["report", str(tmp_path / "absent")]) == 2


def test_runs_sharing_a_label_but_not_a_budget_are_named_apart():
    from benchmark.report.generate import distinguish

    def spec(steps, tiles):
        return {
            "method": "baseline",
            "label": "baseline",
            "dataset": "synthetic",
            "dataset_options": [["test_tiles", tiles]],
            "steps": steps,
            "preset": "quick",
        }

    specs = [spec(200, 2), spec(400, 2), spec(200, 3)]
    distinguish(specs)
    assert specs[0]["_report_label"] == "baseline (200 steps, quick)"
    assert specs[1]["_report_label"] == "baseline (400 steps, quick)"
    assert "_report_label" not in specs[2]  # alone in its dataset variant
    assert specs[2]["_report_dataset"] == "synthetic[test_tiles=3]"


def test_flops_matched_runs_of_one_method_stay_one_row_and_apart_from_equal_steps():
    """Under --budget flops an oracle's per-scenario models get different steps by design."""
    from benchmark.report.generate import distinguish

    def spec(steps, budget="steps", ratio=1.0):
        return {
            "method": "unimodal",
            "label": "unimodal",
            "dataset": "synthetic",
            "dataset_options": [],
            "steps": steps,
            "preset": "quick",
            "budget": budget,
            "budget_ratio": ratio,
        }

    flops_only = [spec(400, "flops", 1.0), spec(719, "flops", 1.7975), spec(717, "flops", 1.7925)]
    distinguish(flops_only)
    assert not any("_report_label" in s for s in flops_only)

    mixed = [spec(400), spec(719, "flops", 1.7975)]
    distinguish(mixed)
    assert mixed[0]["_report_label"] == "unimodal (400 steps, quick)"
    assert mixed[1]["_report_label"] == "unimodal (400 steps, equal FLOPs, quick)"


@pytest.mark.slow
def test_report_on_a_fresh_run_draws_the_qualitative_grid(data_root, tmp_path):
    """End to end: a smoke run, then `report` with the model weights and the data."""
    from tests.conftest import tiny_dataset_arg

    out = tmp_path / "results"
    args = ["--preset", "smoke", "--device", "cpu", "--dataset", tiny_dataset_arg()]
    assert main([*args, "--data-root", str(data_root), "--out", str(out)]) == 0
    assert main(["report", str(out), "--data-root", str(data_root)]) == 0
    figure = out / "report" / "figures" / "synthetic_qualitative.png"
    assert figure.stat().st_size > 1000
    assert "skipped" not in (out / "report" / "report.md").read_text(encoding="utf-8")
