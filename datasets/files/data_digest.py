"""One content digest of the data files a dataset reads, so that a run's id changes with them.

A finished run is found again by its id (`RunSpec.run_id`): if a user's tile could change
without the id changing, a rerun would silently reuse the old number. `data_digest` hashes,
in the order given, each file's labels (split, tile id, role), its path relative to the data
folder (moving the whole folder keeps the id) and its bytes.

Hashing gigabytes on every sweep is too slow, so each file's digest is kept in a small JSON
cache (`DIGESTS_FILE`, beside the decoded tiles), keyed by absolute path, size and
modification time in ns, and guarded by a file lock for concurrent sweeps: an unchanged file
is never reopened, a changed size or time rehashes it. A file modified less than `RACY_NS`
before it was hashed is not cached: rewritten again within the file system's timestamp
resolution, it could keep its size and time with other bytes. The cache is disposable: an
unreadable one is rebuilt, and without a usable one every file is hashed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import filelock

from benchmark.api import (
    BenchmarkError,
    DatasetNotFoundError,
    atomic_write_json,
    content_digest,
    describe,
    write_target,
)

log = logging.getLogger(__name__)

DIGESTS_FILE = "file_digests.json"
CACHE_VERSION = 1
RACY_NS = 2 * 10**9
"""Files modified this recently (ns) are hashed but not cached (coarse file-system clocks)."""
LOCK_WAIT_S = 60.0
"""How long to wait for another process's lock before hashing without the cache."""

Entry = list[Any]
"""A cached file: [size, mtime_ns, "sha256:<hex>"] (JSON has no tuples)."""


def data_digest(base: Path, files: Iterable[tuple[Sequence[str], Path]], cache: Path) -> str:
    """`sha256:<hex>` of `files` ((labels, path) pairs, in order): each file's labels, its
    path relative to `base` and the digest of its bytes (cached in the JSON file `cache`).

    A file that is absent is the one-line `DatasetNotFoundError` (exit status 2).
    """
    base = Path(base)
    with _locked(Path(cache)) as usable:
        known = _load(Path(cache)) if usable else {}
        fresh: dict[str, Entry] = {}
        rows = []
        for labels, path in files:
            real, entry = _file_entry(Path(path), known)
            fresh[real] = entry
            rows.append([*labels, Path(path).relative_to(base).as_posix(), entry[2]])
        if usable:
            _save(Path(cache), known, fresh)
    text = json.dumps(rows, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def _file_entry(path: Path, known: dict[str, Entry]) -> tuple[str, Entry]:
    """(absolute path, [size, mtime_ns, digest]): the cached digest while size and modification
    time are unchanged, else the file hashed again."""
    real = os.path.realpath(path)
    try:
        info = os.stat(real)
        cached = known.get(real)
        if cached is not None and cached[:2] == [info.st_size, info.st_mtime_ns]:
            return real, cached
        return real, [info.st_size, info.st_mtime_ns, content_digest(real)]
    except FileNotFoundError:
        raise DatasetNotFoundError(
            f"{path}: no such file; expected the data file the card names (it vanished while "
            "the run's id was computed)"
        ) from None
    except OSError as error:
        raise BenchmarkError(
            f"{path}: cannot be read ({describe(error)}); expected a readable data file"
        ) from None


@contextlib.contextmanager
def _locked(cache: Path) -> Iterator[bool]:
    """Hold the cache's lock; yield False (work without the cache) when it cannot be had."""
    lock: filelock.BaseFileLock | None = None
    try:
        write_target(cache.parent).mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(write_target(cache.with_name(cache.name + ".lock")))
        lock.acquire(timeout=LOCK_WAIT_S)
    # filelock.Timeout is an OSError; older filelock raises NotImplementedError without flock
    except (OSError, NotImplementedError) as error:
        log.warning(
            "file digest cache %s unusable (%s): hashing every file", cache, describe(error)
        )
        lock = None
    try:
        yield lock is not None
    finally:
        if lock is not None:
            lock.release()


def _load(cache: Path) -> dict[str, Entry]:
    try:
        data = json.loads(cache.read_text())
        if data.get("version") == CACHE_VERSION and isinstance(data.get("files"), dict):
            return data["files"]
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, AttributeError) as error:
        log.warning("file digest cache %s unreadable (%s): rebuilding it", cache, describe(error))
    return {}


def _save(cache: Path, known: dict[str, Entry], fresh: dict[str, Entry]) -> None:
    """Write the cache if it changed: the digests just computed (but those of files modified
    too recently to trust their time) and the earlier ones of files that still exist."""
    now = time.time_ns()
    kept = {k: v for k, v in known.items() if k not in fresh and os.path.exists(k)}
    kept.update({k: v for k, v in fresh.items() if now - v[1] >= RACY_NS})
    if kept == known:
        return
    try:
        atomic_write_json(cache, {"version": CACHE_VERSION, "files": kept})
    except OSError as error:
        log.warning("file digest cache %s not written (%s)", cache, describe(error))
