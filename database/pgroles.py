"""The database roles' passwords in PostgreSQL: their stored form (a SCRAM-SHA-256 verifier), checking a
password against it, and the statements that change one.

A password is never sent to PostgreSQL as it is: `ALTER ROLE ... PASSWORD` gets its verifier (what
pg_authid holds), so neither the server's log nor a statement's text carries the password. The statement
itself goes to psql on its standard input, never in argv (the runner logs argv).

Who changes a password:
- on one host, the superuser over the postgres container's own socket (dr/jobs/rotate.py, `alter_password_sql`);
- from the Aggregator's host, when the database has a host of its own, each role itself over TLS
  (`ALTER ROLE CURRENT_USER`, which needs no superuser): `set_own_password`, run in the backup container
  (`python -m snapshots.cli db-password`);
- the database's host checks that the passwords it was handed are the ones PostgreSQL has
  (`scram_matches` against pg_authid) before it restarts anything on them.

The builders and the checks are pure (unit-tested).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import os
from pathlib import Path

from common.errors import CommandError, DrError
from database import db as dbconn
from database import pgsql

SCRAM_ITERATIONS = 4096  # PostgreSQL's default (scram_iterations)
PENDING = ".rotating"  # the suffix of a new password written down before PostgreSQL is told


class PasswordError(DrError):
    pass


def pending_name(role: str) -> str:
    """The secrets folder's file of role's new password, written down before PostgreSQL is told."""
    return dbconn.password_name(role) + PENDING


def _keys(password: str, salt: bytes, iterations: int) -> tuple[bytes, bytes]:
    """(StoredKey, ServerKey) of RFC 5802 for password. Our passwords are ASCII (token_urlsafe), which
    SASLprep keeps as they are."""
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return stored_key, server_key


def scram_verifier(password: str, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS) -> str:
    """PostgreSQL's stored form of a SCRAM-SHA-256 password (RFC 5802, 7677): what pg_authid holds, and what
    ALTER ROLE ... PASSWORD accepts as it is. A new random salt unless one is given."""
    salt = os.urandom(16) if salt is None else salt
    stored_key, server_key = _keys(password, salt, iterations)
    b64 = base64.b64encode
    return (f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}$"
            f"{b64(stored_key).decode()}:{b64(server_key).decode()}")


def scram_matches(password: str, verifier: str) -> bool:
    """Whether password is the one verifier was made from (False for anything that is not a SCRAM-SHA-256
    verifier: no password, an md5 one)."""
    try:
        method, rest = verifier.split("$", 1)
        head, keys = rest.split("$", 1)
        iterations, salt = head.split(":", 1)
        stored, server = keys.split(":", 1)
        if method != "SCRAM-SHA-256":
            return False
        want = (base64.b64decode(stored, validate=True), base64.b64decode(server, validate=True))
        got = _keys(password, base64.b64decode(salt, validate=True), int(iterations))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got[0], want[0]) and hmac.compare_digest(got[1], want[1])


def alter_password_sql(role: str, verifier: str) -> str:
    return f"ALTER ROLE {pgsql.ident(role)} PASSWORD {pgsql.literal(verifier)}"


def alter_own_password_sql(verifier: str) -> str:
    """What a role runs to change its own password (no superuser needed)."""
    return f"ALTER ROLE CURRENT_USER PASSWORD {pgsql.literal(verifier)}"


def verifiers_sql(roles) -> str:
    """The stored passwords of roles (the superuser's query: pg_authid is readable by it only)."""
    names = ", ".join(pgsql.literal(r) for r in roles)
    return f"SELECT rolname, coalesce(rolpassword, '') FROM pg_authid WHERE rolname IN ({names}) ORDER BY rolname"


def refused_login(exc: CommandError) -> bool:
    """Whether psql failed because the server refused the password (not the network, not TLS)."""
    return "password authentication failed" in (exc.stderr_tail or "")


def set_own_password(current: pgsql.Psql, pending_file: str | os.PathLike) -> bool:
    """Give current's role (psql as that role, with its password now) the password in pending_file. True when
    it was changed; False when PostgreSQL has it already (a run interrupted after telling PostgreSQL, before
    the host put the file in place). PasswordError when neither password logs in."""
    pending = Path(pending_file).read_text(encoding="utf-8").splitlines()[0].strip()
    try:
        current.execute_private(alter_own_password_sql(scram_verifier(pending)))
        return True
    except CommandError as exc:
        if not refused_login(exc):
            raise
    try:
        dataclasses.replace(current, password_file=str(pending_file)).query("SELECT 1")
    except CommandError as exc:
        if refused_login(exc):
            raise PasswordError(f"PostgreSQL at {current.host}:{current.port} refuses both the password of "
                                f"{current.role} and its new one") from None
        raise
    return False
