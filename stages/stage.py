"""The start of every stage run: its own stage lock for the whole run, then, under the shared data-root
lock, recovery of its interrupted transactions and removal of dead processes' temporary files."""

from __future__ import annotations

import contextlib
from typing import Iterator

from common import atomic
from stages import journal, lock
from stages.cli import Summary
from stages.layout import DataRoot


@contextlib.contextmanager
def running(cfg, dr: DataRoot, name: str, temp_dirs: tuple[str, ...] = ()) -> Iterator[Summary]:
    summary = Summary(name)
    dr.ensure()
    with lock.stage(dr, name):
        with lock.shared(dr, cfg.pipeline.lock_timeout):
            summary.recovered = journal.recover(dr, name)
            atomic.clean_temporaries(dr.root, recursive=False)  # the journal markers' temporaries
            for d in temp_dirs:
                atomic.clean_temporaries(dr.state(d))
        yield summary
    summary.finish()
