"""Shared rich console and progress bars, so every long step looks the same."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.errors import LiveError
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")

console = Console(stderr=True)
"""Progress, logs and errors (stderr)."""
results_console = Console()
"""Tables and listings (stdout), so they can be piped."""


def setup_logging(level: int = logging.INFO) -> None:
    """Route `logging` through rich once; safe to call repeatedly."""
    root = logging.getLogger()
    if not any(isinstance(h, RichHandler) for h in root.handlers):
        handler = RichHandler(console=console, show_path=False, rich_tracebacks=False)
        handler.setFormatter(logging.Formatter("%(message)s", datefmt="[%X]"))
        root.addHandler(handler)
    root.setLevel(level)


def progress_bar(transient: bool = False, disable: bool = False) -> Progress:
    """Make a progress bar with count, elapsed time, ETA and a free-text `info` field."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        console=console,
        transient=transient,
        disable=disable or (not console.is_terminal and not _force_progress()),
    )


def _force_progress() -> bool:
    import os

    return os.environ.get("MISSBENCH_PROGRESS", "") == "1"


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate with a progress bar (disabled automatically when not in a terminal)."""
    bar = progress_bar(transient=True)
    try:
        bar.start()
    except LiveError:  # another bar is live (e.g. a lazy load during training): no nested bar
        yield from items
        return
    try:
        task = bar.add_task(description, total=total, info="")
        for item in items:
            yield item
            bar.advance(task)
    finally:
        bar.stop()
