"""The one way to wait for something: call a check until it holds, or give up at a timeout naming what was
awaited. Standard library only (the images run it too: database/db.py waits for the database with it)."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

from common.errors import DrError

T = TypeVar("T")


class WaitTimeout(DrError):
    """What was awaited did not happen in time."""


def until(check: Callable[[], T], what: str, timeout: float, *, interval: float = 0.5,
          max_interval: float | None = None, retry: tuple[type[BaseException], ...] = (),
          error: Callable[[str], BaseException] = WaitTimeout) -> T:
    """Call check() until it returns something true, and return that; check is called at least once.

    check raises to stop waiting at once (a final failure: a container that exited). Exceptions of the
    types in `retry` count as "not yet", and the last one is named when the wait gives up. At the timeout
    (seconds), raises error(message), the message naming `what` ("dockerd to answer"), the seconds waited
    and the last retried error; error may build the caller's own exception (with a log tail, say).
    The pause between checks is interval; with max_interval it doubles after each check up to that."""
    start = time.monotonic()
    last: BaseException | None = None
    while True:
        try:
            result = check()
        except retry as exc:
            last, result = exc, None
        if result:
            return result
        waited = time.monotonic() - start
        if waited >= timeout:
            raise error(f"gave up waiting for {what} after {waited:.0f}s"
                        + (f" (last error: {last})" if last is not None else ""))
        time.sleep(max(0.0, min(interval, timeout - waited)))
        if max_interval is not None:
            interval = min(interval * 2, max_interval)
