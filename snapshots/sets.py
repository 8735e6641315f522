"""Snapshot sets: one restic snapshot of the state directories, one of the database dump, one manifest,
all tagged `set:<id>`; the id is the UTC time the set started (YYYYMMDDTHHMMSSZ).

Taking a set: hold the data root's exclusive lock (no stage can move a report meanwhile), finish any
transaction a dead process left, compute the directories' manifest, back up the files, release the lock,
then stream the dump into restic (`--stdin-from-command`: no dump file on disk; a failing dump fails the
set) and store the manifest. The dump comes after the files snapshot, so every report the set holds in
archive/ has its documents in the dump (a report moves to archive/ only after its documents are written,
and nothing is ever deleted from the database). With `backup.dump_under_lock` the dump is taken under the
lock too (the pipeline then waits for the whole dump: minutes for a database of a few GB). Only a set with all three parts is complete; the manifest is written last, so a
set interrupted at any point is listed as incomplete and never mistaken for a good one.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import tempfile
import time
from pathlib import Path

from common import __version__, atomic, log
from common import db as dbconn
from snapshots import manifest
from snapshots.restic import Restic, ResticError
from stages import journal, lock
from stages.layout import DataRoot

_log = log.get("sets")

KINDS = ("files", "db", "manifest")
DUMP_NAME = "database.dbdump"
DUMP_ROLE = "backup"  # reads everything, writes nothing
MANIFEST_NAME = "manifest.json"


def new_id(now: dt.datetime | None = None) -> str:
    return (now or dt.datetime.now(dt.timezone.utc)).strftime("%Y%m%dT%H%M%SZ")


def unique_id(last_file: Path) -> tuple[str, dt.datetime]:
    """A set id later than the last one taken here (ids have one-second resolution: two sets started in the
    same second, or a set after one killed that second, would share one). Waits for the next second when
    needed; the caller holds the exclusive lock, so no other set picks an id meanwhile."""
    try:
        last = last_file.read_text().strip()
    except FileNotFoundError:
        last = ""
    now = dt.datetime.now(dt.timezone.utc)
    while new_id(now) <= last:
        time.sleep(1.0 - now.microsecond / 1e6 + 0.01)
        now = dt.datetime.now(dt.timezone.utc)
    last_file.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_bytes(last_file, new_id(now).encode())
    return new_id(now), now


def is_complete(parts: dict) -> bool:
    """A set is complete when it has all its parts ({kind: snapshot} from `grouped`): files, db, manifest. The
    manifest is stored last, so a set interrupted at any point is incomplete."""
    return all(k in parts for k in KINDS)


def _tags(set_id: str, kind: str) -> list[str]:
    return ["--tag", f"set:{set_id}", "--tag", f"kind:{kind}", "--tag", f"version:{__version__}"]


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _dump(cfg, restic: Restic, host: str, set_id: str, counts_file: Path) -> dict:
    """The database dump streamed into restic (no file on disk); a failing dump fails the set."""
    db = cfg.db
    return restic.backup(
        "--host", host, *_tags(set_id, "db"), "--stdin-filename", DUMP_NAME, "--stdin-from-command",
        "--", "python3", "-m", "snapshots.dbdump", "dump", "--host", db.host, "--port", str(db.port),
        "--database", db.database, "--user", DUMP_ROLE,
        "--password-file", str(Path(cfg.secrets_dir) / dbconn.password_name(DUMP_ROLE)),
        "--counts-file", str(counts_file))


def take(cfg, restic: Restic, dr: DataRoot, host: str | None = None) -> dict:
    host = host or socket.gethostname()
    with tempfile.TemporaryDirectory(prefix="set-") as tmp:
        counts_file = Path(tmp) / "counts.json"
        _log.info("new set: waiting for the exclusive lock on %s", dr.root)
        with lock.exclusive(dr, cfg.backup.lock_timeout) as lk:
            set_id, started = unique_id(Path(cfg.cache_dir) / "restic" / ".aggregator-dr-last-set-id")
            _log.info("set %s: locked", set_id)
            paused_from = time.monotonic()
            locked_at = _now()
            recovered = journal.recover(dr, None)
            directories = manifest.directories(dr.root)
            position = journal.position(dr)
            files = restic.backup("--host", host, *_tags(set_id, "files"), *manifest.restic_excludes(dr.root),
                                  str(dr.root))
            if cfg.backup.dump_under_lock:
                dump = _dump(cfg, restic, host, set_id, counts_file)
            paused = round(time.monotonic() - paused_from, 3)
        if not cfg.backup.dump_under_lock:
            # After the files snapshot, so every report it holds in archive/ has its documents in the dump.
            dump = _dump(cfg, restic, host, set_id, counts_file)
        counts = json.loads(counts_file.read_text())
        body = {
            "format": manifest.FORMAT, "set": set_id, "host": host, "version": __version__,
            "started": started.strftime("%Y-%m-%dT%H:%M:%SZ"), "locked": locked_at, "ended": _now(),
            "paused_seconds": paused, "lock_waited_seconds": round(lk.waited, 3), "recovered": recovered,
            "dump_under_lock": cfg.backup.dump_under_lock,
            "journal_position": position, "directories": directories, "database": counts,
            "snapshots": {"files": files["snapshot_id"], "db": dump["snapshot_id"]},
            "added_bytes": {"files": files.get("data_added", 0), "db": dump.get("data_added", 0)},
        }
        path = Path(tmp) / MANIFEST_NAME
        path.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
        with open(path, "rb") as fh:
            restic.run("backup", "--quiet", "--host", host, *_tags(set_id, "manifest"), "--stdin",
                       "--stdin-filename", MANIFEST_NAME, stdin=fh)
    _log.info("set %s complete: paused the pipeline %.1fs", set_id, paused)
    return body


def _tag(snapshot: dict, prefix: str) -> str | None:
    for t in snapshot.get("tags") or []:
        if t.startswith(prefix):
            return t[len(prefix):]
    return None


def grouped(restic: Restic) -> dict[str, dict[str, dict]]:
    """{set id: {kind: restic snapshot}} for every snapshot tagged as part of a set."""
    sets: dict[str, dict[str, dict]] = {}
    for snap in restic.json("snapshots") or []:
        sid, kind = _tag(snap, "set:"), _tag(snap, "kind:")
        if sid and kind in KINDS:
            sets.setdefault(sid, {})[kind] = snap
    return sets


def read_manifest(restic: Restic, snapshot_id: str) -> dict:
    return json.loads(restic.run("dump", "--quiet", snapshot_id, f"/{MANIFEST_NAME}", capture=True, quiet=True))


def listing(restic: Restic) -> list[dict]:
    """Every set, newest first: id, time, complete, paused seconds, sizes."""
    rows = []
    for sid, parts in sorted(grouped(restic).items(), reverse=True):
        complete = is_complete(parts)
        row = {"set": sid, "time": min(p["time"] for p in parts.values())[:19], "complete": complete,
               "parts": sorted(parts), "snapshots": {k: v["short_id"] for k, v in parts.items()}}
        if complete:
            try:
                m = read_manifest(restic, parts["manifest"]["id"])
            except (ResticError, ValueError) as exc:
                row.update(complete=False, problem=f"manifest unreadable: {exc}")
            else:
                row.update(paused_seconds=m["paused_seconds"],
                           reports=sum(d["reports"] for d in m["directories"].values()),
                           bytes=sum(d["bytes"] for d in m["directories"].values()),
                           documents=sum(m["database"]["collections"].values()),
                           added_bytes=sum(m.get("added_bytes", {}).values()))
        rows.append(row)
    return rows


def forget(restic: Restic, policy, dry_run: bool = False) -> dict:
    """Apply the retention policy to whole sets (all their parts together), then prune."""
    from snapshots import retention

    groups = grouped(restic)
    status = {sid: is_complete(parts) for sid, parts in groups.items()}
    kept = retention.keep(status, policy)
    drop = sorted(set(groups) - kept)
    ids = [snap["id"] for sid in drop for snap in groups[sid].values()]
    if ids and not dry_run:
        restic.run("forget", *ids)
        # restic forget exits 0 even when the backend refused a delete (an append-only rest-server): check.
        left = {snap["id"] for parts in grouped(restic).values() for snap in parts.values()} & set(ids)
        if left:
            raise ResticError(f"the repository refused to delete {len(left)} of {len(ids)} snapshots "
                              f"(is it append-only?); nothing was pruned")
        restic.run("prune")
    return {"keep": sorted(kept, reverse=True), "forget": drop, "snapshots_removed": 0 if dry_run else len(ids),
            "dry_run": dry_run}
