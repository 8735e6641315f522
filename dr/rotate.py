"""`invoke rotate-secrets`: a new password for every database role and, with db.tls, new certificates from
the same CA, without losing data and with the pipeline paused for at most one run.

The order, so that an interruption loses nothing and the next run finishes the job:
1. the data root's exclusive lock (no stage moves a report meanwhile) and the lock of our restic runs (no
   set is being taken: a set's database parts log in again after the pipeline's pause);
2. per role: the new password written beside the old one (`db-<role>-password.rotating`, 0600), PostgreSQL
   told over the postgres container's own socket (`ALTER ROLE ... PASSWORD` with the password's
   SCRAM-SHA-256 verifier: the password itself is in no command line), then the file renamed over the old
   one. A run interrupted between the two finds the `.rotating` file and uses it, so no password exists
   only in memory;
3. with db.tls: `certs.make(renew=True)` (new keys and serials, the same CA, so clients need nothing new);
4. FerretDB restarted (it lets a client in on the PostgreSQL connections it pooled for that user name and
   password: until it restarts, the old passwords would still work through it; and it reads its
   certificate at start), then every role logs in with its new password (services.check_db).

PostgreSQL's own sessions stay logged in, and its entrypoint applies the files at its next start
(dockerfiles/postgres): a restart after a rotation changes nothing. The restic passwords are not rotated
here: their off-host copies (docs/runbook.md) would silently stop opening the repository.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets as _random
import time
from pathlib import Path

from common import db, log, secrets
from common.config import Config
from common.errors import ServiceError
from dr import docker_api, services
from snapshots import pgsql
from snapshots.repolock import repo_lock
from stages import lock
from stages.layout import DataRoot

_log = log.get("rotate")
ROTATING = ".rotating"
SCRAM_ITERATIONS = 4096  # PostgreSQL's default (scram_iterations)


def scram_verifier(password: str, salt: bytes, iterations: int = SCRAM_ITERATIONS) -> str:
    """PostgreSQL's stored form of a SCRAM-SHA-256 password (RFC 5802, 7677): what pg_authid holds, and what
    ALTER ROLE ... PASSWORD accepts as it is. Our passwords are ASCII (token_urlsafe), which SASLprep keeps."""
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = base64.b64encode
    return (f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}$"
            f"{b64(stored_key).decode()}:{b64(server_key).decode()}")


def alter_password_sql(role: str, verifier: str) -> str:
    return f"ALTER ROLE {pgsql.ident(role)} PASSWORD {pgsql.literal(verifier)}"


def _pending(cfg: Config, role: str) -> str:
    """The new password of role: the one an interrupted run left, else a new one, written down first."""
    name = db.password_name(role) + ROTATING
    if secrets.path(cfg.secrets_dir, name).exists():
        return secrets.read(cfg.secrets_dir, name)
    password = _random.token_urlsafe(32)
    secrets.put(cfg.secrets_dir, name, password)
    return password


def _rotate_role(cfg: Config, role: str) -> None:
    password = _pending(cfg, role)
    superuser = services.LocalPsql(services.container_name(cfg, "postgres"), role="")
    superuser.query(alter_password_sql(role, scram_verifier(password, os.urandom(16))))
    name = db.password_name(role)
    os.replace(secrets.path(cfg.secrets_dir, name + ROTATING), secrets.path(cfg.secrets_dir, name))
    _log.info("%s: new password in place", role)


def _renew_certificates(cfg: Config) -> list[str]:
    from dr import certs

    return [f"{r['certificate']} until {r['not_after']}" for r in certs.make(cfg, renew=True)]


def _restart_db(cfg: Config) -> None:
    """FerretDB restarted: it keeps a pool of PostgreSQL connections per user name and password, and a
    client whose password has a pool is let in on that pool, so the old passwords work until it restarts;
    it also reads its certificate only at start."""
    container = docker_api.container_or_none(services.container_name(cfg, "db"))
    if container is None:
        raise ServiceError(f"{services.container_name(cfg, 'db')} is not there: start the services "
                           "(`invoke rebuild`)")
    container.restart()
    services.wait_one(cfg, "db", time.monotonic() + cfg.host.health_timeout)


def rotate(cfg: Config) -> dict:
    """Rotate every database password (and, with db.tls, the certificates); what was done and how long the
    pipeline was paused."""
    if cfg.host.role != "all":
        raise ServiceError(f"rotate-secrets runs where the Aggregator and its database share a host; with "
                           f"host.role {cfg.host.role}, follow docs/runbook.md section 12 (rotating across two hosts)")
    started = time.monotonic()
    with repo_lock(cfg), lock.exclusive(DataRoot(Path(cfg.data_root)), cfg.backup.lock_timeout):
        paused_from = time.monotonic()
        for role in db.ROLES:
            _rotate_role(cfg, role)
        renewed = _renew_certificates(cfg) if cfg.db.tls else []
        _restart_db(cfg)
        services.check_db(cfg)  # every role logs in with its new password
        paused = round(time.monotonic() - paused_from, 2)
    return {"roles": list(db.ROLES), "certificates": renewed, "paused_seconds": paused,
            "seconds": round(time.monotonic() - started, 2)}
