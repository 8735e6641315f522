"""Host side of snapshot sets: run `python -m snapshots.cli` in the backup image (as root: restic reads and
restores every file with its owner) with only what the action needs, as its row in snapshots/actions.py says
and dr/jobs/contract.py turns into a container: the data root (read-write: the lock file lives there) for `take`
and `restore`, the primary repository at /repo when it is a local folder, a restic cache, the secrets as
read-only files, one derived configuration file, and a network: the instance's (to reach the database) for
the actions with a database role, the off-site one for off-site actions, Docker's default bridge otherwise.
The result is read back into the type the row names (dr/jobs/launch.py run_job)."""

from __future__ import annotations

import socket

from common import log, secrets
from common.config import Config
from common.errors import DrError
from common.records import Record
from dr.jobs import contract, launch
from snapshots import actions

_log = log.get("backup")


def run(cfg: Config, action: str, dry_run: bool = False, extra: tuple[str, ...] = (),
        offsite: bool = False, files: bool = True, db: bool = True, copy: bool = False, role: str = ""
        ) -> tuple[int, Record | None]:
    """(exit code, result or None) of one snapshots.cli action (a key of snapshots/actions.ACTIONS), read
    back into the type its row names (None: it failed without one, its reason logged); offsite: the action
    works on the off-site repository; extra: more arguments (--read-data-subset, --snapshot-set, --force);
    files, db: restore the state directories, the database; copy: restore also puts the set's physical copy
    into PostgreSQL's (stopped) volume, beside the files; role: the database role of db-password."""
    spec = contract.backup_spec(cfg, action, socket.gethostname(), offsite=offsite, files=files, db=db, copy=copy,
                                dry_run=dry_run, extra=tuple(extra), role=role)
    if action == "init":
        secrets.ensure(cfg.secrets_dir, secrets.OFFSITE_RESTIC_PASSWORD if offsite else secrets.RESTIC_PASSWORD)
    return launch.run_job(cfg, spec, actions.ACTIONS[action].result)


def _database_action(cfg: Config, action: str, what: str, role: str = "") -> Record:
    """The result of a database action (db-counts, db-indexes, db-password); DrError naming what failed."""
    code, result = run(cfg, action, role=role)
    if code != 0 or result is None:
        raise DrError(f"cannot {what} in PostgreSQL (exit {code}); the reason is in the log above")
    return result


def db_counts(cfg: Config) -> dict[str, int]:
    """Exact documents per collection of cfg's database, counted by PostgreSQL (as reader)."""
    return _database_action(cfg, "db-counts", "count the database's documents").collections


def db_indexes(cfg: Config) -> list[str]:
    """The GIN indexes that serve FerretDB's pushed-down filters, made where missing (as owner)."""
    return _database_action(cfg, "db-indexes", "make the database's indexes").indexes


def set_own_password(cfg: Config, role: str) -> bool:
    """role gives itself, over the network (TLS), the new password written down beside its password file;
    True when changed, False when PostgreSQL had it already."""
    return _database_action(cfg, "db-password", f"give {role} its new password", role=role).changed
