"""What the status model reads in folders rather than in the job history: the inputs waiting in the state
directories, the quarantine, the journal's newest entry and the subscriber's notes, the runbook drills' newest report, the data root's
free space. Plain values out (dr/watch/model.py turns them into figures); nothing is written.

Cheap on purpose: a walk of raw/, staging/, reports/ (stages/layout.DataRoot.waiting, which the jobs' history
lines count with too) and quarantine/ (one lstat per entry), the journal's last few kilobytes, one JSON file per
runbook drill.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path
from typing import Iterator

from common.records import RecordError
from dr.drills.drill_reports import RunbookDrillReport
from stages.failures import POISON
from stages.layout import DataRoot

NOTE = ".reason.json"  # beside every quarantined input (stages/quarantine.py; sync's poison: the note alone)
TAIL = 64 << 10  # the journal is read backwards this much at a time


def utc(timestamp: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc)


def waiting(dr: DataRoot, state: str) -> tuple[int, dt.datetime | None]:
    """(how many inputs wait in a state directory, the oldest one's modification time): DataRoot.waiting."""
    times = dr.waiting(state)
    return len(times), (utc(min(times)) if times else None)


def quarantined(dr: DataRoot) -> dict[str, int]:
    """The inputs in quarantine, per reason folder (quarantine/<reason>/): each has its reason file, so the
    reason files are counted, a report's .jsonl with its .yaml as one; a reason folder left empty counts 0.
    Never follows a link."""
    base = dr.state("quarantine")
    if not base.is_dir():
        return {}
    with os.scandir(base) as entries:
        reasons = sorted(e.path for e in entries if not e.name.startswith(".") and e.is_dir(follow_symlinks=False))
    out = {}
    for folder in reasons:
        notes = {os.path.join(here, f)[:-len(NOTE)] for here, _, files in os.walk(folder)
                 for f in files if f.endswith(NOTE)}
        out[os.path.basename(folder)] = sum(1 for n in notes
                                            if not (n.endswith(".jsonl") and n[:-len(".jsonl")] + ".yaml" in notes))
    return out


def poison(counts: dict[str, int]) -> int:
    """The poison inputs among the quarantined (failed twice in a row for the same reason)."""
    return counts.get(POISON, 0)


def _entry_time(raw: bytes) -> dt.datetime | None:
    """The time of a committed transaction (a report moved); None for any other entry (a begin, an abort, a
    note such as sync's account of what it removed or released from a collector, which moves no report)."""
    try:
        entry = json.loads(raw)
        if entry.get("op") != "commit":
            return None
        return dt.datetime.fromisoformat(entry["time"]).astimezone(dt.timezone.utc)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def journal_backwards(journal: Path, tail: int = TAIL, limit: int | None = None) -> Iterator[bytes]:
    """The journal's lines, newest first, read from its end tail bytes at a time (only those within its last
    limit bytes when given: a line that begins before them is left out); nothing without a journal. A torn last line (a crash mid-append) is skipped, as the journal
    does."""
    try:
        end = journal.stat().st_size
    except FileNotFoundError:
        return
    stop = 0 if limit is None else max(0, end - limit)
    carry, torn = b"", True  # torn: the last newline is not found yet (what follows it is no entry)
    with open(journal, "rb") as fh:
        while end > stop:
            start = max(stop, end - tail)
            fh.seek(start)
            lines = (fh.read(end - start) + carry).split(b"\n")
            end = start
            if torn:
                lines.pop()  # after the last newline: nothing, or a torn line
                if not lines:
                    carry = b""
                    continue
                torn = False
            carry = lines.pop(0) if start > 0 else b""  # may begin mid-line: completed by the next read
            for raw in reversed(lines):
                if raw.strip():
                    yield raw


def last_journal_time(journal: Path, tail: int = TAIL) -> dt.datetime | None:
    """The time of the journal's newest committed transaction (a report's last move), read from its end; None
    without a journal or such an entry."""
    for raw in journal_backwards(journal, tail):
        when = _entry_time(raw)
        if when is not None:
            return when
    return None


SUBSCRIBE_NEEDLE = b'"stage":"subscribe"'  # how stages/journal.append writes the subscriber's notes


def subscriber_notes(journal: Path, since: dt.datetime, limit: int) -> list[dict]:
    """The subscriber's notes (stage subscribe: its batches, the messages it dead-lettered), newest first,
    from the journal's end back to since (or its last limit bytes). Other lines are only looked at for their
    time."""
    out = []
    for raw in journal_backwards(journal, limit=limit):
        try:
            entry = json.loads(raw)
            when = dt.datetime.fromisoformat(entry["time"]).astimezone(dt.timezone.utc)
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
        if when < since:
            break
        if SUBSCRIBE_NEEDLE in raw and entry.get("op") == "note":
            out.append(entry)
    return out


def newest_runbook_report(folder: Path) -> RunbookDrillReport | None:
    """The newest runbook drill report saved in folder (<drill.history_dir>/<drill>/) that can be read."""
    paths = sorted(folder.glob("*.json"), reverse=True) if folder.is_dir() else []
    for path in paths:
        try:
            return RunbookDrillReport.from_json(path.read_text())
        except (OSError, RecordError):
            continue
    return None


def free_space(path: Path) -> tuple[Path, int, int]:
    """(the folder measured, its disk's free bytes, its disk's size): path, or its nearest existing parent."""
    while not path.exists() and path != path.parent:
        path = path.parent
    usage = shutil.disk_usage(path)
    return path, usage.free, usage.total
