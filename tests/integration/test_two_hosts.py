"""The database on its own host (issue 12), with two instances on this Docker Engine standing for the two
hosts (tests/instances.py): `aggr-dbh` (host.role database) and `aggr-app` (host.role aggregator). The
two-host drill (tests/integration/test_two_host_drill.py) does the same on two servers with their own
Docker Engine, following the runbook."""

from __future__ import annotations

import random
import shutil

import pytest

from common import secrets
from common.errors import DatabaseRefused, ServiceError
from database import db as dbconn
from database import pgroles
from dr.engine import docker_api
from dr.jobs import backup, pipeline, rebuild, rotate
from dr.services import certs, stack
from instances import other_ca_error, pem_body, refuses_plaintext, served_certificates, two_instances
from pipeline_helpers import generate
from stages.layout import DataRoot


@pytest.fixture(scope="module")
def hosts(built, tmp_path_factory):
    with two_instances(tmp_path_factory.mktemp("twohosts"), "aggr", **{"backup.portable_dump": "every"}) as (app, dbh):
        assert backup.run(app, "init")[0] == 0
        yield app, dbh


def _lose(cfg) -> None:
    """A host lost: its containers, database volume and data root (its secrets and the repository are kept
    elsewhere). The Aggregator's Docker network stays: its gateway stands for the network between the hosts."""
    from dr.services import collector

    collector.stop(cfg)
    stack.down(cfg)
    docker_api.remove_volume(stack.pg_volume_name(cfg))
    shutil.rmtree(cfg.data_root_path, ignore_errors=True)


def _documents(cfg) -> dict[str, int]:
    client = stack.db_client(cfg, "reader")
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
    assert [p.name for p in first.phases][-2:] == ["indexes", "restore"]  # no pipeline on the database's host
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
    note = db_again.notes()["restore"]
    assert f"set {m.set_id}" in note and "physical copy" in note, note
    app_again = rebuild.rebuild(app)
    note = app_again.notes()["restore"]
    assert f"set {m.set_id}" in note and "files" in note and "documents" not in note, note
    assert _documents(app) == before
    assert sorted(p.name for p in (app.data_root_path / "archive").rglob("*") if p.is_file()) == archive


def test_the_database_host_refuses_plaintext_and_another_ca(hosts, tmp_path):
    app, _ = hosts
    assert refuses_plaintext(app.db.host, app.db.port)
    assert "certificate verify failed" in other_ca_error(app, app.db.host, app.db.port, tmp_path / "other")


def _passwords(cfg) -> dict[str, str]:
    return {role: secrets.read(cfg.secrets_dir, dbconn.password_name(role)) for role in dbconn.ROLES}


def _started(cfg) -> dict[str, str]:
    return {c.name: c.attrs["State"]["StartedAt"] for c in docker_api.client().containers.list(
        filters={"label": f"{docker_api.INSTANCE_LABEL}={cfg.instance}"})}


def test_rotating_across_the_two_hosts(hosts, tmp_path):
    """runbook 12.5: the Aggregator's host gives every role a new password (each role itself, over TLS) and
    the database new certificates, and writes the kit; the database's host refuses a kit that is not the
    new one before restarting anything, then takes the new one up; the old passwords are refused."""
    app, dbh = hosts
    old = _passwords(app)
    kit = tmp_path / "kit"
    result = rotate.rotate(app, kit=str(kit))
    assert result.roles == list(dbconn.ROLES) and result.kit == str(kit) and result.certificates
    new = _passwords(app)
    assert all(new[r] != old[r] for r in dbconn.ROLES)
    assert not list(app.secrets_path.glob("*" + pgroles.PENDING))
    assert (kit / dbconn.password_name("owner")).read_text().strip() == new["owner"]

    before = _started(dbh)
    with pytest.raises(ServiceError, match="is not the one PostgreSQL has"):
        rotate.rotate(dbh)  # its secrets folder still holds the old kit
    assert _started(dbh) == before and _passwords(dbh) == old

    shutil.copytree(kit, dbh.secrets_dir, dirs_exist_ok=True)
    assert rotate.rotate(dbh).taken_up
    assert _started(dbh) != before
    ca = dbconn.tls_ca_file(app.db, app.secrets_dir)
    for role in dbconn.ROLES:
        with pytest.raises(DatabaseRefused, match="wrong password"):
            dbconn.wait_ready(app.db.host, app.db.port, role, old[role], app.db.database, 20, tls_ca_file=ca)
    for name, pem in zip(("db", "postgres"), served_certificates(dbh, app.db.host, app.db.port)):
        assert pem_body(pem) == pem_body(certs.cert_path(app, name).read_text()), name
    code, m = backup.run(app, "take")  # every database part of a set on the new secrets, over TLS
    assert code == 0 and m.parts == ["files", "pg", "db"]


def test_a_rotation_interrupted_across_two_hosts_is_finished_by_the_next(hosts, tmp_path):
    """Killed after PostgreSQL took reader's new password, before the file was put in place: the next run
    recognises it (the current password is refused, the written-down one logs in) and finishes; the
    database's host then takes the new kit up as usual."""
    app, dbh = hosts
    old = _passwords(app)
    written_down = rotate._pending(app, "reader")
    assert backup.set_own_password(app, "reader") is True  # PostgreSQL has it; the file is not in place
    result = rotate.rotate(app, kit=str(tmp_path / "kit"))
    assert result.roles == list(dbconn.ROLES)
    new = _passwords(app)
    assert new["reader"] == written_down and all(new[r] != old[r] for r in dbconn.ROLES)
    shutil.copytree(tmp_path / "kit", dbh.secrets_dir, dirs_exist_ok=True)
    assert rotate.rotate(dbh).taken_up


def test_the_aggregator_catches_the_database_up_after_the_database_host_is_lost(hosts):
    """runbook 12.2: reports archived after the latest set are not in the database its lost host is rebuilt
    from; `rebuild --role aggregator` imports them again from the archive."""
    app, dbh = hosts
    code, m = backup.run(app, "take")
    assert code == 0
    generate(DataRoot(app.data_root).ensure(), random.Random(122), n_good=4, n_bad=0, entries=(2, 4),
             body=(100, 300))
    ran = pipeline.run(app)
    assert ran.exit_status() == 0 and ran.stages[-1].outcomes.get("imported") == 4, ran.render()
    after = _documents(app)
    assert after["reports"] == m.database.collections["reports"] + 4

    _lose(dbh)
    note = rebuild.rebuild(dbh).notes()["restore"]
    assert f"set {m.set_id}" in note, note
    assert _documents(app)["reports"] == m.database.collections["reports"]
    phases = rebuild.rebuild(app).notes()
    assert phases["catch-up"] == "4 archived reports the database lacked, imported again", phases
    assert _documents(app) == after
    phases = rebuild.rebuild(app).notes()
    assert phases["catch-up"] == "the database holds every archived report"
