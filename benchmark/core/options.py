"""Parse `name[key=value,...]` strings used by --methods and --dataset."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from benchmark.core.hparams import Params
from benchmark.system.errors import BenchmarkError

_ENTRY = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\[(.*)\])?\s*$", re.S)


@dataclass(frozen=True)
class NamedConfig:
    """A registry name plus explicit overrides, e.g. `baseline[lr=3e-4]`."""

    name: str
    overrides: Params = field(default_factory=Params)

    def label(self) -> str:
        """Canonical text form; used as the method label in tables."""
        if not self.overrides:
            return self.name
        inner = ",".join(f"{k}={format_value(v)}" for k, v in self.overrides.items())
        return f"{self.name}[{inner}]"


def format_value(value: Any) -> str:
    """Return the text `parse_value` reads back: true/false, numbers, [a,b] for sequences."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return "[" + ",".join(format_value(v) for v in value) + "]"
    return str(value)


def parse_value(text: str) -> Any:
    """`true`/`false`, numbers and Python literals; anything else (`none` too) stays a string."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        return text.strip()


def split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside brackets: `a[x=1,y=2],b` -> [`a[x=1,y=2]`, `b`]."""
    parts, depth, current = [], 0, []
    for char in text:
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
            if depth < 0:
                raise BenchmarkError(f"unbalanced ']' in {text!r}")
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if depth != 0:
        raise BenchmarkError(f"unbalanced '[' in {text!r}")
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def parse_named(text: str) -> NamedConfig:
    """Parse one `name` or `name[key=value,key=value]` entry."""
    match = _ENTRY.match(text)
    if not match:
        raise BenchmarkError(f"malformed entry {text!r}; expected name or name[key=value,...]")
    name, inner = match.group(1), match.group(2)
    pairs = parse_pairs(split_top_level(inner or ""), "override", text, "key=value")
    for key in pairs:
        if not key.isidentifier():
            raise BenchmarkError(f"malformed override {key!r} in {text!r}; expected key=value")
    return NamedConfig(name, Params({k: parse_value(v) for k, v in pairs.items()}))


def parse_pairs(items: Iterable[str], what: str, context: str, expected: str) -> dict[str, str]:
    """`["a=1", "b=[2,3]"]` -> {"a": "1", "b": "[2,3]"}, keys and values stripped.

    The one reader of every `key=value` list the command line takes (method overrides,
    dataset options, `--train-missing`, `predict --input`). An item without `=`, key or value
    is malformed, and a key given twice is refused rather than the last one silently winning
    (`dsm=0.3,dsm=0.5` asks for two things at once). `what` names an item (e.g. "override"),
    `context` the text it came from.
    """
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise BenchmarkError(
                f"malformed {what} {item.strip()!r} in {context!r}; expected {expected}"
            )
        if key in pairs:
            raise BenchmarkError(
                f"{what} {key!r} given twice in {context!r} ({key}={pairs[key]} and "
                f"{key}={value}); give each once"
            )
        pairs[key] = value
    return pairs


def parse_named_list(text: str) -> list[NamedConfig]:
    """Parse a comma-separated list of `name[key=value,...]` entries (at least one)."""
    entries = [parse_named(part) for part in split_top_level(text)]
    if not entries:
        raise BenchmarkError(f"empty list {text!r}")
    return entries
