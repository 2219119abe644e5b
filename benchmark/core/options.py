"""Parse `name[key=value,...]` strings used by --methods and --dataset."""

from __future__ import annotations

import ast
import re
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
    overrides: dict[str, Any] = {}
    for item in split_top_level(inner or ""):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier() or not value.strip():
            raise BenchmarkError(f"malformed override {item!r} in {text!r}; expected key=value")
        if key in overrides:
            raise BenchmarkError(f"override {key!r} given twice in {text!r}")
        overrides[key] = parse_value(value)
    return NamedConfig(name, Params(overrides))


def parse_named_list(text: str) -> list[NamedConfig]:
    """Parse a comma-separated list of `name[key=value,...]` entries (at least one)."""
    entries = [parse_named(part) for part in split_top_level(text)]
    if not entries:
        raise BenchmarkError(f"empty list {text!r}")
    return entries
