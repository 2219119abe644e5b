"""Where a result came from: code commit and library versions."""

from __future__ import annotations

import functools
import platform
import subprocess
from importlib import metadata
from pathlib import Path

DISTRIBUTION = "missbench"


def _git(*args: str) -> str:
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=10
    )
    return result.stdout.strip()


@functools.cache
def git_commit() -> str:
    """Short commit of the MissBench checkout, `+dirty` when tracked files have changes.

    Outside a git checkout (an installed wheel, a copied tree) it is the installed version,
    `missbench==<version>`, or `unknown` when neither can be read.
    """
    try:
        commit = _git("rev-parse", "--short=12", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return installed_version()
    return commit + ("+dirty" if dirty else "")


def installed_version() -> str:
    """`missbench==<version>` from the installed distribution's metadata, else `unknown`."""
    try:
        return f"{DISTRIBUTION}=={metadata.version(DISTRIBUTION)}"
    except metadata.PackageNotFoundError:
        return "unknown"


@functools.cache
def versions() -> dict[str, str]:
    """Python, torch, timm, NumPy and CUDA versions, for every record."""
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
