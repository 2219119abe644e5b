"""Every number in README.md, in the docs pages and in every frozen folder's README agrees with
the committed files it names (`docs/quoting.md`, `benchmark.report.quotes`), and the check
itself fails when one number is edited."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from benchmark.report import quotes
from tests.paths import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
"""The README and the docs pages: the README's results sections moved to the docs (issue 32)."""
READMES = [*DOCS, *sorted((REPO / "results").glob("*/README.md"))]
FOLDER = REPO / "results" / "2026-11-30_3be0ce0"


@pytest.mark.parametrize("readme", READMES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_number_agrees_with_its_source(readme):
    problems = quotes.check(readme)
    assert not problems, "\n".join(map(str, problems))


def test_readmes_quote_numbers():
    """The check is not vacuous: the docs' and the READMEs' results carry markers."""
    assert sum(quotes.counts(page)["checked"] for page in DOCS) >= 50
    assert quotes.counts(REPO / "docs" / "stars.md")["checked"] >= 50
    assert quotes.counts(FOLDER / "README.md")["checked"] >= 200


@pytest.fixture
def folder_copy(tmp_path) -> Path:
    """The 2026-11-30 frozen folder (README and CSVs) under a `results/` folder of its own."""
    target = tmp_path / "results" / FOLDER.name
    shutil.copytree(FOLDER, target, ignore=shutil.ignore_patterns("*.png", "*.pdf"))
    # the README cites a neighbouring frozen folder too
    old = "2026-11-29_3a5ddcb/zoo_steps"
    (tmp_path / "results" / old).mkdir(parents=True)
    shutil.copy(REPO / "results" / old / "leaderboard_wide.csv", tmp_path / "results" / old)
    return target


def edit(readme: Path, old: str, new: str) -> None:
    text = readme.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    readme.write_text(text.replace(old, new), encoding="utf-8")


def test_the_copy_passes(folder_copy):
    assert quotes.check(folder_copy / "README.md") == []


@pytest.mark.parametrize(
    ("old", "new", "line_has"),
    [
        # the errors the frozen README had before issue 30
        ("| shaspec | 27.5 |", "| shaspec | 26.5 |", "26.5"),
        ("| **49.2** | 39.2 |", "| **49.2** | 37.3 |", "37.3"),
        ("*22.5–76.3*<!--= min(", "*76.3–76.3*<!--= min(", "76.3"),
        # any one number, in a table template, in prose, a std, a p-value
        ("| stars | **72.3 ± 0.5** |", "| stars | **72.4 ± 0.5** |", "72.4"),
        ("| stars | **72.3 ± 0.5** |", "| stars | **72.3 ± 0.6** |", "0.6"),
        ("(57.4<!--= Z&method=stars", "(57.5<!--= Z&method=stars", "57.5"),
        ("p = 0.13<!--= ZB", "p = 0.31<!--= ZB", "0.31"),
    ],
)
def test_one_edited_number_fails(folder_copy, old, new, line_has):
    readme = folder_copy / "README.md"
    edit(readme, old, new)
    problems = quotes.check(readme)
    assert len(problems) == 1 and problems[0].number.endswith(line_has), problems


def test_an_unmarked_number_and_a_broken_marker_fail(folder_copy):
    readme = folder_copy / "README.md"
    text = readme.read_text(encoding="utf-8")
    readme.write_text(text + "\nA new claim: STARS gains 4.2 points.\n", encoding="utf-8")
    assert [p.message for p in quotes.check(readme)] == ["unmarked number in a results section"]
    readme.write_text(text + "\nSTARS 43.1<!--= W&method=stars&scenario=dsm#nope% -->\n")
    assert "no column 'nope'" in quotes.check(readme)[0].message
    readme.write_text(text + "\nSTARS 43.1<!--= W&method=stars#miou_mean% -->\n")
    assert "selects 3 rows" in quotes.check(readme)[0].message
    # a source file edited is caught as well
    csv = folder_copy / "study" / "leaderboard_wide.csv"
    readme.write_text(text, encoding="utf-8")
    rows = csv.read_text(encoding="utf-8").replace("0.722674", "0.712674")
    csv.write_text(rows, encoding="utf-8")
    quotes._read_table.cache_clear()
    assert any("72.3" in p.number for p in quotes.check(readme))


def test_convention_details(tmp_path):
    """Markers, bounds, exemptions, aggregates and results sections on a small document."""
    (tmp_path / "t.csv").write_text("method,scenario,v,p\na,x,0.5012,0.004\nb,x,0.25,0.03\n")
    doc = tmp_path / "README.md"
    doc.write_text(
        "# Top\n\nSetup uses 0.3 of the data.\n\n## Results\n<!--=results -->\n"
        "<!--=def T = t.csv?scenario=x -->\n"
        "A scores 50.1<!--= T&method=a#v% -->, B 25.0 / 0.03<!--= T&method=b#v% ; T&method=b#p -->"
        ", gap 25.1<!--= [T&method=a#v%] - [T&method=b#v%] -->, best 50.1<!--= max([T#v%]) -->,"
        " p < 0.01<!--= < [T&method=a#p] -->, Holm 0.008<!--= holm([T#p], [T&method=a#p]) -->.\n"
        "Not checked: 7.5 km<!--=skip a distance from the paper -->.\n\n"
        "<!--=unchecked wall times -->Ran 3.5 min and 2.5 min.\n\n"
        "<!--=table\n2: T&method={row}&scenario=x#v%\n-->\n"
        "| method | v |\n|---|--:|\n| a (ours) | 50.1 |\n| b | 25.0 |\n\n"
        "Shown as code: `0.77<!--= T#v -->`.\n\n## Appendix\n\nA ratio of 1.5 here.\n",
        encoding="utf-8",
    )
    assert quotes.check(doc, results_everywhere=False) == []
    counts = quotes.counts(doc, results_everywhere=False)
    assert counts["checked"] == 9 and counts["exempt"] == 3
    far = tmp_path / "far.md"  # a marker reaches only the number right before it
    far.write_text("# R\n\nA 50.1 and then words 7<!--= t.csv?method=a#v% -->\n", encoding="utf-8")
    assert "not next to a number" not in str(quotes.check(far, results_everywhere=True))
    far.write_text("# R\n\nA 50.1 and then words<!--= t.csv?method=a#v% -->\n", encoding="utf-8")
    assert "not next to a number" in str(quotes.check(far, results_everywhere=True))
    everywhere = quotes.check(doc, results_everywhere=True)
    assert sorted(p.number for p in everywhere) == ["0.3", "1.5"]  # code is no claim


def test_count_of_no_rows_is_zero_and_other_aggregates_refuse_it(tmp_path):
    """A claim of "none of the tests" is checked: `count` of no rows is 0; `max` refuses."""
    (tmp_path / "t.csv").write_text("method,verdict,v\na,higher,0.5\nb,n.s.,0.2\n")
    doc = tmp_path / "README.md"
    doc.write_text(
        "# R\n\nLower in 0<!--= count([t.csv?verdict=lower#v]) --> tests, higher in "
        "1<!--= count([t.csv?verdict=higher#v]) -->.\n",
        encoding="utf-8",
    )
    assert quotes.check(doc, results_everywhere=True) == []
    doc.write_text("# R\n\nLower in 1<!--= count([t.csv?verdict=lower#v]) -->.\n")
    assert quotes.check(doc, results_everywhere=True)  # 1 claimed, 0 found
    doc.write_text("# R\n\nBest 0.5<!--= max([t.csv?verdict=lower#v]) -->.\n")
    assert "of no rows" in str(quotes.check(doc, results_everywhere=True))
