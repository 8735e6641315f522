"""The database on its own host (issue 12), with two instances on this Docker Engine standing for the two
hosts: `aggr-dbh` (host.role database: PostgreSQL and FerretDB, their ports published on one address,
TLS only) and `aggr-app` (host.role aggregator: everything else, its [db] pointing at that address). The
address is the gateway of the Aggregator's Docker network: its containers reach it as they would reach
another host, and so does this test process. The certificates are made on the Aggregator's side, and the
database's host gets `invoke db-host-kit`'s folder (no CA key) as its secrets.

The real two-host drill (two servers with their own Docker Engine, the runbook's two-host section executed
on them) is still to come: docs/tls.md, TODO.
"""

from __future__ import annotations

import shutil

import pymongo
import pymongo.errors
import pytest
from conftest import free_port, remove_instance

from common import config, secrets
from common import db as dbconn
from dr import backup, certs, dbhost, docker_api, rebuild, services


def _values(root, name: str, gateway: str, ports: tuple[int, int]) -> dict:
    db_port, pg_port = ports
    return {"instance": name, "data_root": str(root / name / "data"), "secrets_dir": str(root / name / "secrets"),
            "backup.repository": str(root / "repo"), "host.min_free_gb": 1, "webmirror.port": free_port(),
            "monitoring.textfile_dir": str(root / name / "metrics"), "db.tls": True, "db.port": db_port,
            "db.postgres_port": pg_port, "backup.portable_dump": "every",
            # Both instances share this Docker Engine, so their containers' names differ; on two real hosts
            # they are the same (one instance name) and need no extra name.
            "certs.db_names": [gateway, "aggr-dbh-db", "aggr-dbh-postgres"]}


@pytest.fixture(scope="module")
def hosts(built, tmp_path_factory):
    root = tmp_path_factory.mktemp("twohosts")
    for name in ("aggr-app", "aggr-dbh"):  # what a killed run left
        remove_instance(config.load(overrides={"instance": name, "data_root": str(root / "none")}))
    gateway = docker_api.ensure_network("aggr-app").attrs["IPAM"]["Config"][0]["Gateway"]
    ports = (free_port(), free_port())
    app = config.load(overrides={**_values(root, "aggr-app", gateway, ports), "host.role": "aggregator",
                                 "db.host": gateway})
    dbh = config.load(overrides={**_values(root, "aggr-dbh", gateway, ports), "host.role": "database",
                                 "db.bind": gateway})
    for role in dbconn.ROLES:
        secrets.ensure(app.secrets_dir, dbconn.password_name(role))
    secrets.ensure(app.secrets_dir, secrets.RESTIC_PASSWORD)
    certs.make(app)  # on the Aggregator's host, which keeps the CA
    dbhost.write_kit(app, dbh.secrets_dir)
    assert backup.run(app, "init")[0] == 0
    try:
        yield app, dbh
    finally:
        for cfg in (app, dbh):
            remove_instance(cfg)


def _lose(cfg) -> None:
    """A host lost: its containers, database volume and data root (its secrets and the repository are kept
    elsewhere). The Aggregator's Docker network stays: its gateway stands for the network between the hosts."""
    from dr import collector

    collector.stop(cfg)
    services.down(cfg)
    docker_api.remove_volume(services.pg_volume_name(cfg))
    shutil.rmtree(cfg.data_root_path, ignore_errors=True)


def _documents(cfg) -> dict[str, int]:
    client = services.db_client(cfg, "reader")
    try:
        d = client[cfg.db.database]
        return {c: d[c].count_documents({}) for c in sorted(d.list_collection_names())}
    finally:
        client.close()


def test_the_kit_carries_no_ca_key(hosts):
    app, dbh = hosts
    assert not certs.ca_key_dir(dbh).exists() and certs.key_path(app, certs.CA).is_file()
    assert sorted(p.name for p in (certs.tls_dir(dbh)).iterdir()) == [
        "ca.crt", "db.crt", "db.key", "postgres.crt", "postgres.key"]


def test_two_hosts_import_take_a_set_and_are_both_rebuilt_from_it(hosts):
    app, dbh = hosts
    first = rebuild.rebuild(dbh)
    assert [p[0] for p in first.phases][-2:] == ["indexes", "restore"]  # no pipeline on the database's host
    assert {c.name for c in docker_api.client().containers.list(
        filters={"label": f"{docker_api.INSTANCE_LABEL}={dbh.instance}"})} == {"aggr-dbh-postgres", "aggr-dbh-db"}

    report = rebuild.rebuild(app, sample=True)  # the pipeline imports across the "hosts"
    assert {r.stage: r.exit_code for r in report.pipeline} == {"sync": 0, "sanitize": 0, "importer": 0}
    assert docker_api.container_or_none("aggr-app-postgres") is None
    assert docker_api.container_or_none("aggr-app-db") is None
    before = _documents(app)
    assert before["reports"] == 18

    code, m = backup.run(app, "take")  # the database's parts from the other host, over TLS
    assert code == 0 and m.parts == ["files", "pg", "db"] and m.database.collections["reports"] == 18
    archive = sorted(p.name for p in (app.data_root_path / "archive").rglob("*") if p.is_file())

    # Both hosts lost: containers, volumes, data roots; the secrets and the repository are kept off-host.
    for cfg in (app, dbh):
        _lose(cfg)
    db_again = rebuild.rebuild(dbh)
    note = dict((p[0], p[2]) for p in db_again.phases)["restore"]
    assert f"set {m.set_id}" in note and "physical copy" in note, note
    app_again = rebuild.rebuild(app)
    note = dict((p[0], p[2]) for p in app_again.phases)["restore"]
    assert f"set {m.set_id}" in note and "files" in note and "documents" not in note, note
    assert _documents(app) == before
    assert sorted(p.name for p in (app.data_root_path / "archive").rglob("*") if p.is_file()) == archive


def test_the_database_host_refuses_plaintext_and_another_ca(hosts, tmp_path):
    app, dbh = hosts
    plain = pymongo.MongoClient(app.db.host, app.db.port, serverSelectionTimeoutMS=3000, directConnection=True)
    try:
        with pytest.raises(pymongo.errors.PyMongoError):
            plain.admin.command("ping")
    finally:
        plain.close()
    other = config.derive(app, {"instance": "aggr-other", "secrets_dir": str(tmp_path / "other")})
    certs.make(other)
    password = secrets.read(app.secrets_dir, dbconn.password_name("reader"))
    client = dbconn.client(app.db.host, app.db.port, "reader", password, timeout_s=3,
                           tls_ca_file=str(certs.db_files(other)[0]))
    try:
        with pytest.raises(pymongo.errors.ServerSelectionTimeoutError, match="certificate verify failed"):
            client.admin.command("ping")
    finally:
        client.close()

