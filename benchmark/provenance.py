"""Where a result came from: code commit and library versions."""

from __future__ import annotations

import functools
import platform
import subprocess
from pathlib import Path


def _git(*args: str) -> str:
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=10
    )
    return result.stdout.strip()


@functools.cache
def git_commit() -> str:
    """Short commit of the MissBench checkout, `+dirty` when tracked files have changes."""
    try:
        commit = _git("rev-parse", "--short=12", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


@functools.cache
def versions() -> dict[str, str]:
    import numpy
    import timm
    import torch

    return {
        "python": platform.python_version(),
        "torch": str(torch.__version__),  # TorchVersion is not a plain str (weights_only loads)
        "timm": str(timm.__version__),
        "numpy": str(numpy.__version__),
        "cuda": str(torch.version.cuda),
    }
