"""docs/corruptions.md's table and per-corruption sections are generated from the registry:
the committed page is current, and `list --update-docs` makes a stale copy current again."""

from __future__ import annotations

from benchmark.cli import main
from benchmark.commands.listing import (
    CORRUPTION_SECTIONS,
    CORRUPTION_TABLE,
    corruption_docs,
    generated_region,
)
from benchmark.corrupt.registry import CORRUPTIONS
from tests.paths import REPO

DOC = REPO / "docs" / "corruptions.md"


def test_committed_corruption_doc_is_generated_from_the_registry():
    """Regenerate with `python run_benchmark.py list --update-docs docs/corruptions.md`."""
    text = DOC.read_text(encoding="utf-8")
    for region, inner in corruption_docs().items():
        assert generated_region(text, region) == inner.strip(), region[0]


def test_every_registered_corruption_has_a_row_and_a_section():
    table = corruption_docs()[CORRUPTION_TABLE]
    sections = corruption_docs()[CORRUPTION_SECTIONS]
    for name in CORRUPTIONS.names():
        record = CORRUPTIONS.get(name)
        row = next(line for line in table.splitlines() if line.startswith(f"| `{name}` |"))
        assert [float(v) for v in row.strip("|").split("|")[-5:]] == list(record.values)
        assert f"## `{name}`" in sections and record.physics in sections


def test_update_docs_rewrites_only_the_generated_regions(tmp_path):
    stale = tmp_path / "corruptions.md"
    text = DOC.read_text(encoding="utf-8")
    (start, end) = CORRUPTION_SECTIONS
    head, rest = text.split(start, 1)
    stale.write_text(head + start + "\nout of date\n" + end + rest.split(end, 1)[1])
    assert main(["list", "--update-docs", str(stale)]) == 0
    assert stale.read_text(encoding="utf-8") == text
