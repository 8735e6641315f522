"""Opening a raw report: plain, gzip, or a tar archive (possibly misnamed .gz), detected by content.

Tar members are read as streams, never extracted: their names (which may hold `../`) are only used, after
cleaning, in messages and quarantine names. Decompressed size is capped, so a compression bomb is refused
as too large without filling memory or disk.
"""

from __future__ import annotations

import errno
import gzip
import io
import os
import re
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator

from stages import cut
from stages.layout import REGULAR, kind_of
from stages.quarantine import NOT_REGULAR


class InputError(Exception):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


class TooLarge(InputError):
    def __init__(self, message: str):
        super().__init__("too_large", message)


def open_input(path: Path) -> IO[bytes]:
    """Open an input for reading without following a link, and only if it is a regular file with one name
    (checked on the open descriptor, so a file swapped for a link after it was listed is refused too; a
    FIFO is opened non-blocking and refused, never read)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InputError(NOT_REGULAR, f"{path.name} is a symbolic link; not read") from None
        raise
    st = os.fstat(fd)
    names = cut.names_of(path) if st.st_nlink > 1 else None  # a second name may be a set's cut (stages/cut.py)
    kind = kind_of(st, names.outside(st, lambda: os.fstat(fd)) if names is not None else None)
    if kind != REGULAR:
        os.close(fd)
        raise InputError(NOT_REGULAR, f"{path.name} is a {kind}; not read")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


class LimitedReader(io.RawIOBase):
    """Reads at most `limit` bytes from a stream; one more byte raises TooLarge."""

    def __init__(self, inner: IO[bytes], limit: int, what: str):
        self.inner, self.limit, self.what, self.count = inner, limit, what, 0

    def readable(self):
        return True

    def readinto(self, b):
        data = self.inner.read(len(b))
        if not data:
            return 0
        self.count += len(data)
        if self.count > self.limit:
            raise TooLarge(f"{self.what} is larger than the limit of {self.limit} bytes")
        b[: len(data)] = data
        return len(data)


@dataclass
class Member:
    name: str              # a clean, printable name for messages and quarantine files
    stream: IO[bytes]      # buffered binary stream of the report's bytes
    in_archive: bool = False


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def clean_name(name: str) -> str:
    base = name.replace("\\", "/").rstrip("/").split("/")[-1]
    base = _UNSAFE.sub("_", base).lstrip(".")
    return base[:200] or "unnamed"


def _is_gzip(head: bytes) -> bool:
    return head[:2] == b"\x1f\x8b"


def _is_tar(head: bytes) -> bool:
    return len(head) >= 262 and head[257:262] == b"ustar"


def open_members(path: Path, limit: int) -> Iterator[Member]:
    """Yield the report(s) a raw file holds: itself (plain or gunzipped) or each regular tar member."""
    with open_input(path) as raw:
        head = raw.read(512)
        raw.seek(0)
        stream: IO[bytes] = raw
        if _is_gzip(head):
            stream = io.BufferedReader(LimitedReader(gzip.GzipFile(fileobj=raw), limit, path.name), 1 << 16)
            try:
                head = stream.peek(512)[:512]
            except (OSError, EOFError, zlib.error) as exc:
                raise InputError("unparseable", f"{path.name}: not a valid gzip file ({exc})") from None
        else:
            stream = io.BufferedReader(LimitedReader(raw, limit, path.name), 1 << 16)
        if _is_tar(head):
            yield from _tar_members(stream, path.name, limit)
        else:
            yield Member(clean_name(path.name), stream)


def _tar_members(stream: IO[bytes], outer: str, limit: int) -> Iterator[Member]:
    try:
        tar = tarfile.open(fileobj=stream, mode="r|")
        found = False
        for info in tar:
            if not info.isfile():
                continue
            if info.size > limit:
                raise TooLarge(f"{outer}: member {clean_name(info.name)} is larger than the limit")
            fh = tar.extractfile(info)
            if fh is None:
                continue
            found = True
            yield Member(f"{clean_name(outer)}--{clean_name(info.name)}", io.BufferedReader(fh, 1 << 16), True)
        if not found:
            raise InputError("empty", f"{outer}: tar archive holds no regular file")
    except tarfile.TarError as exc:
        raise InputError("unparseable", f"{outer}: broken tar archive ({exc})") from None
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError("unparseable", f"{outer}: broken compressed data ({exc})") from None
