"""Atomic file writes: a reader sees the old file or the new one, never a partial one."""

from __future__ import annotations

import errno
import gzip
import json
import math
import os
import shutil
import tempfile
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO

import torch

from benchmark.system.confine import write_target

_UMASK = os.umask(0)
os.umask(_UMASK)


FULL_DISK_MIB = 16
"""Free space below which a failed write is reported as a full file system."""


def _atomic(path: Path, write: Callable[[BinaryIO], object]) -> None:
    write_target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are meant to be shared
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        # Measured before the partial file goes. torch.save reports a short write as
        # "enforce fail ... unexpected pos", so a full disk is named here.
        free_mib = _free_mib(path.parent) if isinstance(error, Exception) else math.inf
        Path(tmp).unlink(missing_ok=True)
        if free_mib < FULL_DISK_MIB:
            raise OSError(
                errno.ENOSPC,
                f"could not write {path}: its file system is full ({free_mib:.0f} MiB free); "
                "the previous version, if any, is intact",
            ) from error
        raise


def _free_mib(folder: Path) -> float:
    """Return the free space under `folder` in MiB.

    Infinity when it cannot be read: the write's own error is then the one to report.
    """
    try:
        return shutil.disk_usage(folder).free / 2**20
    except OSError:
        return math.inf


def load_tensors(path: Path) -> Any:
    """Read tensors saved as `.safetensors` or with `torch.save`, on the CPU.

    Never unpickles code (`weights_only`); encoder weights given by path and a run's selected
    weights are read alike.
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    return torch.load(path, map_location="cpu", weights_only=True)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    _atomic(Path(path), lambda h: h.write(data))


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    _atomic(Path(path), lambda h: h.write(text.encode("utf-8")))


def atomic_write_json(path: Path, obj: Any) -> None:
    """Write `obj` as indented, key-sorted JSON to `path` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def atomic_write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Write `rows` as JSON lines to `path` atomically."""
    text = "".join(json.dumps(r, sort_keys=True, default=str) + "\n" for r in rows)
    atomic_write_text(path, text)


def atomic_torch_save(obj: Any, path: Path) -> None:
    """`torch.save` `obj` to `path` atomically."""
    _atomic(Path(path), lambda h: torch.save(obj, h))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Read a JSON-lines file of objects (blank lines skipped); a `.gz` one is decompressed as
    it is read (frozen folders keep their records gzipped). Any damaged line is a ValueError:
    for a file that is whole or nothing (`read_jsonl_lines` keeps the intact lines)."""
    rows, damaged = read_jsonl_lines(path)
    if damaged:
        raise ValueError(f"{Path(path).name}: {len(damaged)} damaged line(s)")
    return rows


def read_jsonl_lines(
    path: Path, intact: Callable[[dict[str, Any]], bool] = lambda row: True
) -> tuple[list[dict[str, Any]], list[bytes]]:
    """The lines of a JSON-lines file (`.gz` decompressed; blank lines skipped), split into
    the rows that are JSON objects `intact` accepts and the raw bytes of every other line
    (not UTF-8, not JSON, not an object, or refused): one reader for files whose damaged lines
    damage the whole file and for files whose lines stand alone (`corrupted.jsonl`).

    A gzipped file whose stream breaks off keeps the lines before the break (the broken line
    is damaged, any after it are lost). A missing file or a directory is an OSError.
    """
    data = Path(path).read_bytes()
    if Path(path).suffix == ".gz":
        data = _gunzip(data)
    rows, damaged = [], []
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            row = json.loads(line.decode("utf-8"))
        except ValueError:  # UnicodeDecodeError and JSONDecodeError alike
            row = None
        if isinstance(row, dict) and intact(row):
            rows.append(row)
        else:
            damaged.append(line)
    return rows, damaged


def _gunzip(data: bytes) -> bytes:
    """`data` decompressed, or as much of it as decompresses before the stream breaks off."""
    try:
        return gzip.decompress(data)
    except (EOFError, OSError, zlib.error):
        engine = zlib.decompressobj(wbits=31)
        parts = []
        for start in range(0, len(data), 1 << 16):
            try:
                parts.append(engine.decompress(data[start : start + (1 << 16)]))
            except zlib.error:
                break
        return b"".join(parts)


def gzip_bytes(data: bytes) -> bytes:
    """`data` gzipped reproducibly: no timestamp or file name in the header, so freezing the
    same records twice gives the same bytes (and no diff in git)."""
    return gzip.compress(data, compresslevel=9, mtime=0)
