"""Restoring a snapshot set: its state directories into a data root, its portable dump into a database, or
its physical copy into PostgreSQL's volume (`restore_copy`; the host starts PostgreSQL on it and verifies,
dr/jobs/restore.py); each part verified against the set's manifest before it counts as restored.

Files are restored beside the target first (`<target>/.restore-<set>/`, the same file system), compared
with the manifest (digest per state directory), and only then moved into place under the data root's
exclusive lock; whatever the target held before (allowed only with force) is moved aside to
`<target>/.replaced-<set>/`, never deleted. The database is restored by streaming `restic dump` of the
dump straight into snapshots.dbdump (no temporary file), then counted per collection.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from common import log
from common.errors import DrError
from database import db as dbconn
from snapshots import cut as cutsnap
from snapshots import dbdump, manifest, pgcopy, sets
from snapshots.restic import Restic, dump_args, restore_args
from stages import cut, lock
from stages.layout import DataRoot

_log = log.get("restore")
IGNORED = (".lock",)  # lock files may exist in an empty data root


class RestoreError(DrError):
    pass


def resolve(restic: Restic, wanted: str = "latest") -> tuple[str, dict]:
    """(set id, parts) of the named set, or of the newest complete one for "latest"."""
    groups = sets.grouped(restic)
    complete = sorted((sid for sid, parts in groups.items() if sets.is_complete(parts)), reverse=True)
    if wanted == "latest":
        if not complete:
            raise RestoreError(f"there is no complete snapshot set in {restic.repository}")
        return complete[0], groups[complete[0]]
    if wanted not in groups:
        raise RestoreError(f"there is no set {wanted} in {restic.repository}; complete sets: "
                           + (", ".join(complete[:10]) or "none"))
    if wanted not in complete:
        older = [s for s in complete if s < wanted]
        raise RestoreError(f"set {wanted} is incomplete (it has only {', '.join(sorted(groups[wanted]))}); "
                           f"the complete set before it: {older[0] if older else 'none'}")
    return wanted, groups[wanted]


def pick(restic: Restic, wanted: str = "latest") -> tuple[str, dict, dict]:
    """(set id, parts, manifest) of the named set, or of the newest complete one for "latest"."""
    set_id, parts = resolve(restic, wanted)
    return set_id, parts, sets.read_manifest(restic, parts["manifest"]["id"])


def occupied(target: Path) -> dict[str, int]:
    """Files per top-level entry of target (lock files, our own restore folders and a set's cut aside)."""
    found: dict[str, int] = {}
    if not target.is_dir():
        return found
    for entry in sorted(target.iterdir()):
        if entry.name.startswith((".lock", ".restore-", ".replaced-", cut.CUT)):
            continue
        n = sum(len(files) for _, _, files in os.walk(entry)) if entry.is_dir() else 1
        if n:
            found[entry.name] = n
    return found


def restore_files(restic: Restic, set_id: str, parts: dict, expected: dict, target: Path, force: bool,
                  lock_timeout: float) -> dict:
    there = occupied(target)
    if there and not force:
        raise RestoreError(f"{target} is not empty (" + ", ".join(f"{k}: {v} files" for k, v in there.items())
                           + "); restore with --force to move that content aside and put the set in its place")
    target.mkdir(parents=True, exist_ok=True)
    if cutsnap.clear(target):  # what a killed set left: its second names would pin what is moved aside
        _log.info("removed the cut a killed set left in %s", target)
    staging = target / f".restore-{set_id}"
    if staging.exists():
        shutil.rmtree(staging)  # ours: the remains of an interrupted restore of the same set
    t0 = time.monotonic()
    restic.run(*restore_args(parts["files"]["id"], staging))
    restored = staging / parts["files"]["paths"][0].lstrip("/")
    actual = manifest.directories(restored)
    problems = manifest.compare({"directories": expected["directories"]}, {"directories": actual})
    if problems:
        shutil.rmtree(staging)
        raise RestoreError("the restored files do not match the set's manifest; nothing was changed in "
                           f"{target}:\n  " + "\n  ".join(problems))
    seconds = time.monotonic() - t0
    aside = target / f".replaced-{set_id}"
    with lock.exclusive(DataRoot(target), lock_timeout):
        moved = [name for entry in sorted(restored.iterdir()) if not entry.name.startswith(IGNORED)
                 for name in _swap_in(entry, target / entry.name, aside / entry.name)]
    shutil.rmtree(staging)
    return {"target": str(target), "directories": actual, "seconds": round(seconds, 2),
            "bytes": sum(d["bytes"] for d in actual.values()), "files": sum(d["files"] for d in actual.values()),
            "moved_aside": str(aside) if moved else None}


def _swap_in(restored: Path, current: Path, aside: Path) -> list[str]:
    """Put one restored top-level entry in place; whatever was there goes to `aside`. A folder that exists on
    both sides keeps its inode (its content is exchanged), so bind mounts of it, such as the web mirror's
    archive/, see the restored content. Returns what was moved aside."""
    moved = []
    if restored.is_dir() and current.is_dir() and not current.is_symlink():
        for child in sorted(current.iterdir()):
            aside.mkdir(parents=True, exist_ok=True)
            child.rename(aside / child.name)
            moved.append(f"{current.name}/{child.name}")
        for child in sorted(restored.iterdir()):
            child.rename(current / child.name)
        os.chmod(current, restored.stat().st_mode & 0o7777)
        restored.rmdir()
        return moved
    if current.exists() or current.is_symlink():
        aside.parent.mkdir(parents=True, exist_ok=True)
        current.rename(aside)
        moved.append(current.name)
    restored.rename(current)
    return moved


def restore_db(restic: Restic, parts: dict, expected: dict, db, force: bool, counter=None) -> dict:
    """The set's dump into db, then verified: counts (by counter(collections) when given: PostgreSQL's
    exact count; else FerretDB's count command), reports per test and country, acknowledged writes."""
    if "db" not in parts:
        raise RestoreError(f"set {expected['set']} has no portable dump (backup.portable_dump decides which sets "
                           "carry one): restore its physical copy (`invoke restore` without --from-dump), or "
                           "an earlier set with a dump (`invoke snapshots` lists them)")
    non_empty = [c for c in db.list_collection_names() if not dbconn.is_empty(db, c)]
    if non_empty and not force:
        raise RestoreError(f"database {db.name} is not empty (collections {', '.join(sorted(non_empty))}); "
                           "restore with --force to replace them")
    t0 = time.monotonic()
    written = restic.read(dump_args(parts["db"]["id"], f"/{sets.DUMP_NAME}"),
                          lambda stream: dbdump.restore(db, stream, force,
                                                        expect_sha256=expected["database"].get("sha256")))
    wanted = list(expected["database"]["collections"])
    counts = counter(wanted) if counter else {c: dbconn.count(db, c) for c in wanted}
    tally = manifest.report_tally(db) if manifest.REPORTS in counts else {}
    problems = manifest.compare({"database": expected["database"]},
                                {"database": {"collections": counts, "reports_by_test_country": tally}})
    problems += [f"{c}: the database acknowledged {n} documents written, the set has "
                 f"{expected['database']['collections'].get(c, 0)}" for c, n in sorted(written.items())
                 if n != expected["database"]["collections"].get(c, 0)]
    if problems:
        raise RestoreError("the restored database does not match the set's manifest:\n  " + "\n  ".join(problems))
    return {"database": db.name, "collections": counts, "reports_by_test_country": tally,
            "seconds": round(time.monotonic() - t0, 2)}


def restore_copy(restic: Restic, wanted: str, volume: Path, force: bool,
                 picked: tuple[str, dict, dict] | None = None) -> dict:
    """The set's physical copy into PostgreSQL's volume (PostgreSQL stopped): unpacked beside the data
    directory, checked (major version, pg_verifybackup; an older set's sha256), then put in its place; the
    previous data directory is kept aside. PostgreSQL's start and the counts are checked by the caller (on the host).
    picked: what pick() returned for wanted, when the caller has it already."""
    set_id, parts, expected = picked or pick(restic, wanted)
    physical = expected.get("physical")
    if not physical or "pg" not in parts:
        raise RestoreError(f"set {set_id} has no physical copy of the database (it was taken by an earlier "
                           "version): restore its portable dump (`invoke restore --from-dump`)")
    pgcopy.check_major(physical["postgres_major"])
    if pgcopy.holds_cluster(volume) and not force:
        raise RestoreError("PostgreSQL's volume already holds a database: restore with --force to put the set's "
                           "copy in its place (the current data directory is kept aside, never deleted)")
    t0 = time.monotonic()
    staged = pgcopy.staging_dir(volume, set_id)
    got = restic.read(dump_args(parts["pg"]["id"], f"/{pgcopy.COPY_NAME}"),
                      lambda stream: pgcopy.unpack(stream, staged, physical.get("sha256")))
    try:
        pgcopy.verify(staged)
    except pgcopy.CopyError:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    replaced = pgcopy.swap_in(volume, set_id)
    return {"set": set_id, "sha256": got["sha256"], "bytes": got["bytes"],
            "seconds": round(time.monotonic() - t0, 2), "postgres_major": physical["postgres_major"],
            "replaced": replaced}


def restore(restic: Restic, wanted: str, target: Path | None, db, force: bool, lock_timeout: float,
            counter=None, picked: tuple[str, dict, dict] | None = None) -> dict:
    """Restore the set's files into target (None: skip) and its dump into db (None: skip); verified.
    picked: what pick() returned for wanted, when the caller has it already."""
    set_id, parts, expected = picked or pick(restic, wanted)
    result = {"set": set_id, "set_started": expected["started"], "manifest": expected}
    if target is not None:
        result["files"] = restore_files(restic, set_id, parts, expected, target, force, lock_timeout)
    if db is not None:
        result["db"] = restore_db(restic, parts, expected, db, force, counter)
    return result
