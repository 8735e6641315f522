"""Snapshot sets: one restic snapshot of the state directories, one of PostgreSQL's physical copy, one of the
portable dump (when due), one manifest, all tagged `set:<id>`; the id is the UTC time the set started
(YYYYMMDDTHHMMSSZ).

Taking a set: pick its id, start the copy's restic (it opens the repository, then waits at a gate:
snapshots/gate.py), hold the data root's exclusive lock (no stage can move a report meanwhile), finish any
transaction a dead process left, make the data root's cut (snapshots/cut.py: a second name for every file,
time per file, not per byte), release the lock; then compute the directories' manifest from the cut
(reading only the files changed since the last set), back the cut up and remove it. With backup.cut off
(or no view of the cut: a set taken outside the backup container) the manifest and the files snapshot are
taken under the lock instead. The database parts start once the lock was held: beside the files snapshot
when few files changed (backup.beside_files_mb), else after it: the physical copy (its gate opened: pg_basebackup streamed into restic,
`--stdin-from-command`, snapshots/pgcopy.py: no file on disk; a failing copy fails the set), then, when
`backup.portable_dump` says so, the portable dump (snapshots/dbdump.py) the same way; then the manifest is
stored (its restic started when the lock was released, waiting at a gate of its own). As the database parts
start after the lock is taken, every report the set holds in archive/ has its documents in them (a report
moves to archive/ only after its documents are written, and none moves while the lock is held). With
`backup.dump_under_lock` they are taken under the lock, after the cut or the files (the pipeline then waits
for them).

The copy is taken while the importer may write: the manifest records the exact counts per collection just
before and just after it (PostgreSQL's, database/pgsql.py), and a restored copy must hold counts between the
two (equal when nothing was imported meanwhile). The dump's counts are exact (what it wrote).

Only a set with all its parts is complete: the manifest is stored last and names the parts the set has (tag
`parts:files+pg+db`; sets from before the physical copy have files and db), so a set interrupted at any
point is listed as incomplete and never mistaken for a good one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import socket
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from common import __version__, atomic, log
from common.errors import DrError
from database import db as dbconn
from database import pgsql
from snapshots import cut, manifest, pgcopy
from snapshots import gate as gate_
from snapshots.restic import (
    Restic,
    ResticError,
    forget_args,
    prune_args,
    read_file_args,
    snapshots_args,
    stdin_args,
    tag_args,
)
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
MANIFEST_CACHE = ".aggregator-dr-manifests"  # listed_manifest, in the restic cache folder


def new_id(now: dt.datetime | None = None) -> str:
    return (now or dt.datetime.now(dt.timezone.utc)).strftime("%Y%m%dT%H%M%SZ")


def unique_id(last_file: Path) -> tuple[str, dt.datetime]:
    """A set id later than the last one taken here (ids have one-second resolution: two sets started in the
    same second, or a set after one killed that second, would share one). Waits for the next second when
    needed; the caller holds the lock of our restic runs (snapshots/repolock.py), so no other set picks an
    id meanwhile."""
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


def set_tags(set_id: str, kind: str) -> list[str]:
    """The tags of a set's part: its set, its kind, the version that took it (`group` reads the first two)."""
    return tag_args(f"set:{set_id}", f"kind:{kind}", f"version:{__version__}")


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _password_file(cfg) -> str:
    """The password of this container's role (backup: reads everything, writes nothing, REPLICATION)."""
    return str(Path(cfg.secrets_dir) / dbconn.password_name(dbconn.role_of(cfg.db)))


def files_part_args(host: str, set_id: str, root: Path | str) -> list[str]:
    """restic backup's arguments (after `backup --json`) for the files part: the data root (or its cut) at
    root, less manifest.EXCLUDES; a file is read again when its size, modification time or inode changed, not
    its change time (a cut's hard link changes that; manifest.Digests judges the same way)."""
    return ["--host", host, *set_tags(set_id, "files"), "--ignore-ctime", *manifest.restic_excludes(root), str(root)]


def dump_command(cfg, counts_file: Path) -> list[str]:
    """The portable dump's producer: `snapshots.dbdump dump` to stdout as this container's role (over TLS
    with db.tls), its counts per collection written to counts_file."""
    db = cfg.db
    return ["python3", "-m", "snapshots.dbdump", "dump", "--host", db.host, "--port", str(db.port),
            "--database", db.database, "--user", dbconn.role_of(db), "--password-file", _password_file(cfg),
            "--counts-file", str(counts_file),
            *(["--tls-ca-file", dbconn.tls_ca_file(db, cfg.secrets_dir)] if db.tls else [])]


def dump_part_args(cfg, host: str, set_id: str, counts_file: Path) -> list[str]:
    """restic backup's arguments (after `backup --json`) for the portable dump: dump_command's stream."""
    return ["--host", host, *set_tags(set_id, "db"), *stdin_args(DUMP_NAME, dump_command(cfg, counts_file))]


def copy_command(cfg, set_id: str, info_file: Path, gate: gate_.Gate) -> list[str]:
    """The physical copy's producer: `snapshots.pgcopy copy` to stdout as this container's role (over TLS with
    db.tls), labelled with the set, its size written to info_file; it waits at gate until the set opens it."""
    db = cfg.db
    return ["python3", "-m", "snapshots.pgcopy", "copy", "--host", db.postgres_host, "--port",
            str(db.postgres_port), "--user", dbconn.role_of(db), "--password-file", _password_file(cfg),
            "--label", f"aggregator-dr set {set_id}", "--info-file", str(info_file), *gate.wait_args(),
            *(["--ca-file", dbconn.tls_ca_file(db, cfg.secrets_dir)] if db.tls else [])]


def copy_part_args(cfg, host: str, set_id: str, info_file: Path, gate: gate_.Gate) -> list[str]:
    """restic backup's arguments (after `backup --json`) for the physical copy: copy_command's stream."""
    return ["--host", host, *set_tags(set_id, "pg"),
            *stdin_args(pgcopy.COPY_NAME, copy_command(cfg, set_id, info_file, gate))]


def manifest_part_args(host: str, set_id: str, parts: list[str], gate: gate_.Gate) -> list[str]:
    """The manifest's whole restic command (`backup --quiet`: its progress while it waits says nothing): the
    parts it vouches for in a `parts:` tag, the file the gate hands over once the set writes it."""
    return ["backup", "--quiet", "--host", host, *set_tags(set_id, "manifest"), *tag_args("parts:" + "+".join(parts)),
            *stdin_args(MANIFEST_NAME, gate.argv())]


def _dump(cfg, restic: Restic, host: str, set_id: str, counts_file: Path) -> dict:
    """The portable dump streamed into restic (no file on disk); a failing dump fails the set."""
    return restic.backup(*dump_part_args(cfg, host, set_id, counts_file))


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


def _arm_copy(cfg, restic: Restic, host: str, set_id: str, info_file: Path, gate: gate_.Gate) -> dict:
    """restic backup of the physical copy: restic opens the repository and starts `pgcopy copy`, which waits
    at the gate; pg_basebackup starts when _physical opens it. restic's summary."""
    return restic.backup(*copy_part_args(cfg, host, set_id, info_file, gate))


def _physical(cfg, armed: Future, gate: gate_.Gate, info_file: Path) -> tuple[dict, dict]:
    """The armed copy released and streamed into restic, with the versions and the counts around it;
    (restic's summary, the manifest's `physical` part)."""
    psql = pgsql.for_config(cfg)
    version_num = psql.server_version_num()
    ferretdb = ferretdb_version(cfg)
    before = psql.counts(cfg.db.database)
    gate.open(b"go\n")
    snap = armed.result()
    after = psql.counts(cfg.db.database, list(before))
    stream = json.loads(info_file.read_text())
    return snap, {"bytes": stream["bytes"], "postgres_version_num": version_num,
                  "postgres_major": pgcopy.major_of(version_num), "ferretdb_version": ferretdb,
                  "database": cfg.db.database, "collections": after, "collections_at_start": before}


def _dump_due(cfg, restic: Restic) -> bool:
    last = last_dump_set(restic) if cfg.backup.portable_dump == "daily" else None  # a listing: 0.6 s
    return dump_due(cfg.backup.portable_dump, last, dt.datetime.now(dt.timezone.utc))


class _Set:
    """One set being taken: its parts, the threads beside it and their gates. Each restic run costs the
    repository's key derivation (about 0.6 s of CPU on this machine kind): the copy's restic starts before
    the set waits for the pipeline's lock and waits at its gate, so pg_basebackup starts the moment the lock
    is held; the runs the set does not wait for (whether the dump is due, the manifest's snapshot) start once
    the lock is released, so the pipeline's pause does not share the cores with them."""

    def __init__(self, cfg, restic: Restic, host: str, tmp: Path, beside: ThreadPoolExecutor):
        self.cfg, self.restic, self.host, self.beside = cfg, restic, host, beside
        self.counts_file, self.info_file = tmp / "counts.json", tmp / "copy.json"
        self.gate = gate_.Gate(tmp / MANIFEST_NAME, tmp / "manifest.stop")
        self.copy_gate = gate_.Gate(tmp / "copy.go", tmp / "copy.stop")
        self.armed: Future | None = None
        self.snaps: dict[str, dict] = {}
        self.due: Future = Future()  # whether the portable dump is due, once _decide_due has run
        self.storing: Future | None = None
        self.set_id = ""
        self.beside_started = False

    def _decide_due(self) -> None:
        if self.due.set_running_or_notify_cancel():
            try:
                self.due.set_result(_dump_due(self.cfg, self.restic))
            except BaseException as exc:
                self.due.set_exception(exc)

    def arm_copy(self) -> None:
        self.armed = self.beside.submit(_arm_copy, self.cfg, self.restic, self.host, self.set_id, self.info_file,
                                        self.copy_gate)

    def start_beside(self) -> None:
        """The runs the set does not wait for, beside the copy: whether the dump is due, then the manifest's
        restic (it waits at its gate until the manifest is written)."""
        if not self.beside_started:
            self.beside_started = True
            self.beside.submit(self._decide_due)
            self.storing = self.beside.submit(self._store_manifest)

    def _store_manifest(self) -> None:
        parts = [k for k in DATA_KINDS if k != "db" or self.due.result()]
        self.restic.run(*manifest_part_args(self.host, self.set_id, parts, self.gate), on_stdout=lambda line: None)

    def database_parts(self) -> dict:
        """The physical copy, then the portable dump when due; the manifest's `physical` part."""
        self.snaps["pg"], physical = _physical(self.cfg, self.armed, self.copy_gate, self.info_file)
        if self.due.result():
            self.snaps["db"] = _dump(self.cfg, self.restic, self.host, self.set_id, self.counts_file)
        return physical

    def database(self, physical: dict) -> dict:
        """The manifest's `database` part: the dump's exact counts, or the copy's when there is no dump."""
        if self.due.result():
            return json.loads(self.counts_file.read_text())
        return {"database": physical["database"], "collections": physical["collections"]}

    def store(self, body: dict) -> None:
        """Hand the manifest to its waiting restic; the set is complete when that returns."""
        self.gate.open((json.dumps(body, indent=2, sort_keys=True) + "\n").encode())
        self.storing.result()

    def stop(self) -> None:
        """The set failed: the restic runs waiting at a gate store nothing, nothing waits for the dump's
        decision."""
        self.gate.stop()
        self.copy_gate.stop()
        self.due.cancel()
        for what, future in (("manifest", self.storing), ("copy", self.armed)):
            if future is None:
                continue
            try:
                future.result()
            except Exception as exc:  # noqa: BLE001 - the set's own error is the one that counts
                _log.info("the %s was not stored: %s", what, str(exc).splitlines()[0] if str(exc) else
                          type(exc).__name__)


def take(cfg, restic: Restic, dr: DataRoot, host: str | None = None, unlocked: threading.Event | None = None,
         view: Path | None = None) -> dict:
    """Take a set (see the module's text); `unlocked` is set once the pipeline's lock is released (or the set
    failed), for work that should not run during the pause. view: where the data root's cut (snapshots/cut.py)
    is seen at the path restic records for the data root (the backup container mounts it there); None: the
    files are backed up under the lock."""
    host = host or socket.gethostname()
    try:
        with tempfile.TemporaryDirectory(prefix="set-") as tmp, \
                ThreadPoolExecutor(max_workers=4, thread_name_prefix="set") as beside:
            the_set = _Set(cfg, restic, host, Path(tmp), beside)
            try:
                body = _take(the_set, dr, unlocked, view)
            except BaseException:
                the_set.stop()
                raise
    finally:
        if unlocked is not None:
            unlocked.set()
    _log.info("set %s complete (%s): paused the pipeline %.1fs", body["set"], ", ".join(body["parts"]),
              body["paused_seconds"])
    return body


def _files(the_set: _Set, root: Path, digests: manifest.Digests) -> tuple[dict, Future | None]:
    """The files part of the data root (or its cut) at root: its directories' manifest (reading only the files
    changed since the last set), then the restic snapshot; the database parts start beside it when the files
    changed little since the last set (a no-change set takes about as long as its copy), else after it, so that
    the snapshot has the cores to itself. Returns (directories, the database parts beside it or None)."""
    cfg = the_set.cfg
    directories = manifest.directories(root, digests)
    beside_files = (not cfg.backup.dump_under_lock and cfg.backup.beside_files_mb > 0
                    and digests.read_bytes <= cfg.backup.beside_files_mb << 20)
    copying = the_set.beside.submit(the_set.database_parts) if beside_files else None
    the_set.snaps["files"] = the_set.restic.backup(*files_part_args(the_set.host, the_set.set_id, root))
    return directories, copying


def _take(the_set: _Set, dr: DataRoot, unlocked: threading.Event | None, view: Path | None) -> dict:
    cfg, host = the_set.cfg, the_set.host
    # The set's id is its start (snapshots.cli holds the lock of our restic runs: no other set picks one).
    the_set.set_id, started = unique_id(Path(cfg.cache_dir) / "restic" / ".aggregator-dr-last-set-id")
    set_id = the_set.set_id
    the_set.arm_copy()
    digests = manifest.Digests(Path(cfg.cache_dir) / "restic" / DIGESTS_NAME)
    copying = None
    cut_info: dict | None = None
    if view is not None:
        left = cut.clear(dr.root)  # what a killed set left (we hold the lock of our restic runs)
        if left:
            _log.info("set %s: removed the cut a killed set left (%d names)", set_id, left)
    _log.info("set %s: waiting for the exclusive lock on %s", set_id, dr.root)
    # The database parts start after the lock is taken: every report in archive/ got there after its documents
    # were written, and nothing moves while the lock is held, so the copy holds the documents of every archived
    # report the files (or the cut) hold.
    with lock.exclusive(dr, cfg.backup.lock_timeout) as lk:
        _log.info("set %s: locked", set_id)
        paused_from = time.monotonic()
        locked_at = _now()
        recovered = journal.recover(dr, None)
        position = journal.position(dr)
        if view is not None:
            try:
                made = cut.make(dr)
            except BaseException:
                cut.clear(dr.root)  # (a killed set's half cut is cleared by the next one)
                raise
            _log.info("set %s: cut of %d files made in %.2fs", set_id, made.files, made.seconds)
        else:
            directories, copying = _files(the_set, dr.root, digests)
        if cfg.backup.dump_under_lock:
            the_set.start_beside()
            physical = the_set.database_parts()
        paused = round(time.monotonic() - paused_from, 3)
    if unlocked is not None:
        unlocked.set()
    the_set.start_beside()  # (started already when the database parts ran under the lock)
    if view is not None:
        try:
            cut.copy_journal(dr, position, made)
            directories, copying = _files(the_set, view, digests)
        finally:
            _log.info("set %s: removing the cut", set_id)
            removing = time.monotonic()
            cut.clear(dr.root)
        cut_info = {"files": made.files, "folders": made.folders, "made_seconds": made.seconds,
                    "removed_seconds": round(time.monotonic() - removing, 3)}
    digests.save()
    _log.info("set %s: %d files read for the manifest, the others unchanged since the last set", set_id,
              digests.read)
    if copying is not None:
        physical = copying.result()  # the pipeline goes on meanwhile
    elif not cfg.backup.dump_under_lock:
        physical = the_set.database_parts()  # after the files, outside the lock
    snaps = the_set.snaps
    body = {
        "format": manifest.FORMAT, "set": set_id, "host": host, "version": __version__,
        "started": started.strftime("%Y-%m-%dT%H:%M:%SZ"), "locked": locked_at, "ended": _now(),
        "paused_seconds": paused, "lock_waited_seconds": round(lk.waited, 3), "recovered": recovered,
        "dump_under_lock": cfg.backup.dump_under_lock, "portable_dump": the_set.due.result(),
        "database_beside_files": copying is not None, "cut": cut_info,
        "journal_position": position, "directories": directories, "database": the_set.database(physical),
        "physical": physical, "parts": [k for k in KINDS if k in snaps],
        "snapshots": {k: v["snapshot_id"] for k, v in snaps.items()},
        "added_bytes": {k: v.get("data_added", 0) for k, v in snaps.items()},
    }
    the_set.store(body)
    return body


def _tag(snapshot: dict, prefix: str) -> str | None:
    for t in snapshot.get("tags") or []:
        if t.startswith(prefix):
            return t[len(prefix):]
    return None


def group(snapshots: list[dict]) -> dict[str, dict[str, dict]]:
    """{set id: {kind: restic snapshot}} of `restic snapshots --json`'s list, for every snapshot tagged as part
    of a set. Pure: tested on restic's real output."""
    sets: dict[str, dict[str, dict]] = {}
    for snap in snapshots:
        sid, kind = _tag(snap, "set:"), _tag(snap, "kind:")
        if sid and kind in KINDS:
            sets.setdefault(sid, {})[kind] = snap
    return sets


def grouped(restic: Restic) -> dict[str, dict[str, dict]]:
    """{set id: {kind: restic snapshot}} for every snapshot of the repository tagged as part of a set."""
    return group(restic.json(*snapshots_args()) or [])


def read_manifest(restic: Restic, snapshot_id: str) -> dict:
    return json.loads(restic.run(*read_file_args(snapshot_id, f"/{MANIFEST_NAME}"), capture=True, quiet=True))


def _manifest_cache(restic: Restic) -> Path | None:
    """This repository's folder of cached manifests (one per repository location)."""
    if not restic.cache_dir:
        return None
    return Path(restic.cache_dir) / MANIFEST_CACHE / hashlib.sha256(restic.repository.encode()).hexdigest()[:16]


def listed_manifest(restic: Restic, snapshot_id: str, fresh: bool = False) -> dict:
    """A manifest for the listing, from this host's cache when it was read before (unless fresh): a snapshot's
    id is the hash of its content, so the manifest under an id never changes; each restic run costs the
    repository's key derivation (0.6 s), and a listing would otherwise run one per set. Restores and checks
    read the manifest from the repository itself (read_manifest)."""
    cache = _manifest_cache(restic)
    path = cache / f"{snapshot_id}.json" if cache and re.fullmatch(r"[0-9a-f]{64}", snapshot_id) else None
    if path is not None and not fresh:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            pass
    m = read_manifest(restic, snapshot_id)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_bytes(path, json.dumps(m).encode())
    return m


def _forget_cached(restic: Restic, keep: set[str]) -> None:
    """Drop the cached manifests of snapshots the repository no longer lists (forgotten sets)."""
    cache = _manifest_cache(restic)
    if cache is None or not cache.is_dir():
        return
    for entry in cache.glob("*.json"):
        if entry.stem not in keep:
            entry.unlink(missing_ok=True)


def set_row(sid: str, parts: dict[str, dict]) -> dict:
    """A set's row of the listing from its snapshots ({kind: snapshot}, see group): id, time, complete,
    parts and their short ids."""
    return {"set": sid, "time": min(p["time"] for p in parts.values())[:19], "complete": is_complete(parts),
            "parts": sorted(parts), "snapshots": {k: v["short_id"] for k, v in parts.items()}}


def manifest_totals(m: dict) -> dict:
    """What a complete set's row adds from its manifest: paused seconds, reports, bytes, documents, bytes
    added to the repository, the physical copy's bytes."""
    return {"paused_seconds": m["paused_seconds"],
            "reports": sum(d["reports"] for d in m["directories"].values()),
            "bytes": sum(d["bytes"] for d in m["directories"].values()),
            "documents": sum(m["database"]["collections"].values()),
            "added_bytes": sum(m.get("added_bytes", {}).values()),
            "db_bytes": (m.get("physical") or {}).get("bytes")}


def listing(restic: Restic) -> list[dict]:
    """Every set, newest first: id, time, complete, paused seconds, sizes. The manifests down to the newest
    readable one are read from the repository (what a drill or a rebuild restores: its damage must show
    here), the older ones from the cache when it has them."""
    rows = []
    groups = grouped(restic)
    _forget_cached(restic, {p["manifest"]["id"] for p in groups.values() if "manifest" in p})
    fresh = True
    for sid, parts in sorted(groups.items(), reverse=True):
        row = set_row(sid, parts)
        if row["complete"]:
            try:
                m = listed_manifest(restic, parts["manifest"]["id"], fresh)
            except (ResticError, ValueError) as exc:
                row.update(complete=False, problem=f"manifest unreadable: {exc}")
            else:
                fresh = False
                row.update(manifest_totals(m))
        rows.append(row)
    return rows


def forget_plan(groups: dict[str, dict[str, dict]], policy, dry_run: bool = False) -> tuple[dict, list[str]]:
    """(forget's result: the sets the retention policy keeps, newest first, and those it drops; the ids of the
    dropped sets' snapshots, all parts of a set together) for the repository's sets (see group). Pure."""
    from snapshots import retention

    kept = retention.keep({sid: is_complete(parts) for sid, parts in groups.items()}, policy)
    drop = sorted(set(groups) - kept)
    ids = [snap["id"] for sid in drop for snap in groups[sid].values()]
    return {"keep": sorted(kept, reverse=True), "forget": drop, "snapshots_removed": 0 if dry_run else len(ids),
            "dry_run": dry_run}, ids


def forget(restic: Restic, policy, dry_run: bool = False) -> dict:
    """Apply the retention policy to whole sets (all their parts together), then prune."""
    result, ids = forget_plan(grouped(restic), policy, dry_run)
    if ids and not dry_run:
        restic.run(*forget_args(ids))
        # restic forget exits 0 even when the backend refused a delete (an append-only rest-server): check.
        left = {snap["id"] for parts in grouped(restic).values() for snap in parts.values()} & set(ids)
        if left:
            raise ResticError(f"the repository refused to delete {len(left)} of {len(ids)} snapshots "
                              f"(is it append-only?); nothing was pruned")
        restic.run(*prune_args())
    return result
