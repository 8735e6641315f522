"""TLS between the database's clients and FerretDB (db.tls; issue 12's first hop): `rebuild` makes the
certificates (dr/services/certs.py, the real openssl) and starts FerretDB listening for TLS only; the pipeline's
importer and a snapshot set's database parts (FerretDB's version, the portable dump) reach it over TLS with
the CA handed to their containers, and a restore reads its copy back through it. Refused, by the real
components: a plaintext client, a client that trusts another CA, a wrong password."""

from __future__ import annotations

import time
from pathlib import Path

import pymongo
import pymongo.errors
import pytest
from conftest import running_instance

from common import config, secrets
from common.errors import DatabaseRefused
from database import db as dbconn
from database import pgroles, pgsql
from dr.engine import containers, docker_api
from dr.jobs import backup, restore, rotate
from dr.services import certs, stack
from instances import other_ca_error, pem_body, refuses_plaintext, served_certificates


@pytest.fixture(scope="module")
def tls(built, tmp_path_factory):
    with running_instance(tmp_path_factory.mktemp("tls"), "aggr-tls", sample=True, **{"db.tls": True}) as cfg:
        yield cfg


def test_the_pipeline_imports_over_tls(tls):
    assert certs.db_files(tls)[0].is_file()  # rebuild made the certificates
    client = stack.db_client(tls, "reader")
    try:
        assert client[tls.db.database]["reports"].count_documents({}) == 18  # the importer wrote them
    finally:
        client.close()


def test_a_plaintext_client_is_refused(tls):
    assert refuses_plaintext("127.0.0.1", tls.db.port)


def test_a_client_that_trusts_another_ca_is_refused(tls, tmp_path):
    assert "certificate verify failed" in other_ca_error(tls, "127.0.0.1", tls.db.port, tmp_path / "other")


def test_a_wrong_password_is_refused_over_tls(tls):
    with pytest.raises(DatabaseRefused, match="wrong password"):
        dbconn.wait_ready("127.0.0.1", tls.db.port, "reader", "not-the-password", tls.db.database, 20,
                          tls_ca_file=dbconn.tls_ca_file(tls.db, tls.secrets_dir))


def test_rotate_secrets_gives_every_role_a_new_password_and_the_database_new_certificates(tls):
    """`invoke rotate-secrets`: the old passwords are refused (FerretDB's pooled logins too), the new ones
    work, PostgreSQL's next start keeps them (its entrypoint applies the files), the certificates are new
    and still verify with the same CA. The set test below then runs entirely on the new secrets."""
    old = {role: secrets.read(tls.secrets_dir, dbconn.password_name(role)) for role in dbconn.ROLES}
    reader = stack.db_client(tls, "reader")  # a pooled login for the old password
    reader[tls.db.database]["reports"].find_one()
    reader.close()
    serial = certs.read(certs.cert_path(tls, "db")).serial
    result = rotate.rotate(tls)
    assert result.roles == list(dbconn.ROLES) and len(result.certificates) == len(certs.CERTS) + 1
    # FerretDB and PostgreSQL serve the new certificates (both restarted on them)
    served = served_certificates(tls, "127.0.0.1", tls.db.port)
    for name, pem in zip(("db", "postgres"), served):
        assert pem_body(pem) == pem_body(certs.cert_path(tls, name).read_text()), name
    new = {role: secrets.read(tls.secrets_dir, dbconn.password_name(role)) for role in dbconn.ROLES}
    assert all(new[r] != old[r] for r in dbconn.ROLES)
    assert not list(tls.secrets_path.glob("*" + pgroles.PENDING))
    assert certs.read(certs.cert_path(tls, "db")).serial != serial
    for role in ("reader", "importer"):
        with pytest.raises(DatabaseRefused, match="wrong password"):
            dbconn.wait_ready("127.0.0.1", tls.db.port, role, old[role], tls.db.database, 20,
                              tls_ca_file=dbconn.tls_ca_file(tls.db, tls.secrets_dir))
    postgres = docker_api.container_or_none(stack.container_name(tls, "postgres"))
    postgres.restart()
    stack.wait_healthy(tls)  # every role logs in with the files' passwords after PostgreSQL's start
    client = stack.db_client(tls, "reader")
    try:
        assert client[tls.db.database]["reports"].count_documents({}) == 18
    finally:
        client.close()


def expire_now(cfg, name: str) -> None:
    """name's certificate issued again by the instance's CA with its own key and names, valid for 0 days
    (notAfter = now): `openssl x509 -req -days 0` (openssl req -x509 refuses 0 days)."""
    import os
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        conf, csr, crt = Path(tmp) / "ext.cnf", Path(tmp) / "csr", Path(tmp) / "crt"
        conf.write_text(certs.extensions("serverAuth", certs.names(cfg, name)))
        subprocess.run(["openssl", "req", "-new", "-key", str(certs.key_path(cfg, name)), "-subj",
                        certs.subject(cfg, name), "-config", str(conf), "-out", str(csr)], check=True)
        subprocess.run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(certs.cert_path(cfg, certs.CA)),
                        "-CAkey", str(certs.key_path(cfg, certs.CA)), "-set_serial", "0x1234", "-days", "0",
                        "-sha256", "-extfile", str(conf), "-extensions", "ext", "-out", str(crt)], check=True)
        os.replace(crt, certs.cert_path(cfg, name))


def test_an_expired_certificate_is_refused(tls):
    """FerretDB serving a certificate that expired (issued for 0 days by the instance's own CA): every client
    refuses it; `invoke certs` re-issues it and, FerretDB restarted, clients connect again."""
    from datetime import UTC, datetime

    expire_now(tls, "db")
    container = docker_api.container_or_none(stack.container_name(tls, "db"))
    container.restart()
    deadline = time.monotonic() + 60
    stack.wait_one(tls, "db", deadline)
    assert certs.read(certs.cert_path(tls, "db")).not_after <= datetime.now(UTC)
    client = stack.db_client(tls, "reader", timeout_s=3)
    try:
        with pytest.raises(pymongo.errors.ServerSelectionTimeoutError, match="certificate has expired"):
            client.admin.command("ping")
    finally:
        client.close()
    assert [r.action for r in certs.make(tls).rows if r.certificate == "db"][0].startswith("re-issued")
    container.restart()
    stack.wait_healthy(tls)  # every role logs in again, over TLS


def test_a_set_and_its_restore_over_tls(tls):
    cfg = config.derive(tls, {"backup.portable_dump": "every"})
    assert backup.run(cfg, "init")[0] == 0
    code, m = backup.run(cfg, "take")
    assert code == 0 and m.parts == ["files", "pg", "db"] and m.database.collections["reports"] == 18
    assert m.physical.ferretdb_version == "v1.24.2"  # asked of FerretDB over TLS
    done = restore.restore(cfg, m.set_id, files=False, force=True)  # verified through FerretDB over TLS
    assert done.copy is not None and done.copy.collections == m.physical.collections


def test_postgresql_takes_tls_connections_only(tls, caplog):
    """FerretDB's connections to PostgreSQL are TLS (pg_stat_ssl, as the superuser sees them), and a client
    on the project network without TLS is refused by pg_hba before any password is asked."""
    client = stack.db_client(tls, "reader")
    client[tls.db.database]["reports"].find_one()  # a connection of FerretDB's as reader
    client.close()
    postgres = docker_api.container_or_none(stack.container_name(tls, "postgres"))
    sql = ("SELECT count(*) FILTER (WHERE s.ssl AND s.version = 'TLSv1.3'), count(*) FROM pg_stat_ssl s "
           "JOIN pg_stat_activity a USING (pid) WHERE a.usename = 'reader'")
    code, out = postgres.exec_run(pgsql.superuser_argv(sql, "postgres"), user="postgres")
    assert code == 0, out
    over_tls, total = (int(n) for n in out.decode().split())
    assert total >= 1 and over_tls == total
    import logging

    caplog.set_level(logging.INFO, logger="aggregator-dr")
    code, out = containers.run_tool(
        tls, "backup", ["psql", f"host={stack.container_name(tls, 'postgres')} dbname=ferretdb user=reader "
                        "sslmode=disable connect_timeout=10", "-c", "SELECT 1"], {}, [stack.network_name(tls)],
        "plaintext-psql")
    said = "\n".join(r.getMessage() for r in caplog.records)
    assert code != 0 and "pg_hba.conf rejects connection" in said and "no encryption" in said, said[-2000:]
