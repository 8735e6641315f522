"""Inputs that failed, and poison: an input on which a stage fails twice in a row for the same reason.

A failure that belongs to one input but is not known to be final (an unexpected error while reading or
converting it, a database write that did not add up, a worker process that died on it) leaves the input
where it is and is recorded in `<data root>/.failures-<stage>.json`: {input: {reason, error, time}}. The
next run tries it again; if it fails again for the same reason, the stage quarantines it as `poison` with
both errors in its reason file, instead of failing on it every run forever. A success, or a different
reason, starts the count again. The file is rewritten atomically and only by the stage holding its own
stage lock.
"""

from __future__ import annotations

import errno
import json
from dataclasses import dataclass, field
from pathlib import Path

from common import atomic
from stages import journal
from stages.layout import DataRoot

POISON = "poison"
# Errors that are the machine's, not the input's: they stop the stage before it changes anything more.
INFRA_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.ENOMEM, errno.EMFILE, errno.ENFILE})


@dataclass
class Failures:
    path: Path
    records: dict[str, dict] = field(default_factory=dict)
    changed: bool = False

    @classmethod
    def load(cls, dr: DataRoot, stage: str) -> "Failures":
        path = dr.root / f".failures-{stage}.json"
        try:
            records = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            records = {}
        return cls(path, records if isinstance(records, dict) else {})

    def record(self, source: str, reason: str, error: str) -> dict | None:
        """Record this run's failure of source. Returns the previous failure when it had the same reason
        (the input is poison: the caller quarantines it and calls `clear`), else None."""
        previous = self.records.get(source)
        now = {"reason": reason, "error": error[:1000], "time": journal.now()}
        self.records[source] = now
        self.changed = True
        if previous is not None and previous.get("reason") == reason:
            return previous
        return None

    def clear(self, source: str) -> None:
        if self.records.pop(source, None) is not None:
            self.changed = True

    def save(self) -> None:
        if self.changed:
            atomic.write_bytes(self.path, (json.dumps(self.records, indent=1, sort_keys=True) + "\n").encode())
            self.changed = False


def handle(fails: Failures, summary, source: str, reason: str, error: str, set_aside) -> None:
    """One input failed this run: record it (the summary names it, the next run tries again), or, when it
    failed the run before for the same reason, call set_aside(previous) to quarantine it as poison."""
    previous = fails.record(source, reason, error)
    if previous is None:
        summary.fail(source, reason, error)
        return
    fails.clear(source)
    set_aside(previous)


def details(stage: str, previous: dict, reason: str, error: str) -> dict:
    """The reason file's details for a poison input."""
    return {"stage": stage, "failure_reason": reason,
            "errors": [previous, {"reason": reason, "error": error[:1000], "time": journal.now()}]}
