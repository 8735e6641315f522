"""FerretDB's collections seen from PostgreSQL, through psql: which table holds a collection, exact counts
without decoding a document, and the indexes that serve the filters FerretDB pushes down.

FerretDB 1.24.2 over PostgreSQL keeps a MongoDB database as a schema of the same name, each collection as
a table of one `_jsonb` column, and their names in `<schema>._ferretdb_database_metadata` (`_id`: the
collection, `table`: its table). It pushes a simple equality filter down as `_jsonb -> 'field' @> value`;
its own createIndex makes a B-tree on `(_jsonb -> 'field')` that this form cannot use, so every query
scans. A GIN expression index `USING gin ((_jsonb -> 'field') jsonb_path_ops)` serves it (bitmap index
scans). FerretDB does not know these indexes (they are not in its metadata, so dumps do not carry them):
the owner makes them again after every start and restore (`ensure_indexes`).

The SQL builders are pure (unit-tested); `Psql` runs them with the common runner, the role's password in a
private pgpass file, never in argv or the environment.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from common import runner
from common.errors import ConfigError
from database import db as dbconn

PG_DATABASE = "ferretdb"  # FerretDB's PostgreSQL database (dockerfiles/db/entrypoint.sh)
PG_PORT = 5432
METADATA = "_ferretdb_database_metadata"
PSQL_OPTIONS = ("--no-psqlrc", "--no-align", "--tuples-only", "--field-separator=\t", "--set=ON_ERROR_STOP=1")

# The fields the Aggregator's users query by equality, per collection (issue 11): a report by id, a
# report's measurements, measurements by input, reports by country, test and day.
SERVED = {
    "reports": ("report_id", "probe_cc", "test_name", "day"),
    "measurements": ("report_key", "input"),
}


class PsqlError(Exception):
    """psql failed or answered something unexpected."""


def ident(name: str) -> str:
    """A PostgreSQL identifier, quoted."""
    if "\x00" in name:
        raise ValueError("an identifier cannot hold a NUL byte")
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """A PostgreSQL string literal (standard_conforming_strings is on since 9.1)."""
    if "\x00" in text:
        raise ValueError("a literal cannot hold a NUL byte")
    return "'" + text.replace("'", "''") + "'"


def tables_sql(schema: str) -> str:
    return (f"SELECT _jsonb ->> '_id', _jsonb ->> 'table' FROM {ident(schema)}.{METADATA} "
            "ORDER BY 1")


def schema_exists_sql(schema: str) -> str:
    return f"SELECT count(*) FROM pg_namespace WHERE nspname = {literal(schema)}"


def counts_sql(schema: str, tables: dict[str, str]) -> str:
    """One query: (collection, exact row count) for every collection of tables."""
    parts = [f"SELECT {literal(coll)}, count(*) FROM {ident(schema)}.{ident(table)}"
             for coll, table in sorted(tables.items())]
    return " UNION ALL ".join(parts)


def index_name(table: str, field: str) -> str:
    """A stable name within PostgreSQL's 63 bytes: aggr_<table>_<field>, or shortened with a hash."""
    name = f"aggr_{table}_{field}"
    if len(name.encode()) <= 63:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:12]
    return f"aggr_{table[:30]}_{digest}"


def index_sql(schema: str, table: str, field: str) -> str:
    """The GIN expression index matching FerretDB's pushed-down equality on field."""
    return (f"CREATE INDEX IF NOT EXISTS {ident(index_name(table, field))} ON {ident(schema)}.{ident(table)} "
            f"USING gin ((_jsonb -> {literal(field)}) jsonb_path_ops)")


def parse_rows(out: str) -> list[list[str]]:
    """psql -At -F TAB output: one row per line, fields split on tabs."""
    return [line.split("\t") for line in out.splitlines() if line]


@contextlib.contextmanager
def pgpass_env(host: str, port: int, role: str, password_file: str, ca_file: str = "") -> Iterator[dict[str, str]]:
    """The environment of a PostgreSQL client run as role: PGPASSFILE naming a private pgpass file (for any
    database, replication included) that exists while the block runs; the password never in argv or the
    environment. With ca_file (db.tls): TLS, the server's certificate and name verified against it."""
    with tempfile.TemporaryDirectory(prefix="pgpass-") as tmp:
        pgpass = Path(tmp) / "pgpass"
        password = Path(password_file).read_text(encoding="utf-8").splitlines()[0].strip()
        escaped = password.replace("\\", "\\\\").replace(":", "\\:")
        fd = os.open(pgpass, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(f"{host}:{port}:*:{role}:{escaped}\n")
        env = {"PGPASSFILE": str(pgpass), "PGCONNECT_TIMEOUT": "10"}
        if ca_file:
            env.update(PGSSLMODE="verify-full", PGSSLROOTCERT=ca_file)
        yield env


class Queries:
    """What the project asks PostgreSQL, on top of one way to run a query (`query`: psql over the network
    here, `docker exec` in the postgres container on the host: dr/services/stack.LocalPsql)."""

    def query(self, sql: str) -> list[list[str]]:
        raise NotImplementedError

    def server_version_num(self) -> int:
        """The server's version as a number (170006 for 17.6)."""
        return int(self.query("SELECT current_setting('server_version_num')")[0][0])

    def tables(self, schema: str) -> dict[str, str]:
        """{collection: table} of a FerretDB database; {} when it has none yet."""
        if self.query(schema_exists_sql(schema)) != [["1"]]:
            return {}
        return {coll: table for coll, table in self.query(tables_sql(schema))}

    def counts(self, schema: str, collections=None) -> dict[str, int]:
        """Exact document counts per collection (all of them, or those named: 0 for one that does not
        exist), counted by PostgreSQL without decoding a document."""
        tables = self.tables(schema)
        wanted = tables if collections is None else {c: tables[c] for c in collections if c in tables}
        counts = {c: 0 for c in (collections or ())}
        if wanted:
            for coll, n in self.query(counts_sql(schema, wanted)):
                counts[coll] = int(n)
        return counts

    def ensure_indexes(self, schema: str, served: dict[str, tuple[str, ...]] = SERVED) -> list[str]:
        """The GIN indexes of `served` on the collections that exist (as their owner); returns their names."""
        tables = self.tables(schema)
        names = []
        for coll, fields in sorted(served.items()):
            if coll not in tables:
                continue
            for field in fields:
                self.query(index_sql(schema, tables[coll], field))
                names.append(index_name(tables[coll], field))
        return names


@dataclass(frozen=True)
class Psql(Queries):
    """psql against FerretDB's PostgreSQL over the network as one role (its password in a pgpass file)."""

    host: str
    role: str
    password_file: str
    port: int = PG_PORT
    database: str = PG_DATABASE
    ca_file: str = ""  # db.tls: TLS, verified against this CA

    def _argv(self) -> list[str]:
        return ["psql", *PSQL_OPTIONS, f"--host={self.host}", f"--port={self.port}", f"--username={self.role}",
                f"--dbname={self.database}"]

    def query(self, sql: str) -> list[list[str]]:
        with pgpass_env(self.host, self.port, self.role, self.password_file, self.ca_file) as env:
            out = runner.run([*self._argv(), "--command", sql], capture=True, quiet=True, env=env)
        return parse_rows(out)

    def execute_private(self, sql: str) -> None:
        """Run sql that must not be logged (it carries a password's verifier): on psql's standard input, from
        a private file, never in argv."""
        with tempfile.TemporaryFile() as statement:
            statement.write(sql.encode() + b"\n")
            statement.seek(0)
            with pgpass_env(self.host, self.port, self.role, self.password_file, self.ca_file) as env:
                runner.run(self._argv(), stdin=statement, capture=True, quiet=True, env=env)


def superuser_argv(sql: str, database: str = PG_DATABASE) -> list[str]:
    """psql in the postgres container itself: the superuser over the server's own socket (peer, no
    password)."""
    return ["psql", *PSQL_OPTIONS, "--quiet", f"--dbname={database}", "--command", sql]


def socket_argv(sql: str, role: str, database: str = PG_DATABASE) -> list[str]:
    """superuser_argv acting as role (SET ROLE), so that role's grants are what apply."""
    argv = superuser_argv(sql, database)
    return [*argv[:-2], "--command", f"SET ROLE {ident(role)}", *argv[-2:]]


def for_config(cfg) -> Psql:
    """psql to cfg's PostgreSQL as this container's role (db.role, which dr/jobs/contract.py writes)."""
    if not cfg.db.postgres_host:
        raise ConfigError("db.postgres_host is not set: PostgreSQL cannot be reached from here")
    role = dbconn.role_of(cfg.db)
    return Psql(cfg.db.postgres_host, role, str(Path(cfg.secrets_dir) / dbconn.password_name(role)),
                port=cfg.db.postgres_port, ca_file=dbconn.tls_ca_file(cfg.db, cfg.secrets_dir) or "")
