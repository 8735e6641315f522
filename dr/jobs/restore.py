"""A restore, on the host (`invoke restore`, rebuild): the set's state directories, then its database, each
verified; which way the database comes back, and the physical copy's procedure around PostgreSQL's container.

A set with a physical copy (snapshots/pgcopy.py) is restored physically: PostgreSQL and FerretDB stop, the
backup container (`pg-restore`) unpacks the copy beside the data directory in PostgreSQL's volume, checks it
(sha256, major version, pg_verifybackup) and puts it in place, keeping the previous data directory aside;
then PostgreSQL starts on it (replaying the WAL the copy carries) and the restore is verified: every role
logs in, PostgreSQL's exact counts per collection are within what the manifest recorded around the copy,
and every collection reads through FerretDB. If that verification fails, the previous data directory is
put back (`pg-undo`) and started again.

A set without one (taken before the physical copy), or `--from-dump`, restores the portable dump into the
running database (snapshots.cli restore --no-files), as before.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from common import log
from common.config import Config
from common.errors import DrError
from common.records import Record, key, optional
from database import db as dbconn
from dr.jobs import backup
from dr.services import stack
from snapshots import pgcopy
from snapshots.results import CopyRestored, DbRestored, FilesRestored, Manifest, SetRow

_log = log.get("restore")


class DbRestoreFailed(DrError):
    pass


@dataclass
class CopyReport(Record):
    """A physical restore, verified: the set's copy put in place in the database (its size, PostgreSQL's major
    version, where the previous data directory went), the counts found, the seconds it took in all and in
    the backup container (copy_seconds), and per phase (stop, copy, start, verify)."""
    set_id: str = key("set")
    database: str
    bytes: int
    postgres_major: int
    collections: dict[str, int]
    seconds: float
    copy_seconds: float
    phases: dict[str, float] = field(default_factory=dict)
    replaced: str | None = optional()
    sha256: str | None = optional()

    @property
    def documents(self) -> int:
        return sum(self.collections.values())

    def line(self) -> str:
        """One line of `invoke restore`'s text."""
        counts = ", ".join(f"{k} {v}" for k, v in sorted(self.collections.items()))
        return (f"database {self.database} from the physical copy ({self.bytes / 1e6:.1f} MB, PostgreSQL "
                f"{self.postgres_major}): {counts} in {self.seconds:.1f}s"
                + (f"; the previous database is in PostgreSQL's volume as {self.replaced}" if self.replaced else ""))


def copy_report(cfg: Config, copied: CopyRestored, collections: dict[str, int], seconds: float,
                phases: dict[str, float]) -> CopyReport:
    """The report of a physical restore of cfg's database: what the backup container put in place (copied)
    and what the host measured around it."""
    return CopyReport(copied.set_id, cfg.db.database, copied.bytes, copied.postgres_major, collections, seconds,
                      copied.seconds, phases, replaced=copied.replaced, sha256=copied.sha256)


def chosen_set(cfg: Config, wanted: str = "latest", offsite: bool = False, newest_whole: bool = False) -> SetRow:
    """The set a restore means: the newest complete one for "latest", else the one named (complete). With
    newest_whole (a drill proves the latest set), a damaged set newer than that is an error, not skipped."""
    code, listed = backup.run(cfg, "list", offsite=offsite)
    if code != 0:
        raise DbRestoreFailed(f"cannot list the snapshot sets (exit {code}); the reason is in the log above")
    complete = listed.complete
    if wanted == "latest":
        for row in listed.sets:
            if row.complete:
                return row
            if newest_whole and row.problem:
                raise DbRestoreFailed(f"set {row.set_id}, the newest, cannot be restored: {row.problem}")
        raise DbRestoreFailed("the repository has no complete snapshot set")
    for row in complete:
        if row.set_id == wanted:
            return row
    raise DbRestoreFailed(f"there is no complete set {wanted}; complete sets: "
                          + (", ".join(r.set_id for r in complete[:10]) or "none"))


def has_copy(row: SetRow) -> bool:
    return "pg" in row.parts


def verify(cfg: Config, manifest: Manifest, read: Callable[[list[str]], None]) -> dict[str, int]:
    """The restored copy against the manifest: PostgreSQL's exact counts within the copy's range, and every
    collection read through FerretDB (read). Returns the counts; DbRestoreFailed naming what is wrong."""
    physical = manifest.physical
    counts = stack.pg_counts(cfg)  # this host's PostgreSQL: the copy was just put into it
    problems = physical.problems(counts)  # every collection of either side; one missing counts as 0
    if problems:
        raise DbRestoreFailed("the restored database does not match the set's copy:\n  " + "\n  ".join(problems))
    read(sorted(physical.collections))
    return counts


def read_through_ferretdb(cfg: Config, collections: list[str]) -> None:
    """Every collection answers a query through FerretDB, as the reader role."""
    client = stack.db_client(cfg, "reader")
    try:
        db = client[cfg.db.database]
        listed = set(db.list_collection_names())
        for coll in collections:
            if coll not in listed:
                raise DbRestoreFailed(f"FerretDB does not list the collection {coll} after the restore")
            db[coll].find_one({}, {"_id": 1})
    finally:
        client.close()


def restore_copy(cfg: Config, set_id: str, manifest: Manifest, offsite: bool = False, force: bool = False
                 ) -> CopyReport:
    """The set's physical copy into this host's PostgreSQL (its services are stopped and started again),
    verified; the previous database is kept aside, and put back when the verification fails."""
    try:  # before anything stops: a copy of another major version cannot start here
        pgcopy.check_major(manifest.physical.postgres_major)
    except pgcopy.CopyError as exc:
        raise DbRestoreFailed(f"set {set_id}: {exc}") from None
    phases: dict[str, float] = {}
    t0 = mark = time.monotonic()

    def phase(name: str) -> None:
        nonlocal mark
        now = time.monotonic()
        phases[name] = round(now - mark, 2)
        mark = now

    stack.stop(cfg, ("db", "postgres"))
    phase("stop")
    extra = ("--snapshot-set", set_id) + (("--force",) if force else ())
    code, copied = backup.run(cfg, "pg-restore", extra=extra, offsite=offsite)
    phase("copy")
    if code != 0 or copied is None:
        _restart(cfg)
        raise DbRestoreFailed(f"the physical copy of set {set_id} could not be put in place (exit {code}); the "
                              "reason is in the log above; the database was not changed")
    try:
        _restart(cfg)
        phase("start")
        counts = verify(cfg, manifest, lambda colls: read_through_ferretdb(cfg, colls))
        phase("verify")
    except DrError as exc:
        _log.error("the restored copy failed its verification: %s; putting the previous database back", exc)
        stack.stop(cfg, ("db", "postgres"))
        backup.run(cfg, "pg-undo", extra=("--snapshot-set", set_id)
                   + (("--replaced", copied.replaced) if copied.replaced else ()))
        _restart(cfg)
        raise DbRestoreFailed(f"set {set_id}: {exc}; the previous database is back in place, the restored "
                              f"copy is in PostgreSQL's volume as failed-{set_id}") from None
    _log.info("set %s: physical copy restored and verified in %.1fs (%s)", set_id, time.monotonic() - t0,
              ", ".join(f"{k} {v}s" for k, v in phases.items()))
    return copy_report(cfg, copied, counts, round(time.monotonic() - t0, 2), phases)


def _restart(cfg: Config) -> None:
    stack.start(cfg)
    stack.wait_healthy(cfg)


@dataclass
class Restored(Record):
    """What `restore` put back: the set, its manifest, and the parts restored (the database either as the
    physical copy or from the portable dump)."""
    set_id: str = key("set")
    set_started: str
    manifest: Manifest
    files: FilesRestored | None = optional()
    dump: DbRestored | None = optional("db")
    copy: CopyReport | None = optional()

    @property
    def documents(self) -> int:
        return self.copy.documents if self.copy else self.dump.documents if self.dump else 0

    def render(self) -> str:
        lines = [f"restored set {self.set_id} (taken {self.set_started}), verified against its manifest:"]
        if self.files is not None:
            f = self.files
            lines.append(f"  files: {f.files} files, {f.bytes / 1e6:.1f} MB into {f.target} in {f.seconds:.1f}s"
                         + (f"; the previous content is in {f.moved_aside}" if f.moved_aside else ""))
        if self.dump is not None:
            d = self.dump
            lines.append(f"  database {d.database} from the portable dump: "
                         + ", ".join(f"{k} {v}" for k, v in sorted(d.collections.items())) + f" in {d.seconds:.1f}s")
        if self.copy is not None:
            lines.append("  " + self.copy.line())
        return "\n".join(lines)


def database_empty(cfg: Config) -> bool:
    """Whether the live database holds no document (a fresh one holds empty collections)."""
    return not non_empty_collections(cfg)


def non_empty_collections(cfg: Config) -> list[str]:
    """The live database's collections that hold a document."""
    client = stack.db_client(cfg)
    try:
        d = client[cfg.db.database]
        return sorted(c for c in d.list_collection_names() if not dbconn.is_empty(d, c))
    finally:
        client.close()


def restore(cfg: Config, wanted: str = "latest", files: bool = True, db: bool = True, force: bool = False,
            offsite: bool = False, from_dump: bool = False, row: SetRow | None = None) -> Restored:
    """Restore a set (row, when the caller has listed it already, else chosen_set(wanted)): its files into
    cfg's data root (snapshots.cli restore), then its database: the physical copy when the set has one
    (unless from_dump), else the portable dump. Refuses a non-empty data root or database unless force.
    DrError naming what failed."""
    row = row or chosen_set(cfg, wanted, offsite)
    physical = db and has_copy(row) and not from_dump
    if physical and not force:
        there = non_empty_collections(cfg)
        if there:
            raise DbRestoreFailed(f"database {cfg.db.database} is not empty (collections {', '.join(there)}); "
                                  "restore with --force to replace it (the current one is kept aside)")
    extra = ("--snapshot-set", row.set_id) + (("--force",) if force else ())
    code, result = backup.run(cfg, "restore", extra=extra, offsite=offsite, files=files,
                              db=db and not physical)
    if code != 0 or result is None:
        raise DbRestoreFailed(f"the restore of set {row.set_id} failed (exit {code}); the reason is in the log "
                              "above")
    done = Restored(result.set_id, result.set_started, result.manifest, files=result.files, dump=result.db)
    if physical:
        # The live database is empty (checked above) or force was given: its cluster is replaced, kept aside.
        done.copy = restore_copy(cfg, row.set_id, result.manifest, offsite=offsite, force=True)
    return done
