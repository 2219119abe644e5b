"""A method's card: what its class declares about itself, read in one place.

`run_benchmark.py list` (its methods table and `list METHOD`), the README's generated tables
and the report's web pages (`benchmark.report.site`) all show these facts; reading them here
keeps the command line and the web pages from telling a method's story two ways.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from benchmark.core.hparams import HParam
from benchmark.core.method import COMMON_HPARAMS, Paper
from benchmark.core.options import format_value
from benchmark.core.plugins import METHODS
from benchmark.core.presets import PRESETS

ListingTable = tuple[str, list[str], list[list[str]]]
"""(title, columns, rows): a table of `list` (printed with rich or as Markdown) or of a web
page."""

HPARAM_COLUMNS = ["hyperparameter", "default", "valid values", "`tune` searches", "what it sets"]


@dataclass(frozen=True)
class MethodCard:
    """What a registered method declares about itself.

    Its paper, its policies and where it departs from the paper: the class attributes of
    `benchmark.core.method.Method`, read once for every page that shows them.
    """

    name: str
    aliases: tuple[str, ...]
    kind: str
    """`single-model` or `oracle` (`Method.kind`)."""
    paper: Paper | None
    summary: str
    missing_modality: str
    train_missing: str
    invalid_pixels: str
    deviations: tuple[str, ...]
    doc: str
    """The class docstring's first paragraph."""


def method_card(method: str) -> MethodCard:
    """Return the card of a registered method.

    `method` is a name or an alias; an unknown one raises the registry's one-line error.
    """
    name = METHODS.canonical(method)
    cls = METHODS.get(name)
    doc = (cls.__doc__ or "").strip().split("\n\n")[0]
    return MethodCard(
        name=name,
        aliases=tuple(METHODS.aliases_of(name)),
        kind=cls.kind(),
        paper=cls.PAPER,
        summary=cls.SUMMARY,
        missing_modality=cls.MISSING_MODALITY,
        train_missing=cls.TRAIN_MISSING,
        invalid_pixels=cls.INVALID_PIXELS,
        deviations=tuple(cls.DEVIATIONS),
        doc=" ".join(doc.split()),
    )


def hparam_tables(method: str) -> list[ListingTable]:
    """Return the tables of `list METHOD`: the method's own hyperparameters, then the common.

    Each row holds a hyperparameter's default, the values it accepts, what `tune` searches and
    what it sets. The help of a method's knobs used to show only in the error an unknown name
    raises; the report's method pages show the same tables.
    """
    name = METHODS.canonical(method)
    own = METHODS.get(name).HPARAMS
    tables = []
    if own:
        rows = [hparam_row(key, own[key], preset_values={}) for key in sorted(own)]
        title = f"`{name}`'s own hyperparameters (override as {name}[name=value,...])"
        tables.append((title, list(HPARAM_COLUMNS), rows))
    common = {key: hp for key, hp in COMMON_HPARAMS.items() if key not in own}
    rows = [
        hparam_row(
            key,
            hp,
            preset_values={
                p: PRESETS.get(p).hparams[key]
                for p in PRESETS.names()
                if PRESETS.get(p).hparams.get(key, hp.default) != hp.default
            },
        )
        for key, hp in sorted(common.items())
    ]
    title = f"Hyperparameters every method has, `{name}` included (a preset sets some)"
    tables.append((title, list(HPARAM_COLUMNS), rows))
    return tables


def hparam_row(name: str, hparam: HParam, preset_values: Mapping[str, Any]) -> list[str]:
    """Return one row of `hparam_tables`; `preset_values`: presets that set another value."""
    default = format_value(hparam.default) or '""'
    if preset_values:
        shown = "; ".join(f"{p}: {format_value(v)}" for p, v in preset_values.items())
        default = f"{default} ({shown})"
    search = hparam.search
    if search is None:
        searched = "—"
    else:
        searched = search.describe(hparam.default if not preset_values else None)
        searched += f" ({search.note})" if search.note else ""
    return [f"`{name}`", default, hparam.valid_values(), searched, hparam.help]
