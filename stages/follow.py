"""A stage that follows its inputs (`--follow`): instead of one run, a run whenever inputs wait, so that a report
the subscriber pulled (stages/subscribe.py) is sanitized and imported within seconds, not at the next scheduled
pipeline run. Each run is the stage's ordinary run (its own stage lock, recovery, the shared lock per batch),
so a scheduled run of the same stage waits for it and finds nothing left, or runs first and this one waits.

When to run (Due, pure): when something waits and what waits is not what waited after the last run (a new
input; the pipeline writes every file under a new name), or, when it is the same, once a backoff has passed
(inputs that failed are tried again, 1 s doubling to MAX_BACKOFF, as the scheduled pipeline would). The
inputs are looked at every `interval` seconds (a listing of the state directories the stage reads). Each
run's Summary is printed as one JSON line. SIGTERM (a container stopped) ends it between runs.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from common import log
from stages.layout import DataRoot
from stages.lock import LockTimeout, StageBusy

_log = log.get("follow")
MAX_BACKOFF = 60.0


@dataclass
class Due:
    """Whether a follower runs now, from what waits (a sorted tuple of names) and the clock. Pure."""
    backoff: float = 1.0
    last: tuple = ()
    retry_at: float = 0.0
    tries: int = 0

    def now(self, waiting: tuple, clock: float) -> bool:
        if not waiting:
            return False
        return waiting != self.last or clock >= self.retry_at

    def ran(self, waiting_after: tuple, clock: float) -> None:
        """After a run: what still waits is retried after the backoff, which doubles while it stays the same."""
        self.tries = self.tries + 1 if waiting_after and waiting_after == self.last else 0
        self.last = waiting_after
        self.retry_at = clock + min(MAX_BACKOFF, self.backoff * (2 ** self.tries))


def follow(cfg, dr: DataRoot, run: Callable, waiting: Callable[[DataRoot], tuple], interval: float = 0.5,
           stop: threading.Event | None = None) -> int:
    """Run `run(cfg, dr) -> Summary` whenever Due says so, until stop is set (or SIGTERM); returns 0."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    due = Due()
    _log.info("following %s (every %.1fs)", dr.root, interval)
    while not stop.is_set():
        now_waiting = waiting(dr)
        if due.now(now_waiting, time.monotonic()):
            try:
                summary = run(cfg, dr)
                print(summary.to_json(indent=None), flush=True)
            except (LockTimeout, StageBusy) as exc:
                _log.info("not now: %s", exc)
            due.ran(waiting(dr), time.monotonic())
        stop.wait(interval)
    _log.info("stopped")
    return 0


def names(dr: DataRoot, *states: str) -> tuple:
    """What waits in these state directories, as a sorted tuple of paths (links and the like included: the
    stage quarantines them)."""
    return tuple(str(p) for state in states for p, _ in dr.entries(state))
