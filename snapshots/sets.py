"""Snapshot sets: one restic snapshot of the state directories, one of PostgreSQL's physical copy, one of the
portable dump (when due), one manifest, all tagged `set:<id>`; the id is the UTC time the set started
(YYYYMMDDTHHMMSSZ).

Taking a set: hold the data root's exclusive lock (no stage can move a report meanwhile), finish any
transaction a dead process left, compute the directories' manifest, back up the files, release the lock.
The database parts start once the lock is held, in a thread beside the files snapshot, and go on after the
lock is released: the physical copy streamed into restic (`--stdin-from-command`, snapshots/pgcopy.py: no
file on disk; a failing copy fails the set), then, when `backup.portable_dump` says so, the portable dump
(snapshots/dbdump.py) the same way; then the manifest is stored. As they start after the lock is taken,
every report the set holds in archive/ has its documents in them (a report moves to archive/ only after its
documents are written, and none moves while the lock is held). With `backup.dump_under_lock` they are taken
under the lock, after the files (the pipeline then waits for them).

The copy is taken while the importer may write: the manifest records the exact counts per collection just
before and just after it (PostgreSQL's, snapshots/pgsql.py), and a restored copy must hold counts between the
two (equal when nothing was imported meanwhile). The dump's counts are exact (what it wrote).

Only a set with all its parts is complete: the manifest is stored last and names the parts the set has (tag
`parts:files+pg+db`; sets from before the physical copy have files and db), so a set interrupted at any
point is listed as incomplete and never mistaken for a good one.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import __version__, atomic, log
from common import db as dbconn
from common.errors import DrError
from snapshots import manifest, pgcopy, pgsql
from snapshots.restic import Restic, ResticError
from stages import journal, lock
from stages.layout import DataRoot

_log = log.get("sets")

KINDS = ("files", "pg", "db", "manifest")
DATA_KINDS = KINDS[:-1]  # the parts a manifest vouches for (each set has those its manifest's tag names)
LEGACY_PARTS = ("files", "db")  # what a set from before the physical copy has (its manifest has no parts tag)
DUMP_NAME = "database.dbdump"
DAY = dt.timedelta(hours=24) - dt.timedelta(minutes=10)  # daily: a job at the same time each day qualifies
MANIFEST_NAME = "manifest.json"
DIGESTS_NAME = ".aggregator-dr-digests.json"  # manifest.Digests, in the restic cache folder


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
    """A set is complete when it has its manifest and every part the manifest's tag names ({kind: snapshot}
    from `grouped`). The manifest is stored last, so a set interrupted at any point is incomplete."""
    m = parts.get("manifest")
    if m is None:
        return False
    named = _tag(m, "parts:")
    return all(k in parts for k in (named.split("+") if named else LEGACY_PARTS))


def dump_due(policy: str, last_dump_set: str | None, now: dt.datetime) -> bool:
    """Whether this set carries the portable dump: every set, never, or daily (when the newest complete set
    with a dump started about a day ago or more)."""
    if policy in ("every", "never"):
        return policy == "every"
    if last_dump_set is None:
        return True
    last = dt.datetime.strptime(last_dump_set, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
    return now - last >= DAY


def last_dump_set(restic: Restic) -> str | None:
    """The newest complete set that has a portable dump."""
    with_dump = [sid for sid, parts in grouped(restic).items() if "db" in parts and is_complete(parts)]
    return max(with_dump, default=None)


def _tags(set_id: str, kind: str) -> list[str]:
    return ["--tag", f"set:{set_id}", "--tag", f"kind:{kind}", "--tag", f"version:{__version__}"]


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _password_file(cfg) -> str:
    """The password of this container's role (backup: reads everything, writes nothing, REPLICATION)."""
    return str(Path(cfg.secrets_dir) / dbconn.password_name(dbconn.role_of(cfg.db)))


def _dump(cfg, restic: Restic, host: str, set_id: str, counts_file: Path) -> dict:
    """The portable dump streamed into restic (no file on disk); a failing dump fails the set."""
    db = cfg.db
    return restic.backup(
        "--host", host, *_tags(set_id, "db"), "--stdin-filename", DUMP_NAME, "--stdin-from-command",
        "--", "python3", "-m", "snapshots.dbdump", "dump", "--host", db.host, "--port", str(db.port),
        "--database", db.database, "--user", dbconn.role_of(db), "--password-file", _password_file(cfg),
        "--counts-file", str(counts_file))


def ferretdb_version(cfg) -> str:
    """FerretDB's own version (buildInfo's ferretdbVersion), as the backup role sees it."""
    import pymongo.errors

    client = dbconn.client_as(cfg.db, cfg.secrets_dir, dbconn.role_of(cfg.db), timeout_s=30)
    try:
        info = client.admin.command("buildInfo")
    except pymongo.errors.PyMongoError as exc:
        raise DrError(f"FerretDB at {cfg.db.host}:{cfg.db.port} does not answer: {type(exc).__name__}: "
                      f"{str(exc)[:300]}") from None
    finally:
        client.close()
    return str(info.get("ferretdbVersion") or f"unknown (MongoDB-compatible {info.get('version')})")


def _physical(cfg, restic: Restic, host: str, set_id: str, info_file: Path) -> tuple[dict, dict]:
    """The physical copy streamed into restic; (restic's summary, the manifest's `physical` part)."""
    psql = pgsql.for_config(cfg)
    version_num = psql.server_version_num()
    ferretdb = ferretdb_version(cfg)
    before = psql.counts(cfg.db.database)
    db = cfg.db
    snap = restic.backup(
        "--host", host, *_tags(set_id, "pg"), "--stdin-filename", pgcopy.COPY_NAME, "--stdin-from-command",
        "--", "python3", "-m", "snapshots.pgcopy", "copy", "--host", db.postgres_host, "--port",
        str(db.postgres_port), "--user", dbconn.role_of(db), "--password-file", _password_file(cfg),
        "--label", f"aggregator-dr set {set_id}", "--info-file", str(info_file))
    after = psql.counts(cfg.db.database, list(before))
    stream = json.loads(info_file.read_text())
    return snap, {"bytes": stream["bytes"], "postgres_version_num": version_num,
                  "postgres_major": pgcopy.major_of(version_num), "ferretdb_version": ferretdb,
                  "database": cfg.db.database, "collections": after, "collections_at_start": before}


def take(cfg, restic: Restic, dr: DataRoot, host: str | None = None) -> dict:
    host = host or socket.gethostname()
    due = dump_due(cfg.backup.portable_dump, last_dump_set(restic) if cfg.backup.portable_dump == "daily" else None,
                   dt.datetime.now(dt.timezone.utc))
    with tempfile.TemporaryDirectory(prefix="set-") as tmp:
        counts_file, info_file = Path(tmp) / "counts.json", Path(tmp) / "copy.json"
        snaps: dict[str, dict] = {}

        def database_parts():
            snaps["pg"], physical = _physical(cfg, restic, host, set_id, info_file)
            if due:
                snaps["db"] = _dump(cfg, restic, host, set_id, counts_file)
            return physical

        _log.info("new set: waiting for the exclusive lock on %s", dr.root)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="set-database") as beside:
            with lock.exclusive(dr, cfg.backup.lock_timeout) as lk:
                set_id, started = unique_id(Path(cfg.cache_dir) / "restic" / ".aggregator-dr-last-set-id")
                _log.info("set %s: locked", set_id)
                paused_from = time.monotonic()
                locked_at = _now()
                recovered = journal.recover(dr, None)
                digests = manifest.Digests(Path(cfg.cache_dir) / "restic" / DIGESTS_NAME)
                directories = manifest.directories(dr.root, digests)
                position = journal.position(dr)
                # When the files changed little since the last set, the database parts start now, beside
                # the files snapshot (a no-change set takes about as long as its copy); when much changed,
                # after it, so that the snapshot the pipeline waits for has the cores to itself. Either way
                # they start after the lock is taken: every report in archive/ got there after its documents
                # were written, and nothing moves while the lock is held, so the copy holds the documents of
                # every archived report the files hold.
                beside_files = (not cfg.backup.dump_under_lock and cfg.backup.beside_files_mb > 0
                                and digests.read_bytes <= cfg.backup.beside_files_mb << 20)
                copying = beside.submit(database_parts) if beside_files else None
                snaps["files"] = restic.backup("--host", host, *_tags(set_id, "files"),
                                               *manifest.restic_excludes(dr.root), str(dr.root))
                if cfg.backup.dump_under_lock:
                    physical = database_parts()
                paused = round(time.monotonic() - paused_from, 3)
            digests.save()  # outside the lock
            _log.info("set %s: %d files read for the manifest, the others unchanged since the last set", set_id,
                      digests.read)
            if copying is not None:
                physical = copying.result()  # the pipeline goes on meanwhile
            elif not cfg.backup.dump_under_lock:
                physical = database_parts()  # after the files, outside the lock
        if due:
            database = json.loads(counts_file.read_text())
        else:
            database = {"database": physical["database"], "collections": physical["collections"]}
        parts = [k for k in KINDS if k in snaps]
        body = {
            "format": manifest.FORMAT, "set": set_id, "host": host, "version": __version__,
            "started": started.strftime("%Y-%m-%dT%H:%M:%SZ"), "locked": locked_at, "ended": _now(),
            "paused_seconds": paused, "lock_waited_seconds": round(lk.waited, 3), "recovered": recovered,
            "dump_under_lock": cfg.backup.dump_under_lock, "portable_dump": due,
            "database_beside_files": copying is not None,
            "journal_position": position, "directories": directories, "database": database,
            "physical": physical, "parts": parts,
            "snapshots": {k: v["snapshot_id"] for k, v in snaps.items()},
            "added_bytes": {k: v.get("data_added", 0) for k, v in snaps.items()},
        }
        path = Path(tmp) / MANIFEST_NAME
        path.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
        with open(path, "rb") as fh:
            restic.run("backup", "--quiet", "--host", host, *_tags(set_id, "manifest"), "--tag",
                       "parts:" + "+".join(parts), "--stdin", "--stdin-filename", MANIFEST_NAME, stdin=fh)
    _log.info("set %s complete (%s): paused the pipeline %.1fs", set_id, ", ".join(parts), paused)
    return body


def _tag(snapshot: dict, prefix: str) -> str | None:
    for t in snapshot.get("tags") or []:
        if t.startswith(prefix):
            return t[len(prefix):]
    return None


def grouped(restic: Restic) -> dict[str, dict[str, dict]]:
    """{set id: {kind: restic snapshot}} for every snapshot tagged as part of a set."""
    sets: dict[str, dict[str, dict]] = {}
    for snap in restic.json("snapshots", "--no-lock") or []:
        sid, kind = _tag(snap, "set:"), _tag(snap, "kind:")
        if sid and kind in KINDS:
            sets.setdefault(sid, {})[kind] = snap
    return sets


def read_manifest(restic: Restic, snapshot_id: str) -> dict:
    return json.loads(restic.run("dump", "--no-lock", "--quiet", snapshot_id, f"/{MANIFEST_NAME}", capture=True,
                                 quiet=True))


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
