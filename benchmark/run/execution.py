"""Where and how runs execute: one value for the settings `run` and `tune` share.

The command line parses them once (`cli.execution`), `api.run` and `api.tune` build them from
their keyword arguments (`commands.requests.resolve_execution` for both), and the commands and
launchers take them as this one value. None of it is a `RunSpec` field, so none of it enters a
run's hash: the same run is the same run whichever machine, launcher or device executes it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch


@dataclass(frozen=True)
class Execution:
    """Where and how runs execute; none of it is part of a run's spec or hash."""

    data_root: Path
    """Where datasets live or are generated."""
    out: Path
    """The results directory the runs are stored in."""
    device: torch.device
    launcher: str = "local"
    """A `run.launchers.LAUNCHERS` name; checked by the command that launches."""
    workers: int = 1
    """local launcher: runs at once, one process each (1: in this process)."""
    threads: int | None = None
    """torch threads per run; default: this machine's cores divided among the workers."""
    retry_failed: bool = False
    """Rerun runs recorded as failed (default: report them as failed and go on)."""
    address: str | None = None
    """Ray cluster address (`auto`, `host:port`); None starts a local Ray instance."""
    tensorboard: bool = False
    """Also log losses and validation scores for TensorBoard (`runs/<run_id>/tensorboard/`)."""

    def threads_per_run(self) -> int:
        if self.threads is not None:
            return self.threads
        return max(1, (os.cpu_count() or 1) // max(1, self.workers))
