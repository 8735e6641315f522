"""`invoke rotate-secrets`: a new password for every database role and, with db.tls, new certificates from
the same CA, without losing data and with the pipeline paused for at most one run.

One host (host.role "all"), in this order, so that an interruption loses nothing and the next run finishes
the job:
1. the data root's exclusive lock (no stage moves a report meanwhile) and the lock of our restic runs (no
   set is being taken: a set's database parts log in again after the pipeline's pause);
2. per role: the new password written beside the old one (`db-<role>-password.rotating`, 0600), PostgreSQL
   told over the postgres container's own socket (`ALTER ROLE ... PASSWORD` with the password's
   SCRAM-SHA-256 verifier: the password itself is in no command: database/pgroles.py), then the file
   renamed over the old one. A run interrupted between the two finds the `.rotating` file and uses it, so
   no password exists only in memory;
3. with db.tls: `certs.make(renew=True)` (new keys and serials, the same CA, so clients need nothing new),
   and PostgreSQL restarted (it copies its certificate at start);
4. FerretDB restarted (it lets a client in on the PostgreSQL connections it pooled for that user name and
   password: until it restarts, the old passwords would still work through it; and it reads its
   certificate at start), then every role logs in with its new password (stack.check_db).

The database on its own host (docs/runbook.md 12.5) splits this in two:
- on the Aggregator's host (host.role "aggregator"), steps 1 to 3 with one difference: each role gives
  itself its new password over TLS from the backup container (`snapshots.cli db-password`; the Aggregator
  has no superuser there), and the certificates are made here (the CA's key stays here); then every role
  logs in, and the database's host kit is written (`--kit`). Until the database's host takes it up, the
  old passwords still work through its FerretDB's pools, and the new ones work already;
- on the database's host (host.role "database"), `take_up`: the passwords in its secrets folder (the kit,
  copied there) must be PostgreSQL's own (checked against pg_authid: an old kit is refused before it could
  put old passwords back), its certificates valid; then PostgreSQL and FerretDB restart on them.

PostgreSQL's own sessions stay logged in, and its entrypoint applies the files at its next start
(dockerfiles/postgres): a restart after a rotation changes nothing. The restic passwords are not rotated
here: their off-host copies (docs/runbook.md) would silently stop opening the repository.
"""

from __future__ import annotations

import os
import secrets as _random
import time
from dataclasses import dataclass
from pathlib import Path

from common import log, secrets
from common.config import Config
from common.errors import ServiceError
from common.records import Record, optional
from database import db, pgroles
from dr.engine import docker_api
from dr.jobs import backup
from dr.machine import roles
from dr.services import stack
from snapshots.repolock import repo_lock
from stages import lock
from stages.layout import DataRoot

_log = log.get("rotate")


@dataclass
class Rotation(Record):
    """What a rotation did: the roles with new passwords, the certificates renewed, the seconds the pipeline
    waited and in all. taken_up: the database's own host took up the Aggregator's rotation (no new password
    made there). kit, on the Aggregator's host of a database on its own host only (None elsewhere): the
    folder the database's host kit was written into, or "" when none was asked for."""
    roles: list[str]
    certificates: list[str]
    paused_seconds: float
    seconds: float
    taken_up: bool = False
    kit: str | None = optional()

    def render(self) -> str:
        if self.taken_up:
            return (f"passwords of {', '.join(self.roles)} are PostgreSQL's; PostgreSQL and FerretDB restarted on "
                    "them and on the certificates; every role logged in")
        lines = [f"new passwords: {', '.join(self.roles)}; every role logged in with its new one"]
        if self.certificates:
            lines.append("new certificates: " + "; ".join(self.certificates))
        lines.append(f"the pipeline waited {self.paused_seconds} s")
        if self.kit is not None:
            lines.append(f"database host kit: {self.kit}" if self.kit else
                         "make the database's host kit (`invoke db-host-kit --to DIR`)")
            lines.append("now on the database's host: the kit into its secrets folder, then `invoke rotate-secrets` "
                         "there (docs/runbook.md 12.5)")
        return "\n".join(lines)


def _pending(cfg: Config, role: str) -> str:
    """The new password of role: the one an interrupted run left, else a new one, written down first."""
    name = pgroles.pending_name(role)
    if secrets.path(cfg.secrets_dir, name).exists():
        return secrets.read(cfg.secrets_dir, name)
    password = _random.token_urlsafe(32)
    secrets.put(cfg.secrets_dir, name, password)
    return password


def _put_in_place(cfg: Config, role: str) -> None:
    os.replace(secrets.path(cfg.secrets_dir, pgroles.pending_name(role)),
               secrets.path(cfg.secrets_dir, db.password_name(role)))
    _log.info("%s: new password in place", role)


def _superuser(cfg: Config) -> stack.LocalPsql:
    return stack.LocalPsql(stack.container_name(cfg, "postgres"), role="")


def _rotate_role_here(cfg: Config, role: str) -> None:
    """role's new password, told to this host's PostgreSQL by its superuser."""
    password = _pending(cfg, role)
    _superuser(cfg).execute_private(pgroles.alter_password_sql(role, pgroles.scram_verifier(password)))
    _put_in_place(cfg, role)


def _rotate_role_remote(cfg: Config, role: str) -> None:
    """role's new password, given by role itself to the database on its own host."""
    _pending(cfg, role)
    if not backup.set_own_password(cfg, role):
        _log.info("%s: PostgreSQL had its new password already (an interrupted rotation)", role)
    _put_in_place(cfg, role)


def _renew_certificates(cfg: Config) -> list[str]:
    from dr.services import certs

    return [f"{r.certificate} until {r.not_after}" for r in certs.make(cfg, renew=True).rows]


def _restart(cfg: Config, service: str) -> None:
    """A service of this host restarted, and healthy again. FerretDB keeps a pool of PostgreSQL connections
    per user name and password, and a client whose password has a pool is let in on that pool, so the old
    passwords work until it restarts; FerretDB and PostgreSQL read their certificates only at start."""
    container = docker_api.container_or_none(stack.container_name(cfg, service))
    if container is None:
        raise ServiceError(f"{stack.container_name(cfg, service)} is not there: start the services "
                           "(`invoke rebuild`)")
    container.restart()
    stack.wait_one(cfg, service, time.monotonic() + cfg.host.health_timeout)


def rotate(cfg: Config, kit: str | None = None) -> Rotation:
    """Rotate every database password (and, with db.tls, the certificates) as this host's role says: what
    was done and how long the pipeline was paused. kit: where the Aggregator's host writes the database's
    host kit afterwards (host.role aggregator only)."""
    role = roles.of(cfg)
    if kit and not role.database_elsewhere:
        raise ServiceError("--kit is for the Aggregator's host (host.role aggregator): the database's host "
                           "takes the kit up")
    if kit and os.path.lexists(kit):
        raise ServiceError(f"{kit} exists already: name a new folder for the kit (nothing was rotated)")
    if role.from_kit:
        return take_up(cfg)  # the database's own host
    remote = role.database_elsewhere
    started = time.monotonic()
    with repo_lock(cfg), lock.exclusive(DataRoot(Path(cfg.data_root)), cfg.backup.lock_timeout):
        paused_from = time.monotonic()
        for name in db.ROLES:
            (_rotate_role_remote if remote else _rotate_role_here)(cfg, name)
        renewed = _renew_certificates(cfg) if cfg.db.tls else []
        if not remote:
            if renewed:
                _restart(cfg, "postgres")
            _restart(cfg, "db")
        stack.check_db(cfg)  # every role logs in with its new password
        paused = round(time.monotonic() - paused_from, 2)
    seconds = round(time.monotonic() - started, 2)
    if remote and kit:
        from dr.services import dbhost

        dbhost.write_kit(cfg, kit)
    return Rotation(list(db.ROLES), renewed, paused, seconds, kit=(kit or "") if remote else None)


def kit_mismatches(verifiers: dict[str, str], passwords: dict[str, str]) -> list[str]:
    """The roles whose password (from the secrets folder) is not the one PostgreSQL stores (verifiers, from
    pg_authid). Pure."""
    return [role for role, password in passwords.items() if not pgroles.scram_matches(password, verifiers.get(role, ""))]


def take_up(cfg: Config) -> Rotation:
    """On the database's own host, after the Aggregator's rotation: its secrets folder (the new kit copied
    in) must hold PostgreSQL's own passwords and valid certificates; then PostgreSQL and FerretDB restart on
    them and every role logs in."""
    from dr.services import certs

    started = time.monotonic()
    rows = _superuser(cfg).query(pgroles.verifiers_sql(db.ROLES))
    passwords = {role: secrets.read(cfg.secrets_dir, db.password_name(role)) for role in db.ROLES}
    wrong = kit_mismatches({name: verifier for name, verifier in rows}, passwords)
    if wrong:
        raise ServiceError(f"the password of {', '.join(wrong)} in {cfg.secrets_dir} is not the one PostgreSQL has: "
                           "copy the kit that `invoke rotate-secrets --kit` wrote on the Aggregator's host "
                           "(docs/runbook.md 12.5); nothing was restarted")
    if cfg.db.tls:
        certs.check_present(cfg)
        _restart(cfg, "postgres")
    _restart(cfg, "db")
    stack.check_db(cfg)
    return Rotation(list(db.ROLES), [], 0.0, round(time.monotonic() - started, 2), taken_up=True)
