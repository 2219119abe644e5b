"""Atomic file writes: a reader sees the old file or the new one, never a partial one.

One helper, `atomic_output`, writes every file MissBench writes whole: a temporary name of its
own beside the destination, renamed into place when complete, removed on failure, Ctrl-C or
SIGTERM; what a killed process (SIGKILL, power loss) leaves is removed by the next command
(`remove_orphans`). `check_outputs` refuses a command's outputs that could not be written,
before any work.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import gzip
import hashlib
import json
import logging
import math
import os
import shutil
import signal
import stat
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import torch

from benchmark.system.confine import write_target
from benchmark.system.errors import BenchmarkError

log = logging.getLogger(__name__)

_UMASK = os.umask(0)
os.umask(_UMASK)


FULL_DISK_MIB = 16
"""Free space below which a failed write is reported as a full file system."""


TEMPORARY = ".tmp"
"""Suffix of every temporary file a write leaves beside its destination until it is renamed:
`.<name>.<pid>.<random>.tmp`, so two outputs of one command (or two writers of one file) never
share a temporary name, and an orphan names the process that left it."""

_live: dict[str, int] = {}
"""Temporary files being written now -> the process writing them (a forked child inherits the
dict, and must not remove its parent's files)."""


@contextmanager
def atomic_output(path: Path | str) -> Iterator[Path]:
    """A fresh temporary path beside `path` for a writer that takes a file name (GDAL,
    matplotlib, NumPy memory maps, `open`): when the block ends normally the file is flushed
    to disk and renamed over `path`, so a reader sees the old file or the new one, never a
    partial one; on any exception (Ctrl-C included) or SIGTERM it is removed.

    Every file MissBench writes whole goes through here (`atomic_write_*` included). A
    writer that takes a file name must be told the format: the name ends in `.tmp`.
    """
    path = Path(path)
    write_target(path)
    if path.is_dir():
        raise BenchmarkError(f"{path}: is a directory; expected the name of a file to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=TEMPORARY
    )
    os.close(fd)
    _live[name] = os.getpid()
    _remove_on_sigterm()
    try:
        os.chmod(name, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are meant to be shared
        yield Path(name)
        _fsync(name)
        os.replace(name, path)
    except BaseException as error:
        # Measured before the partial file goes. torch.save reports a short write as
        # "enforce fail ... unexpected pos", so a full disk is named here (bad input found
        # while writing is the user's error, whatever the free space).
        failed = isinstance(error, Exception) and not isinstance(error, BenchmarkError)
        free_mib = _free_mib(path.parent) if failed else math.inf
        Path(name).unlink(missing_ok=True)
        if free_mib < FULL_DISK_MIB:
            raise OSError(
                errno.ENOSPC,
                f"could not write {path}: its file system is full ({free_mib:.0f} MiB free); "
                "the previous version, if any, is intact",
            ) from error
        raise
    finally:
        _live.pop(name, None)


def _fsync(name: str) -> None:
    """Flush a closed file's data to disk before it is renamed into place."""
    fd = os.open(name, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic(path: Path, write: Callable[[BinaryIO], object]) -> None:
    with atomic_output(path) as tmp, open(tmp, "wb") as handle:
        write(handle)


def _remove_on_sigterm() -> None:
    """Remove this process's temporary files when SIGTERM ends it.

    Ctrl-C raises KeyboardInterrupt, which `atomic_output` cleans up after like any error;
    SIGTERM's default action ends the process without unwinding, so a handler removes them
    first and then lets the signal end the process as before (same exit status). Installed
    only from the main thread and only over the default action: a handler someone else set
    stays theirs (their temporary files are then the next command's orphans).
    """
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return
    signal.signal(signal.SIGTERM, _on_sigterm)


def _on_sigterm(signum: int, frame: object) -> None:
    pid = os.getpid()
    for name, owner in list(_live.items()):
        if owner == pid:
            with contextlib.suppress(OSError):
                os.unlink(name)
    signal.signal(signum, signal.SIG_DFL)
    os.kill(pid, signum)


def remove_orphans(
    directory: Path, older_than_s: float = 0.0, name: str | None = None, dead_writers: bool = False
) -> list[Path]:
    """Remove temporary files (`.<name>.*.tmp`) that killed writers left in `directory`.

    With `older_than_s` 0 every one goes (a run directory, whose writers all hold its lock);
    otherwise only those older than that (folders written without a lock: a live write takes
    seconds), and, with `dead_writers`, also those whose writer's process (in the name) has
    ended on this machine: for the outputs of a command run on one machine (`predict`),
    never for folders that processes on other machines write too. `name` limits the sweep to
    one destination's temporary files.
    """
    removed = []
    now = time.time()
    pattern = f".{glob.escape(name)}.*{TEMPORARY}" if name else f".*{TEMPORARY}"
    for path in Path(directory).glob(pattern):
        try:
            stale = not older_than_s or now - path.stat().st_mtime >= older_than_s
            if not (stale or (dead_writers and _writer_ended(path))):
                continue
            path.unlink()
        except OSError:
            continue
        removed.append(path)
    if removed:
        log.info("%s: removed %d file(s) left by an interrupted write", directory, len(removed))
    return removed


def _writer_ended(path: Path) -> bool:
    """Whether the process named in a temporary file's name (`.<name>.<pid>.<random>.tmp`) is
    no longer running here (False when the name carries no process id)."""
    parts = path.name[: -len(TEMPORARY)].rsplit(".", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid() or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # PermissionError: alive, another user's
        return False
    return False


def check_outputs(
    outputs: Mapping[str, Path | None],
    force: bool = False,
    reads: Mapping[str, Path] | None = None,
    make_folders: bool = False,
) -> None:
    """Refuse, before any work, files a command could not write where the user asked: two
    outputs naming one file, an output that is a folder or another non-regular file, one that
    exists (without `force`), one the command also reads (`reads`, named like `outputs`), one
    whose folder is absent
    or refuses new files (probed for real: `os.access` says yes to root on read-only file
    systems), or one outside the folders the command may write to.

    `outputs` maps each output's flag (`--out`) to its path (None: not asked for). With
    `make_folders`, an absent folder is one the write will create: its nearest existing
    ancestor is probed instead.
    """
    seen = {os.path.realpath(path): flag for flag, path in (reads or {}).items()}
    for flag, path in outputs.items():
        if path is None:
            continue
        path = Path(path)
        where = f"{flag} {path}"
        key = os.path.realpath(path)
        if key in seen:
            raise BenchmarkError(
                f"{where}: the same file as {seen[key]}; give every output its own file name"
            )
        seen[key] = flag
        if path.is_dir():
            raise BenchmarkError(
                f"{where}: is a directory; expected the name of a file to write "
                f"(e.g. {path / 'labels.tif'})"
            )
        if path.exists() and not path.is_file():
            raise BenchmarkError(f"{where}: exists and is not a regular file; choose another name")
        if path.exists() and not force:
            raise BenchmarkError(f"{where}: exists; choose another name or pass --force")
        folder = path.parent
        if make_folders:
            folder = next((p for p in (folder, *folder.parents) if p.exists()), Path("."))
        if not folder.is_dir():
            state = "is not a folder" if folder.exists() else "does not exist"
            raise BenchmarkError(f"{where}: its folder {folder} {state}")
        write_target(path)
        _probe_new_files(folder, where, f"its folder {folder}")


def _free_mib(folder: Path) -> float:
    """Return the free space under `folder` in MiB.

    Infinity when it cannot be read: the write's own error is then the one to report.
    """
    try:
        return shutil.disk_usage(folder).free / 2**20
    except OSError:
        return math.inf


def check_output_folder(folder: Path | str, what: str) -> None:
    """Refuse, before any work, a folder a command would write its files into but cannot:
    one that is a file, or whose nearest existing ancestor is a file or refuses new files
    (probed for real). `what` names it in the one-line error (`--out`, `report folder`)."""
    folder = Path(folder)
    where = f"{what} {folder}"
    if folder.exists() and not folder.is_dir():
        raise BenchmarkError(f"{where}: exists and is not a folder")
    probe = next((p for p in (folder, *folder.parents) if p.exists()), Path("."))
    if not probe.is_dir():
        raise BenchmarkError(f"{where}: cannot be made, {probe} is a file")
    write_target(folder)
    _probe_new_files(probe, where, str(probe))


def _probe_new_files(folder: Path, where: str, named: str) -> None:
    """Refuse `where` in one line unless `folder` takes a new file, tried for real: permission
    bits do not tell (root ignores them, a read-only mount or /proc refuses regardless)."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise BenchmarkError(
            f"{where}: not writable ({named} refuses new files: "
            f"{error.strerror or type(error).__name__})"
        ) from None


DIGEST_CHUNK = 1 << 20
"""Bytes read at a time while hashing a file (memory stays flat for any file size)."""

_digests: dict[tuple[str, int, int, int, int], str] = {}


def content_digest(path: Path | str) -> str:
    """`sha256:<hex>` of a regular file's bytes, read in chunks.

    Cached within the process by (resolved path, device, inode, size, modification time), so
    a sweep of many runs over one weights file reads it once, and a file rewritten since is
    read again. Anything but a regular file (a FIFO would block forever) is refused.
    """
    real = os.path.realpath(path)
    info = os.stat(real)
    if not stat.S_ISREG(info.st_mode):
        raise BenchmarkError(f"{path}: not a regular file; expected a file to read")
    key = (real, info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
    if key not in _digests:
        digest = hashlib.sha256()
        with open(real, "rb") as handle:
            while chunk := handle.read(DIGEST_CHUNK):
                digest.update(chunk)
        _digests[key] = f"sha256:{digest.hexdigest()}"
    return _digests[key]


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
