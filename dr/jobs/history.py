"""The job history: every run of every job, one JSON line each, appended on the host (`history.dir`).

A line is a `JobRun`: the job's name, when it started and ended, on which host, its outcome (ok, failed: it
ran and its result reports a failure, error: it stopped with an error and no result), and its typed result
as JSON with the result's type name (common/records.py; dr/watch reads it back into that type), and the data
root at its end: its disk's free bytes and the inputs waiting per state directory (a line written before
either was recorded reads back with None). The metrics writer, `invoke status` and the status page read it;
nothing else keeps a second account of runs.

Crash-safe like the journal: one write() per line under O_APPEND, fsynced (common/atomic.append_line); a
torn last line (a crash mid-append) is skipped when read. One file per UTC month (`jobs-YYYY-MM.jsonl`),
so bounding it never rewrites a file: months older than `history.keep_days` go, then the oldest months while
the files together exceed `history.max_mb` (the current month always stays).

Not in a snapshot set, on purpose: it is the host's account of what ran, and a restore must not rewind it
(the runs after the set, the failure that called for the restore among them, would vanish from the record).
It lives outside the data root, so a restore leaves it alone; a host rebuilt from nothing starts a new one,
and the status page's rules then say so until a check and a drill have passed there.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import atomic, log
from common.config import Config
from common.records import Record, RecordError, optional

_log = log.get("history")
FILE = re.compile(r"^jobs-(\d{4})-(\d{2})\.jsonl$")
TIME = "%Y-%m-%dT%H:%M:%SZ"
OUTCOMES = ("ok", "failed", "error")


def stamp(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime(TIME)


def parse_time(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, TIME).replace(tzinfo=dt.timezone.utc)


@dataclass
class JobRun(Record):
    """One run of one job."""
    job: str
    started: str
    ended: str
    host: str
    outcome: str  # OUTCOMES
    exit_code: int  # the job's (its result's exit_status(), or its error's exit code)
    seconds: float
    result_type: str | None = optional()  # the record's class name (dr/watch/results.py reads it back)
    result: dict[str, Any] | None = optional()
    error: str | None = optional()
    data_free_bytes: int | None = optional()  # free space on the data root's disk at the end (its growth rate)
    backlog: dict[str, int] | None = optional()  # inputs waiting per state directory at the end (layout.WAITING)

    @property
    def ended_at(self) -> dt.datetime:
        return parse_time(self.ended)

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


def folder(cfg: Config) -> Path:
    return Path(cfg.history.dir)


def month_file(cfg: Config, when: dt.datetime) -> Path:
    return folder(cfg) / f"jobs-{when:%Y-%m}.jsonl"


def run_of(job: str, started: dt.datetime, ended: dt.datetime, result: Record | None = None,
           error: str | None = None, data_free_bytes: int | None = None,
           backlog: dict[str, int] | None = None) -> JobRun:
    """The JobRun of a job that ended with a result (its exit_status says ok or failed) or with an error."""
    status = result.exit_status() if result is not None else 1
    outcome = "error" if result is None else "ok" if status == 0 else "failed"
    return JobRun(job=job, started=stamp(started), ended=stamp(ended), host=socket.gethostname(), outcome=outcome,
                  exit_code=status, seconds=round((ended - started).total_seconds(), 3),
                  result_type=None if result is None else type(result).__name__,
                  result=None if result is None else result.to_dict(), error=error, data_free_bytes=data_free_bytes,
                  backlog=backlog)


def append(cfg: Config, run: JobRun) -> Path:
    """Append run to its month's file (made with the folder when missing), then bound the history."""
    path = month_file(cfg, parse_time(run.ended))
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic.append_line(path, (json.dumps(run.to_dict(), separators=(",", ":")) + "\n").encode())
    prune(cfg, parse_time(run.ended))
    return path


def files(cfg: Config) -> list[Path]:
    """The month files, oldest first."""
    base = folder(cfg)
    return sorted(p for p in base.iterdir() if FILE.match(p.name)) if base.is_dir() else []


def read_file(path: Path) -> list[JobRun]:
    """The runs of one file in the order written; a torn last line, and a line that is not a JobRun (logged),
    are skipped."""
    out = []
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, 1):
            if not raw.endswith(b"\n"):
                break
            try:
                out.append(JobRun.from_dict(json.loads(raw)))
            except (ValueError, RecordError) as exc:
                _log.warning("%s:%d is not a job run, skipped: %s", path, n, exc)
    return out


def read(cfg: Config, since: dt.datetime | None = None) -> list[JobRun]:
    """Every run (ended at or after since, when given), oldest first."""
    runs = []
    for path in files(cfg):
        if since is not None:
            year, month = map(int, FILE.match(path.name).groups())
            if (year, month) < (since.year, since.month):
                continue
        runs += [r for r in read_file(path) if since is None or r.ended_at >= since]
    return sorted(runs, key=lambda r: (r.ended, r.started))


def prune(cfg: Config, now: dt.datetime) -> list[Path]:
    """Remove the month files older than history.keep_days, then the oldest while the files exceed
    history.max_mb; the current month's stays. Returns what was removed."""
    current = month_file(cfg, now)
    cutoff = now - dt.timedelta(days=cfg.history.keep_days)
    removed = []
    paths = [p for p in files(cfg) if p != current]
    for p in list(paths):
        year, month = map(int, FILE.match(p.name).groups())
        last_day = (dt.datetime(year + month // 12, month % 12 + 1, 1, tzinfo=dt.timezone.utc))
        if last_day < cutoff:
            removed.append(p)
            paths.remove(p)
    limit = cfg.history.max_mb << 20
    total = sum(p.stat().st_size for p in paths) + (current.stat().st_size if current.exists() else 0)
    for p in paths:
        if total <= limit:
            break
        total -= p.stat().st_size
        removed.append(p)
    for p in removed:
        atomic.remove(p)
        _log.info("job history: removed %s (older than %d days, or beyond %d MB)", p.name, cfg.history.keep_days,
                  cfg.history.max_mb)
    return removed
