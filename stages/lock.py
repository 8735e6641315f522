"""Locks on the data root, with flock(2): stages hold it shared while they move a batch, a snapshot holds
it exclusive. The kernel drops a dead process's lock, so a lock can never be left stale; the holders are read
from /proc/locks when a wait times out, to name who holds it.

Each stage also holds its own exclusive stage lock for its whole run: two runs of the same stage never
overlap, which is what makes journal recovery at start-up safe.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from typing import Callable

from common import poll
from stages.layout import DataRoot


class LockTimeout(Exception):
    pass


class StageBusy(Exception):
    pass


def holders(path: Path) -> list[int]:
    """PIDs holding a flock on path, from /proc/locks."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return []
    want = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    pids = []
    try:
        with open("/proc/locks") as fh:
            for line in fh:
                parts = line.split()
                if "->" in parts:  # a waiter, not a holder
                    continue
                if len(parts) >= 6 and parts[1] == "FLOCK" and parts[5] == want:
                    pids.append(int(parts[4]))
    except OSError:
        pass
    return pids


def _describe(pids: list[int]) -> str:
    out = []
    for pid in pids:
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            cmd = "?"
        out.append(f"pid {pid} ({cmd[:80]})")
    return ", ".join(out) or "unknown holders"


class Lock:
    def __init__(self, path: Path, exclusive: bool, timeout: float, what: str):
        self.path = path
        self.exclusive = exclusive
        self.timeout = timeout
        self.what = what
        self.fd: int | None = None
        self.waited = 0.0

    def acquire(self) -> "Lock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        mode = (fcntl.LOCK_EX if self.exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
        start = time.monotonic()

        def taken() -> bool:
            try:
                fcntl.flock(self.fd, mode)
                return True
            except BlockingIOError:
                return False

        def timed_out(_message: str) -> LockTimeout:
            who = _describe(holders(self.path))
            os.close(self.fd)
            self.fd = None
            return LockTimeout(f"waited {self.timeout:.0f}s for the {self.what} on {self.path.parent}; held by {who}")

        poll.until(taken, f"the {self.what}", self.timeout, interval=0.01, max_interval=0.2, error=timed_out)
        self.waited = time.monotonic() - start
        return self

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self if self.fd is not None else self.acquire()

    def __exit__(self, *exc):
        self.release()


def shared(dr: DataRoot, timeout: float) -> Lock:
    return Lock(dr.lock_file, exclusive=False, timeout=timeout, what="shared lock")


def exclusive(dr: DataRoot, timeout: float) -> Lock:
    return Lock(dr.lock_file, exclusive=True, timeout=timeout, what="exclusive lock")


def stage(dr: DataRoot, name: str, wait: Callable[[], None] | None = None) -> Lock:
    """The stage's own lock; fails at once when another run of the same stage holds it, or with wait, calls
    wait() (which pauses a little) until that run is over."""
    lk = Lock(dr.stage_lock_file(name), exclusive=True, timeout=0, what=f"{name} stage lock")
    while True:
        try:
            return lk.acquire()
        except LockTimeout:
            if wait is None:
                raise StageBusy(f"another {name} run is in progress ({_describe(holders(lk.path))})") from None
            wait()
