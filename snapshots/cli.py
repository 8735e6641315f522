"""Snapshot sets from the command line, as the backup image runs them (`invoke snapshot` and friends
start this in the backup container):

    python -m snapshots.cli init|take|list|forget|check|copy|restore|artifacts-restore|db-counts|db-indexes|
                            db-password|pg-restore|pg-undo
                            [--offsite] [--dry-run]
                            [--read-data-subset N%] [--snapshot-set ID] [--no-files] [--no-db] [--force]
                            [--config FILE] [--set KEY=VALUE ...] [--host NAME]

--offsite makes init, list, check, forget and restore work on the off-site repository; copy copies complete sets
from the primary repository to the off-site one. Prints the action's result (its type in snapshots/results.py)
as JSON on stdout; errors are one sentence on stderr and a non-zero exit (2: configuration). A check result
with "ok": false (check found a problem) is printed too, and exits 1. Every run holds the host-wide lock of
our restic runs (snapshots/repolock.py).
"""

from __future__ import annotations

import argparse
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import config as dr_config
from common import db as dbconn
from common import log, secrets
from common.errors import CommandError, ConfigError, DrError
from snapshots import artifacts, check, dbdump, offsite, pgcopy, pgroles, pgsql, restore, results, sets
from snapshots.repolock import repo_lock
from snapshots.restic import BACKUP_HOSTNAME, Restic, ResticError
from stages.layout import DataRoot
from stages.lock import LockTimeout

ACTIONS = ("init", "take", "list", "forget", "check", "copy", "restore", "artifacts-restore", "db-counts",
           "db-indexes", "db-password", "pg-restore", "pg-undo")
# The database actions work on PostgreSQL through psql, not on a repository (as the role dr/contract.py
# gives them: reader counts, owner makes indexes, a role gives itself its new password: db-password, when
# the database has a host of its own; dr/rotate.py).
DB_ACTIONS = ("db-counts", "db-indexes", "db-password")
ARTIFACTS = Path("/artifacts")  # where dr/backup.py mounts the host's <cache_dir>/go
PG_VOLUME = Path("/pgvolume")  # where dr/contract.py mounts PostgreSQL's volume (pg-restore, pg-undo)


def restic_for(cfg) -> Restic:
    return Restic(cfg.backup.repository, str(Path(cfg.secrets_dir) / secrets.RESTIC_PASSWORD),
                  str(Path(cfg.cache_dir) / "restic"))


def offsite_restic_for(cfg) -> Restic:
    if not cfg.offsite.repository:
        raise ConfigError("no off-site repository is configured (offsite.repository)")
    offsite.check_tls(cfg.offsite.repository, cfg.offsite.ca_file or None)
    return Restic(cfg.offsite.repository, str(Path(cfg.secrets_dir) / secrets.OFFSITE_RESTIC_PASSWORD),
                  str(Path(cfg.cache_dir) / "restic"), rest_user=cfg.offsite.user,
                  rest_password_file=str(Path(cfg.secrets_dir) / secrets.OFFSITE_HTTP_PASSWORD),
                  cacert=cfg.offsite.ca_file or None)


def init(restic: Restic) -> results.InitResult:
    try:
        restic.run("cat", "config", capture=True, quiet=True)
        return results.InitResult(created=False, repository=restic.repository)
    except ResticError as exc:
        if "no restic repository" not in str(exc):
            raise
    restic.run("init")
    return results.InitResult(created=True, repository=restic.repository)


def _clear_stale(args, cfg) -> None:
    repos = []
    if args.action == "copy" or not args.offsite:
        repos.append(restic_for(cfg))
    if args.action == "copy" or args.offsite:
        repos.append(offsite_restic_for(cfg))
    for r in repos:
        try:
            r.clear_stale_locks(BACKUP_HOSTNAME)
        except ResticError as exc:
            if "no restic repository" not in str(exc):  # init creates it; other actions say so themselves
                raise


def _save_artifacts(restic: Restic, host: str, after: threading.Event) -> dict:
    after.wait()
    try:
        return artifacts.save(restic, ARTIFACTS, host)
    except ResticError as exc:
        return {"saved": False, "error": str(exc)}


def database_action(action: str, cfg) -> results.Result:
    psql = pgsql.for_config(cfg)
    try:
        if action == "db-counts":
            return results.DbCounts(cfg.db.database, psql.counts(cfg.db.database))
        if action == "db-password":
            pending = Path(cfg.secrets_dir) / pgroles.pending_name(psql.role)
            return results.PasswordSet(psql.role, pgroles.set_own_password(psql, pending))
        return results.DbIndexes(cfg.db.database, psql.ensure_indexes(cfg.db.database))
    except CommandError as exc:
        raise DrError(f"PostgreSQL at {cfg.db.postgres_host} as {psql.role}: {exc.stderr_tail.strip()}") from None


def act(args, cfg) -> results.Result:
    """Run the action; its result as its type (snapshots/results.py)."""
    if args.action in DB_ACTIONS:
        return database_action(args.action, cfg)
    if args.action == "pg-undo":
        pgcopy.swap_back(PG_VOLUME, args.replaced, args.snapshot_set)
        return results.CopyUndone(args.snapshot_set, args.replaced)
    if args.action == "init":
        return init(offsite_restic_for(cfg) if args.offsite else restic_for(cfg))
    return results.load(args.action, _act(args, cfg))


def _act(args, cfg) -> object:
    """The action's result as the snapshots modules return it (dicts, checked against the type by act)."""
    if args.action == "copy":
        return offsite.copy(restic_for(cfg), offsite_restic_for(cfg))
    restic = offsite_restic_for(cfg) if args.offsite else restic_for(cfg)
    if args.action == "take":
        if args.offsite:
            raise ConfigError("sets are taken into the primary repository; `copy` puts them off-site")
        # The build artifacts beside the set, once the pipeline's pause is over (they belong to no set; a
        # failure there never spoils the set).
        unlocked = threading.Event()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="artifacts") as beside:
            saving = beside.submit(_save_artifacts, restic, args.host, unlocked) if ARTIFACTS.is_dir() else None
            result = sets.take(cfg, restic, DataRoot(cfg.data_root), args.host, unlocked)
            if saving is not None:
                result["artifacts"] = saving.result()
        return result
    if args.action == "artifacts-restore":
        return artifacts.restore(restic, ARTIFACTS)
    if args.action == "forget":
        return sets.forget(restic, cfg.retention, args.dry_run)
    if args.action == "check":
        return check.check(restic, args.read_data_subset)
    if args.action == "restore":
        return _restore(args, cfg, restic)
    if args.action == "pg-restore":
        return restore.restore_copy(restic, args.snapshot_set, PG_VOLUME, args.force)
    return sets.listing(restic)


def _restore(args, cfg, restic: Restic) -> dict:
    import pymongo.errors

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
            # --with-copy: the physical copy into PostgreSQL's volume, side by side with the files
            copying = (beside.submit(restore.restore_copy, restic, args.snapshot_set, PG_VOLUME, args.force, picked)
                       if args.with_copy else None)
            result = restore.restore(restic, args.snapshot_set, target, database, args.force,
                                     cfg.backup.lock_timeout, counter, picked)
            if copying is not None:
                result["copy"] = copying.result()
        if client is not None and cfg.db.postgres_host:
            # FerretDB does not know the GIN indexes (a dump cannot carry them): made again for what was restored.
            database_action("db-indexes", cfg)
        return result
    except dbdump.DumpError as exc:
        raise restore.RestoreError(f"the database dump cannot be restored: {exc}") from None
    except pymongo.errors.PyMongoError as exc:
        raise restore.RestoreError(f"database {cfg.db.host}:{cfg.db.port}: {type(exc).__name__}: {exc}") from None
    finally:
        if client is not None:
            client.close()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m snapshots.cli")
    p.add_argument("action", choices=ACTIONS)
    p.add_argument("--offsite", action="store_true", help="work on the off-site repository")
    p.add_argument("--dry-run", action="store_true", help="forget: only say which sets would go")
    p.add_argument("--read-data-subset", help="check: also read back this share of the data (restic syntax)")
    p.add_argument("--snapshot-set", default="latest", metavar="ID", help="restore: which set (default latest)")
    p.add_argument("--no-files", action="store_true", help="restore: leave the data root alone")
    p.add_argument("--no-db", action="store_true", help="restore: leave the database alone")
    p.add_argument("--force", action="store_true", help="restore: replace a non-empty data root or database")
    p.add_argument("--with-copy", action="store_true",
                   help="restore: also the set's physical copy into PostgreSQL's volume at /pgvolume (stopped)")
    p.add_argument("--replaced", help="pg-undo: the data directory pg-restore put aside (its result's replaced)")
    p.add_argument("--config")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--host", help="host name recorded in the snapshots")
    args = p.parse_args(argv)
    log.setup()
    try:
        cfg = dr_config.load(args.config, dr_config.parse_overrides(args.set))
        if args.action in DB_ACTIONS or args.action == "pg-undo":
            result = act(args, cfg)
        else:
            with repo_lock(cfg):
                _clear_stale(args, cfg)
                result = act(args, cfg)
    except DrError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except LockTimeout as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(results.to_json(result))
    return 1 if isinstance(result, results.CheckResult) and not result.ok else 0


if __name__ == "__main__":
    sys.exit(main())
