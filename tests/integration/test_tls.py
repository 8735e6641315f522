"""TLS between the database's clients and FerretDB (db.tls; issue 12's first hop): `rebuild` makes the
certificates (dr/certs.py, the real openssl) and starts FerretDB listening for TLS only; the pipeline's
importer and a snapshot set's database parts (FerretDB's version, the portable dump) reach it over TLS with
the CA handed to their containers, and a restore reads its copy back through it. Refused, by the real
components: a plaintext client, a client that trusts another CA, a wrong password."""

from __future__ import annotations

import pymongo
import pymongo.errors
import pytest
from conftest import running_instance

from common import config, secrets
from common import db as dbconn
from common.errors import DatabaseRefused
from dr import backup, certs, restore, services


@pytest.fixture(scope="module")
def tls(built, tmp_path_factory):
    with running_instance(tmp_path_factory.mktemp("tls"), "aggr-tls", sample=True, **{"db.tls": True}) as cfg:
        yield cfg


def test_the_pipeline_imports_over_tls(tls):
    assert certs.db_files(tls)[0].is_file()  # rebuild made the certificates
    client = services.db_client(tls, "reader")
    try:
        assert client[tls.db.database]["reports"].count_documents({}) == 18  # the importer wrote them
    finally:
        client.close()


def test_a_plaintext_client_is_refused(tls):
    client = pymongo.MongoClient("127.0.0.1", tls.db.port, serverSelectionTimeoutMS=3000, directConnection=True)
    try:
        with pytest.raises(pymongo.errors.PyMongoError):
            client.admin.command("ping")
    finally:
        client.close()


def test_a_client_that_trusts_another_ca_is_refused(tls, tmp_path):
    other = config.derive(tls, {"instance": "aggr-other", "secrets_dir": str(tmp_path / "other")})
    certs.make(other)
    password = secrets.read(tls.secrets_dir, dbconn.password_name("reader"))
    client = dbconn.client("127.0.0.1", tls.db.port, "reader", password, timeout_s=3,
                           tls_ca_file=str(certs.db_files(other)[0]))
    try:
        with pytest.raises(pymongo.errors.ServerSelectionTimeoutError, match="certificate verify failed"):
            client.admin.command("ping")
    finally:
        client.close()


def test_a_wrong_password_is_refused_over_tls(tls):
    with pytest.raises(DatabaseRefused, match="wrong password"):
        dbconn.wait_ready("127.0.0.1", tls.db.port, "reader", "not-the-password", tls.db.database, 20,
                          tls_ca_file=services.db_ca_file(tls))


def test_a_set_and_its_restore_over_tls(tls):
    cfg = config.derive(tls, {"backup.portable_dump": "every"})
    assert backup.run(cfg, "init")[0] == 0
    code, m = backup.run(cfg, "take")
    assert code == 0 and m.parts == ["files", "pg", "db"] and m.database.collections["reports"] == 18
    assert m.physical.ferretdb_version == "v1.24.2"  # asked of FerretDB over TLS
    done = restore.restore(cfg, m.set_id, files=False, force=True)  # verified through FerretDB over TLS
    assert done.copy is not None and done.copy.collections == m.physical.collections
