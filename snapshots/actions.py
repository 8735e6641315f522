"""The actions of `python -m snapshots.cli`, one row each in ACTIONS (at the end): the function that runs it,
the type of its result (snapshots/results.py) and what its container needs. snapshots/cli.py dispatches
from the table, dr/jobs/contract.py derives each container's mounts, secrets and networks from it, dr/jobs/backup.py
reads each result back into the type the row names (dr/jobs/launch.py `run_job`). Adding an action is one
function and one row.

Every function is `f(args, cfg) -> its result type` (one record, `list`'s too: SetList): args are snapshots.cli's
parsed arguments, cfg the container's configuration.
"""

from __future__ import annotations

import argparse
import contextlib
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from common import log, secrets
from common.config import Config
from common.errors import CommandError, ConfigError, DrError
from common.records import Record
from database import db as dbconn
from database import pgroles, pgsql
from snapshots import artifacts, check, dbdump, offsite, pgcopy, release, restore, results, sets
from snapshots.restic import Restic, ResticError, cat_config_args, init_args
from stages import journal
from stages.layout import DataRoot

_log = log.get("actions")
ARTIFACTS = Path("/artifacts")  # where dr/jobs/contract.py mounts the host's <cache_dir>/go
PG_VOLUME = Path("/pgvolume")  # where dr/jobs/contract.py mounts PostgreSQL's volume (pg_volume, restore --with-copy)


def restic_for(cfg: Config) -> Restic:
    """The primary repository."""
    return Restic(cfg.backup.repository, str(Path(cfg.secrets_dir) / secrets.RESTIC_PASSWORD),
                  str(Path(cfg.cache_dir) / "restic"))


def offsite_restic_for(cfg: Config) -> Restic:
    """The off-site repository, its server's TLS checked first (rest:https://)."""
    if not cfg.offsite.repository:
        raise ConfigError("no off-site repository is configured (offsite.repository)")
    offsite.check_tls(cfg.offsite.repository, cfg.offsite.ca_file or None)
    return Restic(cfg.offsite.repository, str(Path(cfg.secrets_dir) / secrets.OFFSITE_RESTIC_PASSWORD),
                  str(Path(cfg.cache_dir) / "restic"), rest_user=cfg.offsite.user,
                  rest_password_file=str(Path(cfg.secrets_dir) / secrets.OFFSITE_HTTP_PASSWORD),
                  cacert=cfg.offsite.ca_file or None)


def _repository(args: argparse.Namespace, cfg: Config) -> Restic:
    """The repository the action works on: the off-site one with --offsite, else the primary one."""
    return offsite_restic_for(cfg) if args.offsite else restic_for(cfg)


@contextlib.contextmanager
def _postgresql(cfg: Config) -> Iterator[pgsql.Psql]:
    """psql as the configuration's role; a failed command becomes one sentence naming the server and role."""
    psql = pgsql.for_config(cfg)
    try:
        yield psql
    except CommandError as exc:
        raise DrError(f"PostgreSQL at {cfg.db.postgres_host} as {psql.role}: {exc.stderr_tail.strip()}") from None


# --- the actions --------------------------------------------------------------------------------------------

def init(args: argparse.Namespace, cfg: Config) -> results.InitResult:
    """Create the repository unless it exists."""
    restic = _repository(args, cfg)
    try:
        restic.run(*cat_config_args(), capture=True, quiet=True)
        return results.InitResult(created=False, repository=restic.repository)
    except ResticError as exc:
        if "no restic repository" not in str(exc):
            raise
    restic.run(*init_args())
    return results.InitResult(created=True, repository=restic.repository)


def _save_artifacts(restic: Restic, host: str, after: threading.Event) -> dict:
    after.wait()
    try:
        return artifacts.save(restic, ARTIFACTS, host)
    except ResticError as exc:
        return {"saved": False, "error": str(exc)}


def take(args: argparse.Namespace, cfg: Config) -> results.TakeResult:
    """A new set, and the build artifacts beside it once the pipeline's pause is over (they belong to no
    set; a failure there never spoils the set)."""
    restic = _repository(args, cfg)
    if args.offsite:
        raise ConfigError("sets are taken into the primary repository; `copy` puts them off-site")
    unlocked = threading.Event()
    dr = DataRoot(cfg.data_root)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="artifacts") as beside:
        saving = beside.submit(_save_artifacts, restic, args.host, unlocked) if ARTIFACTS.is_dir() else None
        result = sets.take(cfg, restic, dr, args.host, unlocked, Path(args.cut_view) if args.cut_view else None)
        if saving is not None:
            result["artifacts"] = saving.result()
    journal.append(dr, release.taken_note(result["set"], result["journal_position"]))
    if args.release_list:
        result["release"] = _release(restic, dr, "local", result["set"])
    return results.TakeResult.from_dict(result)


def _release(restic: Restic, dr: DataRoot, repository: str, set_id: str | None = None) -> dict:
    """The release list of a set (the newest complete one when set_id is None) written into the data root
    (snapshots/release.py): results.Release's fields; a failure is named there, never raised (the set is
    fine, the next one retries)."""
    try:
        set_id = set_id or release.newest_offsite(restic)
        written, reports = release.for_set(restic, dr, set_id, repository)
        return {"set": set_id, "repository": repository, "file": dr.relative(written), "reports": reports}
    except (DrError, OSError, ValueError, KeyError) as exc:
        _log.info("no release list: %s", exc)
        return {**({"set": set_id} if set_id else {}), "repository": repository,
                "error": str(exc) or type(exc).__name__}


def list_sets(args: argparse.Namespace, cfg: Config) -> results.SetList:
    """The repository's sets, newest first."""
    return results.SetList.from_dict({"sets": sets.listing(_repository(args, cfg))})


def forget(args: argparse.Namespace, cfg: Config) -> results.ForgetResult:
    return results.ForgetResult.from_dict(sets.forget(_repository(args, cfg), cfg.retention, args.dry_run))


def check_repository(args: argparse.Namespace, cfg: Config) -> results.CheckResult:
    return results.CheckResult.from_dict(check.check(_repository(args, cfg), args.read_data_subset))


def copy_offsite(args: argparse.Namespace, cfg: Config) -> results.CopyResult:
    """The complete sets the off-site repository lacks, copied from the primary one; with --release-list, the
    newest complete off-site set's release list."""
    there = offsite_restic_for(cfg)
    result = offsite.copy(restic_for(cfg), there)
    if args.release_list:
        result["release"] = _release(there, DataRoot(cfg.data_root), "offsite")
    return results.CopyResult.from_dict(result)


def restore_set(args: argparse.Namespace, cfg: Config) -> results.RestoreResult:
    """A set's files into the data root (unless --no-files) and its portable dump into the database (unless
    --no-db), or with --with-copy its physical copy into PostgreSQL's volume beside the files."""
    import pymongo.errors

    restic = _repository(args, cfg)
    if args.with_copy and not args.no_db:
        raise restore.RestoreError("--with-copy restores the database as its physical copy: add --no-db")
    client = None
    if not args.no_db:
        # As the owner (the contract's role for a restore): it creates the collections and their indexes.
        client = dbconn.client_as(cfg.db, cfg.secrets_dir, dbconn.role_of(cfg.db), socketTimeoutMS=600000)
    try:
        counter = None
        if cfg.db.postgres_host:
            def counter(collections):
                return pgsql.for_config(cfg).counts(cfg.db.database, collections)
        target = None if args.no_files else Path(cfg.data_root)
        database = None if client is None else client[cfg.db.database]
        picked = restore.pick(restic, args.snapshot_set)  # once for both parts: each restic run costs 0.6 s
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pg-restore") as beside:
            copying = (beside.submit(restore.restore_copy, restic, args.snapshot_set, PG_VOLUME, args.force, picked)
                       if args.with_copy else None)
            result = restore.restore(restic, args.snapshot_set, target, database, args.force,
                                     cfg.backup.lock_timeout, counter, picked)
            if copying is not None:
                result["copy"] = copying.result()
        if client is not None and cfg.db.postgres_host:
            # FerretDB does not know the GIN indexes (a dump cannot carry them): made again for what was restored.
            db_indexes(args, cfg)
        return results.RestoreResult.from_dict(result)
    except dbdump.DumpError as exc:
        raise restore.RestoreError(f"the database dump cannot be restored: {exc}") from None
    except pymongo.errors.PyMongoError as exc:
        raise restore.RestoreError(f"database {cfg.db.host}:{cfg.db.port}: {type(exc).__name__}: {exc}") from None
    finally:
        if client is not None:
            client.close()


def artifacts_restore(args: argparse.Namespace, cfg: Config) -> results.ArtifactsRestored:
    """The newest build artifacts into the host's artifact folder."""
    return results.ArtifactsRestored.from_dict(artifacts.restore(_repository(args, cfg), ARTIFACTS))


def db_counts(args: argparse.Namespace, cfg: Config) -> results.DbCounts:
    """Exact documents per collection, counted by PostgreSQL."""
    with _postgresql(cfg) as psql:
        return results.DbCounts(cfg.db.database, psql.counts(cfg.db.database))


def db_indexes(args: argparse.Namespace, cfg: Config) -> results.DbIndexes:
    """The GIN indexes FerretDB's pushed-down filters use, made where missing."""
    with _postgresql(cfg) as psql:
        return results.DbIndexes(cfg.db.database, psql.ensure_indexes(cfg.db.database))


def db_password(args: argparse.Namespace, cfg: Config) -> results.PasswordSet:
    """The role gives itself the new password written beside its password file (dr/jobs/rotate.py)."""
    with _postgresql(cfg) as psql:
        pending = Path(cfg.secrets_dir) / pgroles.pending_name(psql.role)
        return results.PasswordSet(psql.role, pgroles.set_own_password(psql, pending))


def pg_restore(args: argparse.Namespace, cfg: Config) -> results.CopyRestored:
    """A set's physical copy into PostgreSQL's volume (PostgreSQL stopped)."""
    restic = _repository(args, cfg)
    return results.CopyRestored.from_dict(restore.restore_copy(restic, args.snapshot_set, PG_VOLUME, args.force))


def pg_undo(args: argparse.Namespace, cfg: Config) -> results.CopyUndone:
    """A restored data directory set aside, the one pg-restore replaced (--replaced) put back."""
    pgcopy.swap_back(PG_VOLUME, args.replaced, args.snapshot_set)
    return results.CopyUndone(args.snapshot_set, args.replaced)


# --- the table ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Action:
    """One action: its function, its result's type, and what its container needs (dr/jobs/contract.py). Its
    networks follow: the instance's with a db_role, the off-site one with the off-site repository."""
    run: Callable[[argparse.Namespace, Config], Record]
    result: type[Record]      # the type of its result
    data: bool = False        # the data root, read-write (the pipeline's lock file lives there)
    cut: bool = False         # with backup.cut: the data root's cut at /data, the data root beside it (--cut-view)
    artifacts: str = ""       # "ro-if-present" or "rw": the Go artifacts folder at /artifacts
    db_role: str = ""         # the database: this role's password, its host, the instance network
    files_flag: bool = False  # restore: --no-files / --no-db say what it restores
    both_repositories: bool = False  # the primary and the off-site repository, whatever --offsite says
    repository: bool = True   # a restic repository at all, and the lock of our restic runs while it works
    pg_volume: bool = False   # PostgreSQL's named volume, read-write at /pgvolume (PostgreSQL stopped)
    pending: bool = False     # with db_role "any" (the caller names the role): it also gets its new password


ACTIONS: dict[str, Action] = {
    "init": Action(init, results.InitResult),
    "take": Action(take, results.TakeResult, data=True, cut=True, artifacts="ro-if-present", db_role="backup"),
    "list": Action(list_sets, results.SetList),  # newest first
    "forget": Action(forget, results.ForgetResult),
    "check": Action(check_repository, results.CheckResult),  # exit 1 when not ok
    # the data root: the journal and releases/ (--release-list)
    "copy": Action(copy_offsite, results.CopyResult, data=True, both_repositories=True),
    # data only with files, db only with db; the owner role, because a restore creates collections
    "restore": Action(restore_set, results.RestoreResult, data=True, db_role="owner", files_flag=True),
    "artifacts-restore": Action(artifacts_restore, results.ArtifactsRestored, artifacts="rw"),
    # the database actions work on PostgreSQL through psql, as their role
    "db-counts": Action(db_counts, results.DbCounts, db_role="reader", repository=False),
    "db-indexes": Action(db_indexes, results.DbIndexes, db_role="owner", repository=False),
    # a role gives itself its new password (the database on its own host; dr/jobs/rotate.py)
    "db-password": Action(db_password, results.PasswordSet, db_role="any", repository=False, pending=True),
    # the set's physical copy into PostgreSQL's volume, and back out of it (snapshots/pgcopy.py)
    "pg-restore": Action(pg_restore, results.CopyRestored, pg_volume=True),
    "pg-undo": Action(pg_undo, results.CopyUndone, pg_volume=True, repository=False),
}
