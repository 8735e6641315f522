"""Durable file operations: write to a temporary name, fsync, rename, fsync the folder.

Temporary files are dot-files in the destination folder (`.name.tmp-<pid>-<n>`), so the web mirror never
serves them and a rename is atomic (same file system). `clean_temporaries` removes those left by a dead
process.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from pathlib import Path
from typing import IO, Iterator

_counter = itertools.count()
TMP_MARK = ".tmp-"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_path(final: Path) -> Path:
    return final.parent / f".{final.name}{TMP_MARK}{os.getpid()}-{next(_counter)}"


@contextlib.contextmanager
def writing(tmp: Path, mode: str = "wb") -> Iterator[IO]:
    """Open tmp for writing; flush and fsync it on success, delete it on failure."""
    tmp.parent.mkdir(parents=True, exist_ok=True)
    fh = open(tmp, mode, encoding=None if "b" in mode else "utf-8")
    try:
        yield fh
        fh.flush()
        os.fsync(fh.fileno())
        fh.close()
    except BaseException:
        fh.close()
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def publish(tmp: Path, final: Path) -> None:
    """Rename a durable temporary file into place and make the rename durable."""
    final.parent.mkdir(parents=True, exist_ok=True)
    os.rename(tmp, final)
    fsync_dir(final.parent)


def append_line(path: Path, line: bytes, mode: int = 0o600) -> None:
    """Append one line (ending in a newline) to path with a single write() under O_APPEND, then fsync: lines
    of concurrent writers never interleave, and a crash leaves at most a torn last line, which readers skip.
    A new file gets mode and its folder is fsynced, so the file itself survives the crash too."""
    assert line.endswith(b"\n"), "a line ends with a newline"
    new = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, mode)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
    if new:
        fsync_dir(path.parent)


def write_bytes(final: Path, data: bytes, mode: int | None = None) -> None:
    """data in final, atomically; with mode, the file gets it (whatever the umask) before it is in place."""
    tmp = temp_path(final)
    with writing(tmp) as fh:
        fh.write(data)
        if mode is not None:
            os.fchmod(fh.fileno(), mode)
    publish(tmp, final)


def move(src: Path, dst: Path) -> None:
    """Atomic move inside the data root (one file system): rename, then fsync both folders."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.rename(src, dst)
    fsync_dir(dst.parent)
    if src.parent != dst.parent:
        fsync_dir(src.parent)


def remove(path: Path) -> None:
    """Unlink and make the unlink durable; a file already gone is fine (idempotent recovery)."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
        fsync_dir(path.parent)


def is_temporary(path: Path) -> bool:
    return path.name.startswith(".") and TMP_MARK in path.name


def clean_temporaries(root: Path, recursive: bool = True) -> list[Path]:
    """Delete temporary files under root (or only in root) left by processes that died mid-write."""
    removed = []
    if not root.exists():
        return removed
    walk = os.walk(root) if recursive else [(str(root), [], [p.name for p in root.iterdir() if p.is_file()])]
    for dirpath, _, files in walk:
        for name in files:
            p = Path(dirpath) / name
            if is_temporary(p):
                pid = _tmp_pid(p)
                if pid is not None and _alive(pid):
                    continue
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
                removed.append(p)
    return removed


def _tmp_pid(p: Path) -> int | None:
    try:
        return int(p.name.rsplit(TMP_MARK, 1)[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def _alive(pid: int) -> bool:
    """A running process (a zombie, killed but not yet reaped, is dead)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")
