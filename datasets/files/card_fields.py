"""Typed reading of a card's fields: every value is checked for its type and range before use,
and a bad one is refused in one line naming the key, the value and what was expected.

Scattered `int(...)` calls turned a colour written as a name or a band count written as a word
into tracebacks; identifiers that later become file names (tile ids, modality and card names)
could carry path separators and escape the cache. Every field of a card goes through here.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from typing import Any

from benchmark.api import BenchmarkError
from datasets.files.tile_cache import SAFE_NAME

MAX_SHOWN = 60
"""Characters of an offending value quoted in an error (a card may hold long or binary junk)."""


class CardFields:
    """Reads fields of one card (`where` names it in errors)."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, key: str, value: Any, expected: str) -> BenchmarkError:
        """One line: the card, the key, the value (shortened) and what was expected."""
        return BenchmarkError(f"card {self.where}: {key} = {shown(value)}; expected {expected}")

    def mapping(self, key: str, value: Any) -> Mapping:
        if not isinstance(value, Mapping):
            raise self.fail(key, value, "a mapping (key: value, ...)")
        return value

    def sequence(self, key: str, value: Any, *, min_len: int = 0) -> Sequence:
        if isinstance(value, str | bytes) or not isinstance(value, Sequence):
            raise self.fail(key, value, "a list [a, b, ...]")
        if len(value) < min_len:
            raise self.fail(key, value, f"a list of at least {min_len} item(s)")
        return value

    def integer(self, key: str, value: Any, low: int | None = None, high: int | None = None) -> int:
        """An int (YAML integer; not a bool, a float or a word) within [low, high]."""
        span = _span(low, high)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, value, f"an integer{span}")
        if (low is not None and value < low) or (high is not None and value > high):
            raise self.fail(key, value, f"an integer{span}")
        return value

    def number(self, key: str, value: Any, *, positive: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            raise self.fail(key, value, "a number")
        if positive and not value > 0:
            raise self.fail(key, value, "a positive number")
        return float(value)

    def text(self, key: str, value: Any, *, allow_empty: bool = True) -> str:
        """A string (numbers are accepted and written as text: `name: 2024` is a name)."""
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.fail(key, value, "a string")
        value = str(value)
        if not allow_empty and not value.strip():
            raise self.fail(key, value, "a non-empty string")
        return value

    def identifier(self, key: str, value: Any) -> str:
        """A Python identifier (card and modality names become folder and column names)."""
        if not isinstance(value, str) or not value.isidentifier():
            raise self.fail(
                key, value, "an identifier (letters, digits, _; not starting with a digit)"
            )
        return value

    def tile_id(self, key: str, value: Any) -> str:
        """A tile id: quoted in YAML, and safe as one component of a file name."""
        if not isinstance(value, str):
            raise self.fail(key, value, "a quoted string id (e.g. '00001')")
        if not SAFE_NAME.match(value):
            raise self.fail(
                key, value, "an id of letters, digits and _ . + - (no path separators or '..')"
            )
        return value

    def relative_folder(self, key: str, value: Any) -> str:
        """A folder below the data folder: relative, without `..`."""
        folder = self.text(key, value, allow_empty=False)
        parts = folder.replace("\\", "/").split("/")
        if folder.startswith(("/", "\\", "~")) or ".." in parts or re.match(r"[A-Za-z]:", folder):
            raise self.fail(key, value, "a folder relative to the data folder, without '..'")
        return folder

    def pattern(self, key: str, value: Any) -> str:
        """A file-stem pattern with one `{id}` placeholder and no other fields."""
        pattern = self.relative_folder(key, value)
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(pattern) if f is not None]
        except ValueError:
            raise self.fail(key, value, "a pattern such as '{id}' or '{id}_dsm'") from None
        if fields != ["id"]:
            raise self.fail(key, value, "a pattern with exactly one {id}, e.g. '{id}_dsm'")
        return pattern

    def colour(self, key: str, value: Any) -> tuple[int, int, int]:
        items = self.sequence(key, value)
        if len(items) != 3:
            raise self.fail(key, value, "an [r, g, b] colour of three integers 0-255")
        return tuple(self.integer(key, v, 0, 255) for v in items)  # type: ignore[return-value]

    def unique_texts(self, key: str, value: Any) -> tuple[str, ...]:
        """A non-empty list of distinct, non-empty names."""
        names = tuple(
            self.text(f"{key}[{i}]", v, allow_empty=False)
            for i, v in enumerate(self.sequence(key, value, min_len=1))
        )
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise self.fail(key, list(names), f"distinct names ({', '.join(repeated)} repeated)")
        return names


def shown(value: Any) -> str:
    """`value` as the error quotes it: repr, shortened."""
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


def _span(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return f" from {low} to {high}"
    if low is not None:
        return f" >= {low}"
    if high is not None:
        return f" <= {high}"
    return ""
