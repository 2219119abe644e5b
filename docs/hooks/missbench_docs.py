"""The docs pages that come from the code, made when `mkdocs build` runs (an MkDocs hook).

A page per method (its class's card: paper, policies, deviations, hyperparameters with defaults
and ranges), a page per dataset (its options and, for card-driven loaders, its card), the
folder-card format (from `datasets/folder.py`'s docstring and its parser) and the frozen
results (every `results/*/README.md`). Written from the registries at build time, none is
committed, so no page can tell another story than the code: a changed declaration changes the
page, and a page link that no longer resolves fails the strict build in `.ci/run`.

`generated_pages()` is what tests read; `on_config` and `on_files` are MkDocs's hook events.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import inspect
import textwrap
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]

# ------------------------------------------------------------------------------- methods


def method_pages() -> dict[str, str]:
    """`methods/<name>.md` for every registered method, in the registry's order."""
    from benchmark.core.plugins import METHODS, load_plugins

    load_plugins()
    return {f"methods/{name}.md": method_page(name) for name in METHODS.names()}


def method_page(name: str) -> str:
    """One method's page: its card (`benchmark.core.cards`) and its hyperparameter tables."""
    from benchmark.commands.listing import markdown_tables
    from benchmark.core.cards import hparam_tables, method_card
    from benchmark.core.plugins import METHODS

    card = method_card(name)
    cls = METHODS.get(card.name)
    if card.paper is None:
        paper = "none: " + (card.deviations[0] if card.deviations else "a method of no paper")
    else:
        p = card.paper
        paper = f"[{p.title}]({p.link}), {p.venue} {p.year}"
    facts = [
        ("paper", paper),
        ("kind", f"{card.kind}" + (" (one model per scenario)" if cls.DEDICATED else "")),
        ("aliases", ", ".join(f"`{a}`" for a in card.aliases) or "—"),
        ("class", f"`{cls.__module__}.{cls.__qualname__}`"),
        ("run it", f'`python run_benchmark.py --methods "{card.name}"`'),
    ]
    lines = [f"# `{card.name}`", "", card.doc, "", "| | |", "|---|---|"]
    lines += [f"| {key} | {_cell(value)} |" for key, value in facts]
    lines += ["", "## What it does", "", card.summary]
    lines += ["", "## With a missing modality at test time (`MISSING_MODALITY`)", ""]
    lines += [card.missing_modality]
    lines += ["", "## With missing training data (`TRAIN_MISSING`)", "", card.train_missing]
    lines += ["", "## With invalid pixels: clouds, DSM voids (`INVALID_PIXELS`)", ""]
    lines += [card.invalid_pixels]
    if cls.ENCODES_ABSENT:
        lines += ["", "## Why it encodes an absent modality's fill (`ENCODES_ABSENT`)", ""]
        lines += [cls.ENCODES_ABSENT]
    if cls.DEDICATED or cls.STAGES != ("prelude", "deployed"):
        lines += ["", "## Stages (`STAGES`)", "", ", then ".join(f"`{s}`" for s in cls.STAGES)]
    title = "Where it departs from the paper" if card.paper else "What it is"
    lines += ["", f"## {title} (`DEVIATIONS`)", ""]
    lines += [f"- {line}" for line in card.deviations] or ["None declared."]
    lines += [
        "",
        "## Hyperparameters",
        "",
        f'Override any as `--methods "{card.name}[name=value,...]"`; '
        f"`python run_benchmark.py list {card.name}` prints these tables. `tune` searches the "
        "ranges of the fourth column ([Tuning](../tuning.md)).",
        "",
        markdown_tables(hparam_tables(card.name)),
    ]
    return "\n".join(lines).rstrip() + "\n"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


# ------------------------------------------------------------------------------ datasets

CARD_FIELDS: dict[str, str] = {
    "name": "lower-case identifier: the dataset's name in rows, tables and the cache folder",
    "description": "free text, shown in reports",
    "modalities": "one entry per modality, `{name: {folder: ..., channels: N}}`; the names are "
    "the modalities of every scenario",
    "modalities.<name>.folder": "the modality's sub-folder (relative, inside the data folder)",
    "modalities.<name>.channels": "its band count after `bands` selects (1 to 1024)",
    "modalities.<name>.pattern": "file stem with an `{id}` placeholder; a suffix in it is used "
    "as is, else any raster suffix (tif, tiff, png, jpg)",
    "modalities.<name>.bands": "0-based band indices to read from each file, one per channel",
    "modalities.<name>.description": "free text (bands, units), shown in reports",
    "labels": "where the labels are and how they are encoded",
    "labels.folder": "the label sub-folder",
    "labels.pattern": "file stem with an `{id}` placeholder, as for a modality",
    "labels.encoding": "`index` (the raw value is the class index), `values` (a map raw value "
    "→ class) or `palette` (RGB colours in the order of `classes`)",
    "labels.values": "for `encoding: values`: `{raw value: class index}`",
    "labels.ignore": "raw values meaning unlabelled (`index` and `values` encodings); any other "
    "value that is no class is an error",
    "classes": "the class names, distinct, in class-index order",
    "palette": "one `[r, g, b]` per class (required for `encoding: palette`)",
    "eval_classes": "class indices in the macro means (mIoU, mF1)",
    "label_set": "a tag for the label convention, recorded in every result row",
    "splits": "`{train: [ids], val: [ids], test: [ids]}`: quoted tile ids (letters, digits, "
    "`_.+-`)",
    "split_ratios": "`{train: 0.7, val: 0.1, test: 0.2}`: the ids found in the label folder, "
    "shuffled with `seed` (give `splits` or `split_ratios`, not both)",
    "seed": "the shuffle of `split_ratios`",
    "root": "the data folder, relative to the card's folder",
}
"""What each key of a folder card means. A test checks that these are exactly the keys the
parser (`datasets.folder.card_from_mapping`) accepts."""

REQUIRED = {
    "modalities": "required",
    "modalities.<name>.channels": "required",
    "labels": "required",
    "labels.folder": "required",
    "classes": "required",
    "splits": "this or `split_ratios`",
    "split_ratios": "this or `splits`",
    "labels.values": "for `encoding: values`",
}
DEFAULT_TEXT = {
    "modalities.<name>.folder": "the modality's name",
    "palette": "distinct colours, one per class",
    "eval_classes": "every class",
    "name": "`folder`",
}
MINIMAL_CARD: dict[str, Any] = {
    "modalities": {"m": {"channels": 1}},
    "labels": {"folder": "labels"},
    "classes": ["a", "b"],
    "split_ratios": {"train": 0.6, "val": 0.2, "test": 0.2},
}
"""The smallest valid card: what the parser fills in for everything else are the defaults."""


def card_keys() -> set[str]:
    """Every key a folder card may hold, as the parser knows them."""
    from datasets.folder import CARD_KEYS, LABEL_KEYS, MODALITY_KEYS

    return (
        set(CARD_KEYS)
        | {f"modalities.<name>.{k}" for k in MODALITY_KEYS}
        | {f"labels.{k}" for k in LABEL_KEYS}
    )


def card_defaults() -> dict[str, str]:
    """Each optional key's default, read off the parser: the value it gives a minimal card."""
    from datasets.folder import card_from_mapping

    parsed = card_from_mapping(MINIMAL_CARD, "the minimal card")
    values: dict[str, Any] = {
        f.name: getattr(parsed, f.name) for f in dataclasses.fields(parsed) if f.name in CARD_FIELDS
    }
    values |= {
        f"modalities.<name>.{f.name}": getattr(parsed.modalities[0], f.name)
        for f in dataclasses.fields(parsed.modalities[0])
    }
    values |= {
        f"labels.{f.name}": getattr(parsed.labels, f.name)
        for f in dataclasses.fields(parsed.labels)
    }
    shown = {}
    for key in CARD_FIELDS:
        if key in REQUIRED:
            shown[key] = REQUIRED[key]
        elif key in DEFAULT_TEXT:
            shown[key] = DEFAULT_TEXT[key]
        else:
            value = values[key]
            shown[key] = "none" if value in ((), None, "") else f"`{_plain(value)}`"
    return shown


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def folder_docstring() -> tuple[str, str]:
    """`datasets/folder.py`'s docstring as Markdown: (the prose, the layout and card example)."""
    import datasets.folder

    doc = inspect.getdoc(datasets.folder) or ""
    head, _, rest = doc.partition("::\n")
    block, _, tail = rest.partition("\n\nAny label value")
    example = textwrap.dedent(block.strip("\n"))
    return head.rstrip() + ":\n\n" + "Any label value" + tail, example


def folder_example_card() -> dict[str, Any]:
    """The YAML card of the docstring's example (the lines after `# card.yaml`)."""
    _, example = folder_docstring()
    return yaml.safe_load(example.split("# card.yaml", 1)[1])


def folder_page() -> str:
    """The `folder` dataset's page: the card format, from the docstring and the parser."""
    prose, example = folder_docstring()
    intro, _, after = prose.partition("\n\nAny label value")
    tree, _, card = example.partition("# card.yaml")
    defaults = card_defaults()
    lines = [
        "# `folder`: your own rasters, described by a card",
        "",
        _markdown_prose(intro),
        "",
        "```text",
        tree.rstrip(),
        "```",
        "",
        "```yaml",
        "# card.yaml" + card.rstrip(),
        "```",
        "",
        _markdown_prose("Any label value" + after),
        "",
        "## Every key of a card",
        "",
        "Keys are checked: an unknown key, a value of the wrong type or out of range is one "
        "line naming the key, the value and what was expected (exit status 2). Cards are read "
        "with bounds (1 MiB, 200 000 values after alias expansion, 32 levels of nesting).",
        "",
        "| key | what it is | default |",
        "|---|---|---|",
    ]
    lines += [f"| `{k}` | {_cell(CARD_FIELDS[k])} | {_cell(defaults[k])} |" for k in CARD_FIELDS]
    lines += [
        "",
        "Every real dataset's loader builds such a card from its options: its page shows it "
        "in this format (e.g. [`vaihingen`](vaihingen.md)).",
    ]
    return "\n".join(lines) + "\n"


def _markdown_prose(text: str) -> str:
    """Docstring prose as Markdown: a literal `::` becomes `:`."""
    return text.replace("::", ":").strip()


def card_to_mapping(card: Any) -> dict[str, Any]:
    """A `Card` in the folder card's YAML form (what `card_from_mapping` reads back)."""
    out: dict[str, Any] = {"name": card.name}
    if card.description:
        out["description"] = card.description
    out["modalities"] = {}
    for m in card.modalities:
        entry: dict[str, Any] = {"folder": m.folder, "channels": m.channels}
        if m.pattern != "{id}":
            entry["pattern"] = m.pattern
        if m.bands is not None:
            entry["bands"] = list(m.bands)
        if m.description:
            entry["description"] = m.description
        out["modalities"][m.name] = entry
    labels: dict[str, Any] = {"folder": card.labels.folder, "encoding": card.labels.encoding}
    if card.labels.pattern != "{id}":
        labels["pattern"] = card.labels.pattern
    if card.labels.values:
        labels["values"] = dict(card.labels.values)
    if card.labels.ignore:
        labels["ignore"] = list(card.labels.ignore)
    out["labels"] = labels
    out["classes"] = list(card.classes)
    if card.palette:
        out["palette"] = [list(c) for c in card.palette]
    if card.eval_classes:
        out["eval_classes"] = list(card.eval_classes)
    if card.label_set:
        out["label_set"] = card.label_set
    if card.splits:
        out["splits"] = {split: list(ids) for split, ids in card.splits}
    if card.split_ratios is not None:
        out["split_ratios"] = dict(zip(("train", "val", "test"), card.split_ratios, strict=True))
        out["seed"] = card.seed
    if card.root != ".":
        out["root"] = card.root
    return out


def default_card(cls: type) -> Any:
    """The card a card-driven loader builds with its default options.

    `build_card` reads only the options, so it runs on an instance that has nothing else (no
    data root, no files): the card a user's files must match, without the files.
    """
    loader = cls.__new__(cls)
    loader.options = cls.Options()
    return loader.build_card()


def dataset_pages() -> dict[str, str]:
    """`datasets/<name>.md` for every registered dataset, in the registry's order."""
    from benchmark.core.plugins import DATASETS, load_plugins

    load_plugins()
    return {f"datasets/{name}.md": dataset_page(name) for name in DATASETS.names()}


def dataset_page(name: str) -> str:
    """One dataset's page: what it is, its modalities, options, layout and card."""
    from benchmark.core.plugins import DATASETS
    from datasets.folder import FolderDataset, TileDataset

    cls = DATASETS.get(name)
    if cls is FolderDataset:
        return folder_page()
    doc = inspect.getdoc(cls) or ""
    lines = [f"# `{name}`", "", doc, "", "| | |", "|---|---|"]
    facts = [
        ("modalities", ", ".join(f"`{m}`" for m in cls.MODALITIES)),
        ("data", "generated from a seed on first use" if cls.GENERATED else "files you provide"),
        ("class", f"`{cls.__module__}.{cls.__qualname__}`"),
        ("run it", f'`python run_benchmark.py --dataset "{name}"`'),
    ]
    lines += [f"| {key} | {_cell(value)} |" for key, value in facts]
    fields = dataclasses.fields(cls.Options)
    lines += ["", "## Options", ""]
    if fields:
        lines += [f'Set as `--dataset "{name}[{fields[0].name}=...]"`.', ""]
        lines += ["| option | default | type |", "|---|---|---|"]
        for f in fields:
            kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
            lines.append(f"| `{f.name}` | `{f.default}` | `{_cell(kind)}` |")
    else:
        lines.append("None.")
    if cls.GENERATED:
        lines += ["", "The synthetic family, its options and calibration: [Datasets](../data.md)."]
    if issubclass(cls, TileDataset):
        lines += ["", "## Files", ""]
        where = f"`<data-root>/{cls.DIRNAME}/`" if cls.DIRNAME else "the data root"
        lines += [f"Expected under {where}: {_inline(cls.LAYOUT)}"]
        if cls.SOURCE:
            lines += ["", f"Where to get them: {cls.SOURCE}"]
        lines += ["", "## Card", ""]
        own = [
            hook
            for hook in ("modality_path", "label_path", "split_ids", "read_label")
            if getattr(cls, hook) is not getattr(TileDataset, hook)
        ]
        lines += [
            "The card this loader builds with its default options, in the "
            "[folder card](folder.md)'s format (options change some fields)."
            + (
                " The loader finds files with its own "
                + ", ".join(f"`{h}`" for h in own)
                + ", so its folder and pattern fields are a guide, not the rule."
                if own
                else ""
            ),
            "",
            "```yaml",
            yaml.safe_dump(
                card_to_mapping(default_card(cls)),
                sort_keys=False,
                default_flow_style=None,
                width=90,
            ).rstrip(),
            "```",
        ]
    return "\n".join(lines).rstrip() + "\n"


def _inline(text: str) -> str:
    """Layout text as code where it is a path pattern (it holds braces and slashes)."""
    return f"`{text}`" if "`" not in text else text


# ------------------------------------------------------------------------------- results


def results_pages(repo: Path = REPO) -> dict[str, str]:
    """`results/<folder>.md` for every frozen folder's README, and an index of them."""
    folders = sorted(p.parent for p in (repo / "results").glob("*/README.md"))
    pages = {}
    rows = []
    for folder in reversed(folders):  # newest first
        text = (folder / "README.md").read_text(encoding="utf-8")
        title = next((ln[2:].strip() for ln in text.splitlines() if ln.startswith("# ")), "")
        pages[f"results/{folder.name}.md"] = text
        rows.append(f"| [{folder.name}]({folder.name}.md) | {_cell(title)} |")
    index = (repo / "results" / "README.md").read_text(encoding="utf-8")
    index = index.replace("# results/", "# Frozen results: `results/`", 1)
    index += (
        "\n## The frozen folders\n\nEach folder's README, newest first: the commands that made "
        "the runs and what the study shows (each number marked with its source, "
        "[Quoting numbers](../quoting.md)). The folders themselves (CSVs, tables, figures) are "
        "in the repository under `results/<folder>/`.\n\n| folder | study |\n|---|---|\n"
        + "\n".join(rows)
        + "\n"
    )
    return {"results/index.md": index, **pages}


# ------------------------------------------------------------------------------ the hook


@functools.cache
def generated_pages() -> dict[str, str]:
    """Every generated page: docs-relative path -> Markdown."""
    missing = card_keys() ^ set(CARD_FIELDS)
    if missing:
        raise ValueError(f"docs: folder card keys documented and parsed differ: {sorted(missing)}")
    return {**method_pages(), **dataset_pages(), **results_pages()}


def _expand(entries: list[Any], pages: list[str]) -> list[Any]:
    """Nav entries with each wildcard path (`methods/*.md`) replaced by the pages it matches."""
    out: list[Any] = []
    for entry in entries:
        if isinstance(entry, str) and "*" in entry:
            out += [p for p in pages if fnmatch.fnmatch(p, entry) and p not in out]
        elif isinstance(entry, dict):
            out.append(
                {k: _expand(v, pages) if isinstance(v, list) else v for k, v in entry.items()}
            )
        else:
            out.append(entry)
    return out


def on_config(config: Any) -> Any:
    """Expand the nav's wildcards to the generated pages (registry order)."""
    if config.get("nav"):
        config["nav"] = _expand(config["nav"], list(generated_pages()))
    return config


def on_files(files: Any, config: Any) -> Any:
    """Add the generated pages to the site's files."""
    from mkdocs.structure.files import File

    for path, text in generated_pages().items():
        files.append(File.generated(config, path, content=text))
    return files
