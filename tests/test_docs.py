"""The docs site's pages: no link leads nowhere, and the pages made from the code say what the
code declares (methods' cards, the folder card's keys, the README's commands).

`.ci/run` builds the site with `mkdocs build --strict` (a broken link or reference fails it);
these tests check the same links without MkDocs, and the generator itself
(`docs/hooks/missbench_docs.py`)."""

from __future__ import annotations

import importlib.util
import re
from functools import cache
from pathlib import Path
from types import ModuleType

import pytest

from tests.paths import REPO

DOCS = REPO / "docs"
HOOK = DOCS / "hooks" / "missbench_docs.py"
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
EXTERNAL = ("http://", "https://", "mailto:")


@cache
def generator() -> ModuleType:
    """The MkDocs hook, loaded from its file as MkDocs loads it (it is no package)."""
    spec = importlib.util.spec_from_file_location("missbench_docs", HOOK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def links(markdown: str) -> list[str]:
    """The link targets of a Markdown text, outside code blocks and code spans."""
    text = re.sub(r"^```.*?^```", "", markdown, flags=re.M | re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    return [m.group(1) for m in LINK.finditer(text)]


def local(target: str) -> str | None:
    """A link's file part, or None for an external link or an anchor on the same page."""
    if target.startswith(EXTERNAL) or target.startswith("#"):
        return None
    return target.split("#", 1)[0]


def doc_pages() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md") if "hooks" not in p.relative_to(DOCS).parts)


def test_readme_links_resolve_to_files_in_the_repository():
    broken = []
    for target in links((REPO / "README.md").read_text(encoding="utf-8")):
        path = local(target)
        if path is None:
            continue
        resolved = (REPO / path).resolve()
        if not resolved.is_file() or REPO not in resolved.parents:
            broken.append(target)
    assert not broken, f"README.md links what the repository does not hold: {broken}"


def test_docs_links_resolve_to_pages_or_files():
    """Every relative link of a docs page (committed or generated) reaches a file of the
    repository under docs/ or a page the generator makes."""
    generated = generator().generated_pages()
    pages = {str(p.relative_to(DOCS)): p.read_text(encoding="utf-8") for p in doc_pages()}
    pages |= generated
    broken = []
    for name, text in pages.items():
        for target in links(text):
            path = local(target)
            if path is None:
                continue
            resolved = (DOCS / Path(name).parent / path).resolve()
            inside = resolved.relative_to(DOCS) if DOCS in resolved.parents else None
            if inside is None or not (resolved.is_file() or str(inside) in generated):
                broken.append(f"{name}: {target}")
    assert not broken, "\n".join(broken)


def test_readme_is_one_screen_and_keeps_its_two_commands():
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 60, f"README.md has {len(lines)} lines; the rest belongs in docs/"
    started = (DOCS / "getting-started.md").read_text(encoding="utf-8").splitlines()
    assert lines[1] in started and lines[2] in started  # the docs show the same two commands


def test_every_method_page_shows_its_declarations_and_hyperparameters():
    from benchmark.core.cards import hparam_tables, method_card
    from benchmark.core.plugins import METHODS

    pages = generator().generated_pages()
    for name in METHODS.names():
        page = pages[f"methods/{name}.md"]
        card = method_card(name)
        for text in (card.summary, card.missing_modality, card.train_missing, card.invalid_pixels):
            assert text in page, (name, text)
        assert all(line in page for line in card.deviations), name
        if card.paper is not None:
            assert card.paper.link in page
        for _title, _columns, rows in hparam_tables(name):
            for row in rows:
                assert row[0] in page and row[1].replace("|", "\\|") in page, (name, row)


def test_every_dataset_has_a_page():
    from benchmark.core.plugins import DATASETS

    pages = generator().generated_pages()
    assert {f"datasets/{n}.md" for n in DATASETS.names()} <= set(pages)
    assert "## Card" in pages["datasets/whu_opt_sar.md"]


def test_the_folder_card_page_documents_exactly_the_keys_the_parser_reads():
    docs = generator()
    assert set(docs.CARD_FIELDS) == docs.card_keys()
    page = docs.generated_pages()["datasets/folder.md"]
    for key in docs.CARD_FIELDS:
        assert f"| `{key}` |" in page


def test_the_folder_docstring_example_is_a_valid_card():
    """The card the folder page (and `datasets/folder.py`) shows parses as written."""
    from datasets.folder import card_from_mapping

    example = generator().folder_example_card()
    card = card_from_mapping(example, "the documented example")
    assert [m.name for m in card.modalities] == ["optical", "dsm"]
    assert card.labels.values == ((10, 0), (20, 1))


@pytest.mark.parametrize("dataset", ["vaihingen", "potsdam", "whu_opt_sar", "earthmiss"])
def test_a_real_loaders_card_is_shown_in_the_documented_format(dataset):
    from benchmark.core.plugins import DATASETS

    docs = generator()
    shown = docs.card_to_mapping(docs.default_card(DATASETS.get(dataset)))
    keys = set(shown) | {f"labels.{k}" for k in shown["labels"]}
    keys |= {f"modalities.<name>.{k}" for entry in shown["modalities"].values() for k in entry}
    assert keys <= set(docs.CARD_FIELDS), keys - set(docs.CARD_FIELDS)


def test_the_results_index_lists_every_frozen_folder():
    pages = generator().generated_pages()
    for readme in (REPO / "results").glob("*/README.md"):
        assert f"]({readme.parent.name}.md)" in pages["results/index.md"]
        assert pages[f"results/{readme.parent.name}.md"] == readme.read_text(encoding="utf-8")
