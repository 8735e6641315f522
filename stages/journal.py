"""The journal: one JSON line per event, appended with a single write and fsynced. It is the record of where
every report went (`invoke where`) and the write-ahead log that makes every move crash-safe.

A move of a report is a transaction of steps, run in order:
  rename(src, dst, sha256)   put a file in place: a durable temporary, or a report moving between states
  move(src, dst)             move something that is not a regular file (a link, a FIFO, a device) as it is,
                             never opening it: done when dst exists and src does not
  remove(path)               delete an input, only after every rename of the transaction is durable
`begin` is journalled (with all steps) before the first step and `commit` after the last. After a crash,
`recover` finishes every begun transaction whose renames can still complete (each is idempotent: a
destination already holding the expected sha256 counts as done) and rolls back the others, so a report is
never lost, never in two places, and never half-written.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from common import atomic
from common.digest import sha256_file
from stages.layout import DataRoot


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def append(dr: DataRoot, entry: dict) -> None:
    atomic.append_line(dr.journal, (json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n").encode())


def read(dr: DataRoot, start: int = 0, stage: str | None = None) -> Iterator[tuple[int, dict]]:
    """Yield (offset after the line, entry); with stage, only that stage's entries (lines without its name are
    not parsed: a fast pass over a long journal). A torn last line (crash mid-append) is skipped."""
    if not dr.journal.exists():
        return
    needle = None if stage is None else json.dumps({"stage": stage}, separators=(",", ":"))[1:-1].encode()
    with open(dr.journal, "rb") as fh:
        fh.seek(start)
        for raw in fh:
            if not raw.endswith(b"\n"):
                return
            if needle is not None and needle not in raw:
                continue
            try:
                entry = json.loads(raw)
            except ValueError:
                continue
            if needle is None or entry.get("stage") == stage:
                yield fh.tell(), entry


def position(dr: DataRoot) -> int:
    try:
        return dr.journal.stat().st_size
    except FileNotFoundError:
        return 0


@dataclass
class Transaction:
    stage: str
    outcome: str                      # moved, quarantined, duplicate, imported, ...
    report: str                       # the name the report had when the stage took it
    steps: list[dict] = field(default_factory=list)
    info: dict = field(default_factory=dict)
    txid: str = field(default_factory=lambda: uuid.uuid4().hex)

    def rename(self, src: Path, dst: Path, sha256: str, size: int) -> "Transaction":
        self.steps.append({"op": "rename", "src": str(src), "dst": str(dst), "sha256": sha256, "size": size})
        return self

    def move(self, src: Path, dst: Path) -> "Transaction":
        self.steps.append({"op": "move", "src": str(src), "dst": str(dst)})
        return self

    def remove(self, path: Path) -> "Transaction":
        self.steps.append({"op": "remove", "path": str(path)})
        return self


def _entry(dr: DataRoot, tx: Transaction, op: str) -> dict:
    e = {"time": now(), "op": op, "txid": tx.txid, "stage": tx.stage}
    if op == "begin":
        e.update(outcome=tx.outcome, report=tx.report, info=tx.info,
                 steps=[_relative_step(dr, s) for s in tx.steps])
    return e


def _relative_step(dr: DataRoot, step: dict) -> dict:
    out = dict(step)
    for key in ("src", "dst", "path"):
        if key in out:
            out[key] = dr.relative(Path(out[key]))
    return out


def _absolute_step(dr: DataRoot, step: dict) -> dict:
    out = dict(step)
    for key in ("src", "dst", "path"):
        if key in out:
            out[key] = dr.root / out[key]
    return out


def _rename_done(step: dict) -> bool:
    dst = Path(step["dst"])
    if step["op"] == "move":
        return os.path.lexists(dst) and not os.path.lexists(step["src"])
    return dst.is_file() and not dst.is_symlink() and sha256_file(dst) == step["sha256"]


def _apply(steps: list[dict]) -> None:
    for step in steps:
        if step["op"] == "move":
            if not _rename_done(step):
                atomic.move(Path(step["src"]), Path(step["dst"]))
        elif step["op"] == "rename":
            src, dst = Path(step["src"]), Path(step["dst"])
            if _rename_done(step):
                # Already in place (this transaction got that far, or identical content was there):
                # a leftover source is a duplicate of it.
                if src != dst:
                    atomic.remove(src)
                continue
            atomic.move(src, dst)
        elif step["op"] == "remove":
            atomic.remove(Path(step["path"]))


def run(dr: DataRoot, tx: Transaction) -> None:
    """Journal `begin`, apply every step, journal `commit`."""
    append(dr, _entry(dr, tx, "begin"))
    _apply(tx.steps)
    append(dr, _entry(dr, tx, "commit"))


def _offset_file(dr: DataRoot, stage: str | None) -> Path:
    return dr.root / f".journal-recovered-{stage or 'all'}"


def pending(dr: DataRoot, stage: str | None = None, start: int = 0) -> tuple[list[dict], int]:
    """Begun transactions (of one stage, or all) without commit or abort, and the journal's end offset."""
    open_tx: dict[str, dict] = {}
    end = start
    for end, entry in read(dr, start):
        if stage is not None and entry.get("stage") != stage:
            continue
        if entry.get("op") == "begin":
            open_tx[entry["txid"]] = entry
        elif entry.get("op") in ("commit", "abort"):
            open_tx.pop(entry.get("txid"), None)
    return list(open_tx.values()), end


def recover(dr: DataRoot, stage: str | None = None) -> list[str]:
    """Finish or roll back interrupted transactions. The caller must hold the stage's own lock (stage=None:
    the exclusive data-root lock). Returns one line per transaction handled."""
    marker = _offset_file(dr, stage)
    try:
        start = int(marker.read_text())
    except (FileNotFoundError, ValueError):
        start = 0
    if start > position(dr):
        start = 0
    txs, end = pending(dr, stage, start)
    done = []
    for entry in txs:
        steps = [_absolute_step(dr, s) for s in entry["steps"]]
        tx = Transaction(entry["stage"], entry["outcome"], entry["report"], txid=entry["txid"])
        renames = [s for s in steps if s["op"] in ("rename", "move")]
        if all(_rename_done(s) or os.path.lexists(s["src"]) for s in renames):
            _apply(steps)
            append(dr, _entry(dr, tx, "commit"))
            done.append(f"finished interrupted {entry['stage']} of {entry['report']}")
        else:
            # A source is gone and its destination is not in place: the transaction cannot finish. Its
            # inputs are all still there (removals come after every rename), so the next run redoes it;
            # anything it did place is identical content, which that run records as a duplicate.
            append(dr, _entry(dr, tx, "abort"))
            done.append(f"abandoned interrupted {entry['stage']} of {entry['report']} (inputs kept)")
    atomic.write_bytes(marker, str(end if not txs else position(dr)).encode())
    return done


def committed(dr: DataRoot, end: int | None = None, stage: str | None = None) -> Iterator[tuple[int, dict]]:
    """(offset after the line, entry) of what happened, in the order it took effect, up to the journal offset
    end (None: all of it): each committed transaction as its `begin` entry (steps, info; its time the
    commit's) at its commit's offset, and each note; with stage, that stage's only. Aborted and unfinished
    transactions are left out."""
    begun: dict[str, dict] = {}
    for offset, entry in read(dr, stage=stage):
        if end is not None and offset > end:
            return
        op = entry.get("op")
        if op == "begin":
            begun[entry["txid"]] = entry
        elif op == "commit" and entry.get("txid") in begun:
            b = begun.pop(entry["txid"])
            b["time"] = entry.get("time", b.get("time"))
            yield offset, b
        elif op == "abort":
            begun.pop(entry.get("txid"), None)
        elif op == "note":
            yield offset, entry


def history(dr: DataRoot, needle: str) -> list[dict]:
    """Every committed move whose report, source, destination or report id mentions needle, following the
    report from state to state (a later move's source is an earlier move's destination)."""
    names = {needle}
    found = []
    for _, b in committed(dr):
        if b.get("op") == "begin":
            places = {b["report"], str(b.get("info", {}).get("report_id", ""))}
            for s in b["steps"]:
                places.update(v for k, v in s.items() if k in ("src", "dst", "path"))
            if any(n and (n in places or any(n in p for p in places)) for n in names):
                found.append(b)
                names.update(s["dst"] for s in b["steps"] if s["op"] in ("rename", "move") and not atomic.is_temporary(Path(s["dst"])))
    return found
