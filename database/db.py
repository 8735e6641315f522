"""Connecting to the database: FerretDB 1.x (MongoDB wire protocol) in front of PostgreSQL.

FerretDB 1.x with its default ("old") authentication passes each client's user name and password through
to PostgreSQL (the PLAIN mechanism, authSource `$external`), so every connection is one of PostgreSQL's
roles and PostgreSQL's grants decide what it may do (dockerfiles/postgres/roles.sql):

  owner     creates and drops collections and indexes: `rebuild` (stack.start) and restores only
  importer  reads and writes documents of existing collections
  reader    reads: the web side, status, drills' queries
  backup    reads, and may stream a physical copy

Each role's password is a file in the secrets directory (`db-<role>-password`). PLAIN sends the password
as it is: without TLS (`db.tls`, the one-machine default) the database port is published on loopback only
and PostgreSQL accepts these roles only from its own Docker networks (pg_hba `samenet`); with it, FerretDB
listens for TLS only (its plaintext listener stays on the container's own loopback, for its health check),
and every client verifies the server's certificate against the CA file ([db] ca_file, or the secrets
directory's tls/ca.crt).

What PostgreSQL refuses reaches pymongo as FerretDB's code 1 (InternalError) with PostgreSQL's message and
SQLSTATE inside; `refusal` turns that into one clear sentence naming the role.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pymongo

from common import poll, secrets
from common.config import DB_ROLES as ROLES
from common.errors import ConfigError, DatabaseRefused

MECHANISM = "PLAIN"
AUTH_SOURCE = "$external"
TLS_CA = "tls/ca.crt"  # in the secrets directory: the CA clients trust (dr/services/certs.py makes it)

# PostgreSQL's SQLSTATE codes FerretDB passes on, and what they mean for the operator.
_SQLSTATES = {
    "42501": "has no permission for this",  # insufficient_privilege
    "28P01": "was refused: wrong password",  # invalid_password
    "28000": "is not allowed to connect from here",  # invalid_authorization_specification (pg_hba)
}
_NOT_OWNER = "must be owner of"  # PostgreSQL says this (SQLSTATE 42501) for DROP, ALTER, CREATE INDEX


def password_name(role: str) -> str:
    """The secret file holding a role's password."""
    if role not in ROLES:
        raise ValueError(f"unknown database role {role!r} (one of {', '.join(ROLES)})")
    return f"db-{role}-password"


def ca_file_of(db_cfg, secrets_dir) -> str:
    """The CA certificate clients trust for the database: [db] ca_file, or <secrets_dir>/tls/ca.crt (made by
    `invoke certs`, dr/services/certs.py). The same for any section with a ca_file key ([offsite])."""
    return db_cfg.ca_file or str(Path(secrets_dir) / TLS_CA)


def tls_ca_file(db_cfg, secrets_dir) -> str | None:
    """The CA file a client of db_cfg verifies the database with; None without db.tls."""
    return ca_file_of(db_cfg, secrets_dir) if db_cfg.tls else None


def client(host: str, port: int, role: str, password: str, timeout_s: float = 10.0,
           tls_ca_file: str | None = None, **kwargs) -> pymongo.MongoClient:
    """A client logged in as role; over TLS, verifying the server's certificate and name against
    tls_ca_file, when that is given (PLAIN sends the password as it is: only over TLS off this host)."""
    if tls_ca_file:
        if not Path(tls_ca_file).is_file():
            raise ConfigError(f"the database's CA certificate {tls_ca_file} is missing (db.tls is on): make the "
                              "certificates with `invoke certs`, or set db.ca_file")
        kwargs.update(tls=True, tlsCAFile=tls_ca_file)
    return pymongo.MongoClient(
        host=host,
        port=port,
        username=role,
        password=password,
        authSource=AUTH_SOURCE,
        authMechanism=MECHANISM,
        serverSelectionTimeoutMS=int(timeout_s * 1000),
        connectTimeoutMS=int(timeout_s * 1000),
        directConnection=True,
        **kwargs,
    )


def role_of(db_cfg) -> str:
    """The role a container logs in as ([db] role, which dr/jobs/contract.py writes into its configuration)."""
    if not db_cfg.role:
        raise ConfigError("db.role is empty: this container's configuration names no database role "
                          "(dr/jobs/contract.py writes it)")
    return db_cfg.role


def client_as(db_cfg, secrets_dir, role: str, host: str | None = None, port: int | None = None,
              **kwargs) -> pymongo.MongoClient:
    """A client logged in as role, its password read from the secrets directory; host and port default to
    the configuration's [db] host and port."""
    password = secrets.read(secrets_dir, password_name(role))
    kwargs.setdefault("tls_ca_file", tls_ca_file(db_cfg, secrets_dir))
    return client(host or db_cfg.host, port or db_cfg.port, role, password, **kwargs)


def refusal_state(exc: BaseException) -> tuple[str, str] | None:
    """(SQLSTATE, what PostgreSQL said) when exc is PostgreSQL refusing the client (a privilege, its
    password, its address), else None."""
    if not isinstance(exc, pymongo.errors.OperationFailure):
        return None
    text = str(exc)
    for state in _SQLSTATES:
        if f"SQLSTATE {state}" in text or (state == "42501" and _NOT_OWNER in text):
            detail = re.search(r"(?:ERROR|FATAL): (.*?) \(SQLSTATE", text)
            return state, detail.group(1).strip() if detail else text[-200:]
    return None


def refusal(exc: BaseException, role: str) -> DatabaseRefused | None:
    """The clear error for what PostgreSQL refused the role, or None when exc is something else."""
    found = refusal_state(exc)
    if found is None:
        return None
    state, said = found
    return DatabaseRefused(f"the database role {role} {_SQLSTATES[state]}: PostgreSQL says: {said}", role, state)


def count(database, name: str) -> int:
    """The documents stored in one collection, exactly. A collection that does not exist counts 0.

    FerretDB's count command reads every document of the collection (over PostgreSQL its collStats count
    is ANALYZE's estimate, and -1 for a role that does not own the table: never used). Exact but at
    FerretDB's speed: where the host or the backup container verifies, it counts in PostgreSQL itself
    (database/pgsql.py, the backup image's `db-counts`)."""
    if name not in database.list_collection_names():
        return 0
    return int(database.command("count", name)["n"])


def is_empty(database, name: str) -> bool:
    """Whether a collection holds no document: one document asked for (FerretDB pushes the limit down)."""
    return database[name].find_one({}, {"_id": 1}) is None


def ping(c: pymongo.MongoClient, database: str) -> None:
    c[database].command("ping")
    # ping needs no login; a real read makes FerretDB log in to PostgreSQL with our credentials.
    c[database].list_collection_names()


def wait_ready(host: str, port: int, role: str, password: str, database: str, timeout_s: float = 60.0,
               tls_ca_file: str | None = None) -> float:
    """Poll until the database accepts the role's credentials; returns the seconds waited. A refusal by
    PostgreSQL (wrong password, role not allowed) is raised at once as DatabaseRefused; anything else is
    retried until poll.WaitTimeout names the database and the last error."""

    def accepts() -> bool:
        c = client(host, port, role, password, timeout_s=2.0, tls_ca_file=tls_ca_file)
        try:
            ping(c, database)
            return True
        except pymongo.errors.OperationFailure as exc:
            refused = refusal(exc, role)
            if refused is not None and refused.sqlstate != "28000":
                raise refused from None
            raise
        finally:
            c.close()

    start = time.monotonic()
    poll.until(accepts, f"the database {database} at {host}:{port} to accept the role {role}", timeout_s,
               interval=0.1, max_interval=0.5, retry=(pymongo.errors.PyMongoError, OSError))
    return time.monotonic() - start
