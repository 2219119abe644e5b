"""Shared rich console and progress bars, so every long step looks the same."""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console, RenderableType
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


def print_wide(renderable: RenderableType, width: int) -> None:
    """Print on stdout; where that is not a terminal, at least `width` columns wide.

    To rich, output that is not a terminal (a pipe, a file) is 80 columns wide (or $COLUMNS),
    and a table narrower than its cells cuts them to an ellipsis; a table that knows the width
    its names need (`benchmark.commands.listing.rich_table`) is printed that wide instead. A
    terminal keeps its own width: wider lines would wrap and break the table's borders.
    """
    if results_console.is_terminal or width <= results_console.width:
        results_console.print(renderable)
    else:
        Console(file=results_console.file, width=width).print(renderable)


class _PlainHandler(logging.Handler):
    """One line per record for output that is not a terminal (rich would wrap at 80 columns).

    Writes to whatever `sys.stderr` is at the time, as the rich console does.
    """

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


def setup_logging(level: int = logging.INFO) -> None:
    """Route `logging` through rich on a terminal, else one plain line per record.

    A log file stays greppable that way; safe to call repeatedly.
    """
    root = logging.getLogger()
    if not any(isinstance(h, RichHandler | _PlainHandler) for h in root.handlers):
        if console.is_terminal:
            handler = RichHandler(console=console, show_path=False, rich_tracebacks=False)
            handler.setFormatter(logging.Formatter("%(message)s", datefmt="[%X]"))
        else:
            handler = _PlainHandler()
            handler.setFormatter(
                logging.Formatter("%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
            )
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
        disable=disable or not shows_bars(),
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


def shows_bars() -> bool:
    """Whether progress bars render (a terminal, or MISSBENCH_PROGRESS=1)."""
    return console.is_terminal or _force_progress()


class ProgressLines:
    """Periodic progress lines for output that is not a terminal (a log file, CI, a worker).

    A rich bar draws nothing there, so a long run would print nothing for many minutes; this
    logs a line every `every_s` seconds or every `every_share` of the run, whichever comes
    first: what runs, step/total, loss, steps per second and the estimated time left.
    """

    def __init__(
        self,
        label: str,
        total: int,
        every_s: float = 30.0,
        every_share: float = 0.1,
        enabled: bool | None = None,
        unit: str = "step",
        time_only: bool = False,
    ) -> None:
        """`time_only`: a line every `every_s` seconds only (no first, share or last line), for
        a pass that a later line sums up (an intermediate validation, then its score)."""
        self.label = label
        self.total = total
        self.unit = unit
        self.time_only = time_only
        self.every_s = every_s
        self.every_steps = max(1, int(total * every_share))
        self.enabled = (not shows_bars()) if enabled is None else enabled
        self.log = logging.getLogger("missbench.progress")
        self._last_time = time.monotonic()
        self._last_step: int | None = None

    def step(self, step: int, per_second: float, loss: float | None = None) -> None:
        """Maybe log a line for `step` (1-based, of `total`), done at `per_second`."""
        if not self.enabled:
            return
        now = time.monotonic()
        due_by_time = now - self._last_time >= self.every_s
        due_by_steps = self._last_step is None or step - self._last_step >= self.every_steps
        if self.time_only and not due_by_time:
            return
        if not (due_by_steps or due_by_time or step == self.total):
            return
        eta = (self.total - step) / per_second if per_second > 0 else float("nan")
        parts = [f"{self.label}: {self.unit} {step}/{self.total}"]
        if loss is not None:
            parts.append(f"loss {loss:.4f}")
        parts += [f"{per_second:.2f} {self.unit}s/s", f"ETA {format_seconds(eta)}"]
        self.log.info(" · ".join(parts))
        self._last_time, self._last_step = now, step

    def validation(self, step: int, miou: float) -> None:
        """Log the validation score of the checkpoint at `step`."""
        if self.enabled:
            self.log.info("%s: validation at step %d · val mIoU %.4f", self.label, step, miou)


def format_seconds(seconds: float) -> str:
    """`1h02m`, `4m05s`, `12s` (or `?` when unknown)."""
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
