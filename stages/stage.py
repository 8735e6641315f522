"""The start of every stage run: its own stage lock for the whole run (waiting while another run of the stage
holds it), then, under the shared data-root
lock, recovery of its interrupted transactions and removal of dead processes' temporary files."""

from __future__ import annotations

import contextlib
import time
from typing import Callable, Iterator

from common import atomic
from stages import journal, lock
from stages.cli import Summary
from stages.layout import DataRoot


def patient(name: str, timeout: float) -> Callable[[], None]:
    """A wait for another run's stage lock: a short pause each time, lock.StageBusy once timeout has passed."""
    deadline = time.monotonic() + timeout

    def wait() -> None:
        if time.monotonic() >= deadline:
            raise lock.StageBusy(f"another {name} run has held its stage lock for more than {timeout:.0f}s")
        time.sleep(0.2)
    return wait


@contextlib.contextmanager
def running(cfg, dr: DataRoot, name: str, temp_dirs: tuple[str, ...] = (), as_stage: str | None = None,
            wait: Callable[[], None] | None = None) -> Iterator[Summary]:
    """A run of the stage name. as_stage: a run in that stage's name (its lock, its transactions recovered;
    the subscriber pulls as sync); wait: called while another run holds the lock (default: a pause, until
    pipeline.lock_timeout has passed: lock.StageBusy; a scheduled run waits for a follower's run, stages/follow.py)."""
    summary = Summary(name)
    dr.ensure()
    with lock.stage(dr, as_stage or name, wait or patient(as_stage or name, cfg.pipeline.lock_timeout)):
        with lock.shared(dr, cfg.pipeline.lock_timeout):
            summary.recovered = journal.recover(dr, as_stage or name)
            atomic.clean_temporaries(dr.root, recursive=False)  # the journal markers' temporaries
            for d in temp_dirs:
                atomic.clean_temporaries(dr.state(d))
        yield summary
    summary.finish()
