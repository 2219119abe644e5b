"""YAML read with bounds, so a small hostile card cannot exhaust memory or time.

`yaml.safe_load` constructs no arbitrary objects, but it follows aliases: a few hundred bytes of
nested anchors (`a: &a [x, x]`, `b: &b [*a, *a]`, ...) describe billions of nodes, and whatever
walks the result (validation, hashing, `str()`) expands them. Here the document is composed
into YAML's node graph first (linear in the text, aliases stay references), the graph is walked
as it would be expanded, counting nodes and depth, and only a document within the bounds is
constructed. Self-referencing aliases hit the depth bound.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmark.api import BenchmarkError

MAX_BYTES = 1 << 20
"""A card is a short text: 1 MiB is far above any real one (thousands of tile ids)."""
MAX_NODES = 200_000
"""Nodes after alias expansion: a card listing 50 000 tile ids stays well below."""
MAX_DEPTH = 32
"""Nesting depth: a card nests four levels."""


def read_bounded_yaml(path: Path, what: str = "card") -> Any:
    """The parsed YAML document in `path`, refused in one line when it exceeds the bounds."""
    import yaml

    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except OSError as error:
        raise BenchmarkError(f"{what} {path}: cannot read ({error.strerror})") from None
    if len(raw) > MAX_BYTES:
        raise BenchmarkError(f"{what} {path}: larger than {MAX_BYTES // 1024} KiB; not a card")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BenchmarkError(f"{what} {path}: not UTF-8 text") from None
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            check_bounds(node, f"{what} {path}")
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise BenchmarkError(f"{what} {path}: invalid YAML ({first})") from None
    except RecursionError:
        raise BenchmarkError(f"{what} {path}: nested too deeply") from None


def check_bounds(root: Any, where: str) -> None:
    """Walk the node graph as expansion would; raise once the node count or depth is too big."""
    import yaml

    count = 0
    stack: list[tuple[Any, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise BenchmarkError(
                f"{where}: more than {MAX_NODES} values once its aliases are expanded; a card "
                "this large is refused (alias bomb?)"
            )
        if depth > MAX_DEPTH:
            raise BenchmarkError(f"{where}: nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, yaml.SequenceNode):
            stack.extend((child, depth + 1) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.append((key, depth + 1))
                stack.append((value, depth + 1))
