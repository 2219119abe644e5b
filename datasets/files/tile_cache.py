"""Decode-once, memory-mapped tile cache: every provider file is decoded a single time into a
`.npy` that later reads slice through `np.load(mmap_mode="r")` (a 6000 x 6000 Potsdam tile is
never decoded per patch).

Where: `$MISSBENCH_CACHE` when set, else `<data-root>/.missbench_cache/` when the data root is
writable, else `~/.cache/missbench/<hash of the data root>/` (read-only data, e.g. shared
samples). The provider's files are never modified.

Entries are named `<key>--<fingerprint>.npy`; the fingerprint hashes the source files' paths,
sizes and modification times plus the decoding parameters, so changed files or options give a
new entry instead of a stale one. Writes go to a temp file in the same folder followed by an
atomic rename: a crash never leaves a half entry that is later trusted, and concurrent writers
of the same entry are harmless (identical content, last rename wins).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.api import atomic_output, describe, user_cache_dir, write_target

log = logging.getLogger(__name__)

SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*\Z")
"""One safe file-name component: letters, digits and `_ . + -`, no separators, not starting
with a dot (so never `.` or `..`). Cache keys matching it are file names as they are (else
hashed); card tile ids must match it."""
CACHE_VERSION = 1
CACHE_DIRNAME = ".missbench_cache"
ROWS_PER_CHUNK = 512


def _writable(directory: Path) -> bool:
    write_target(directory)  # a probe is a write too: never outside the command's folders
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
        return True
    except OSError:
        return False


def cache_root(data_root: Path) -> Path:
    """The cache folder for datasets under `data_root` (see the module docstring)."""
    env = os.environ.get("MISSBENCH_CACHE")
    if env:
        return Path(env)
    data_root = Path(data_root)
    if data_root.is_dir() and _writable(data_root / CACHE_DIRNAME):
        return data_root / CACHE_DIRNAME
    return fallback_root(data_root)


def fallback_root(data_root: Path) -> Path:
    """`~/.cache/missbench/<hash of the data root>/`: where what would be written under a
    read-only data root goes instead."""
    digest = hashlib.sha256(str(Path(data_root).resolve()).encode()).hexdigest()[:12]
    return user_cache_dir() / digest


def writable(directory: Path) -> bool:
    """Whether files can be created in `directory` (created if absent and possible)."""
    return _writable(Path(directory))


def fingerprint(paths: Iterable[Path], params: Any = None) -> str:
    """Short hash of source files (path, size, mtime) and the decoding parameters."""
    items: list[Any] = [CACHE_VERSION]
    for path in paths:
        stat = Path(path).stat()
        items.append([str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns])
    items.append(params)
    text = json.dumps(items, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _save_atomic(path: Path, array: np.ndarray) -> None:
    """Write `array` as `.npy` through the harness's one atomic-output helper (a temporary
    name of its own, renamed when complete, removed on failure, Ctrl-C or SIGTERM)."""
    with atomic_output(path) as tmp:
        # row chunks from a possibly non-contiguous view (e.g. HWC -> CHW): no full copy
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=array.dtype, shape=array.shape)
        rows = array.shape[-2] if array.ndim >= 2 else 1
        for start in range(0, rows, ROWS_PER_CHUNK):
            if array.ndim >= 2:
                out[..., start : start + ROWS_PER_CHUNK, :] = array[
                    ..., start : start + ROWS_PER_CHUNK, :
                ]
            else:
                out[...] = array
        out.flush()
        del out


class TileCache:
    """Memory-mapped arrays under one folder, produced on first use."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def path(self, key: str, fp: str) -> Path:
        """`<key>--<fp>.npy` in the cache folder; a key that is not one safe file-name
        component (a tile id discovered from a file name with spaces, say) is replaced by its
        hash, so no key can name a file outside the folder."""
        name = (
            key if SAFE_NAME.match(key) else "id-" + hashlib.sha256(key.encode()).hexdigest()[:20]
        )
        path = self.directory / f"{name}--{fp}.npy"
        if path.parent != self.directory:  # defence in depth: never write outside the cache
            raise ValueError(f"cache key {key!r} escapes {self.directory}")
        return path

    def has(self, key: str, fp: str) -> bool:
        return self.path(key, fp).is_file()

    def get(self, key: str, fp: str, produce: Callable[[], np.ndarray]) -> np.ndarray:
        """The cached array (read-only memmap), decoding it with `produce` the first time."""
        path = self.path(key, fp)
        if path.is_file():
            try:
                return np.load(path, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError, EOFError) as error:
                # A cache is disposable: a damaged entry (truncated copy, disk error, someone
                # else's file) is decoded again from the provider's file, never trusted.
                log.warning(
                    "tile cache entry %s unreadable (%s): decoding it again", path, describe(error)
                )
        _save_atomic(path, produce())
        return np.load(path, mmap_mode="r", allow_pickle=False)
