"""Database dump and restore in the backup image, between two real databases (postgres + db each): the dump
as the backup role, the restore as owner, the backup container on both databases' networks."""

import datetime as dt
import hashlib

import bson
import pytest
from conftest import database_pair

from database import db

N_DOCS = 10_000


def sample_docs():
    for i in range(N_DOCS):
        yield {
            "_id": f"20140101T000000Z_AS3_{i:05d}",
            "test_name": ["http_requests", "dns_consistency", "bridge_reachability"][i % 3],
            "probe_cc": ["IT", "BR", "IS", "TR"][i % 4],
            "start_time": dt.datetime(2014, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=i),
            "entry": {"input": f"http://example{i}.org/", "received": [{"body": "Reykjavík \u2603" * (i % 5)}],
                      "raw": bson.Binary(bytes([i % 256]) * (i % 50))},
            "n": i,
        }


def fingerprint(coll):
    h = hashlib.sha256()
    for doc in coll.find({}).sort("_id", 1):
        h.update(bson.encode(doc))
    return h.hexdigest()


def run_backup(cfg, networks, script):
    """Run a bash script in the backup image on the databases' networks, with the backup and owner roles'
    password files; returns (exit code, output)."""
    import docker

    client = docker.from_env()
    secrets = {str(cfg.secrets_path / db.password_name(role)): {
        "bind": f"/run/secrets/{db.password_name(role)}", "mode": "ro"} for role in ("backup", "owner")}
    container = client.containers.create(
        cfg.image("backup"), ["bash", "-o", "pipefail", "-c", script], network=networks[0], volumes=secrets)
    try:
        for other in networks[1:]:
            client.networks.get(other).connect(container)
        container.start()
        code = container.wait(timeout=600)["StatusCode"]
        return code, container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)


def dbdump(action, host, extra=""):
    role = "backup" if action == "dump" else "owner"
    return (f"python3 -m snapshots.dbdump {action} --host {host}-db --port 27017 --database aggregator "
            f"--user {role} --password-file /run/secrets/db-{role}-password {extra}")


@pytest.fixture
def two_dbs(built):
    src_name, dst_name = f"{built.instance}-source", f"{built.instance}-target"
    with database_pair(built, src_name) as (_, src), database_pair(built, dst_name) as (_, dst):
        yield (src_name, dst_name), src, dst


def test_dump_then_restore_round_trips_10000_documents(built, two_dbs):
    net, src, dst = two_dbs
    coll = src.aggregator.measurements
    coll.insert_many(sample_docs())
    coll.create_index("test_name")
    coll.create_index([("probe_cc", 1), ("start_time", -1)])
    src.aggregator.reports.insert_many([{"_id": f"r{i}", "n": i} for i in range(7)])
    src.aggregator.reports.create_index("n", unique=True)

    code, out = run_backup(built, net,
                           dbdump("dump", net[0]) + " | " + dbdump("restore", net[1]))
    assert code == 0, out
    assert "restore of aggregator: 2 collections, 10007 documents" in out

    for name in ("measurements", "reports"):
        assert dst.aggregator[name].count_documents({}) == src.aggregator[name].count_documents({})
        assert fingerprint(dst.aggregator[name]) == fingerprint(src.aggregator[name])
    assert dst.aggregator.measurements.count_documents({}) == N_DOCS
    assert {"test_name_1", "probe_cc_1_start_time_-1"} <= {
        ix["name"] for ix in dst.aggregator.measurements.list_indexes()}
    assert any(ix.get("unique") for ix in dst.aggregator.reports.list_indexes() if ix["name"] == "n_1")

    # A second restore over the filled database is refused (nothing overwritten) unless --drop.
    code, out = run_backup(built, net,
                           dbdump("dump", net[0]) + " | " + dbdump("restore", net[1]))
    assert code == 1 and "is not empty; restore with --drop" in out
    assert dst.aggregator.measurements.count_documents({}) == N_DOCS
    code, out = run_backup(built, net,
                           dbdump("dump", net[0]) + " | " + dbdump("restore", net[1], "--drop"))
    assert code == 0, out
    assert fingerprint(dst.aggregator.measurements) == fingerprint(src.aggregator.measurements)


def test_truncated_dump_is_refused(built, two_dbs):
    net, src, dst = two_dbs
    src.aggregator.measurements.insert_many({"_id": i, "pad": "x" * 200} for i in range(2000))
    code, out = run_backup(built, net,
                           dbdump("dump", net[0]) + " > /tmp/d && head -c 200000 /tmp/d | "
                           + dbdump("restore", net[1]))
    assert code == 1
    assert "truncated" in out


def test_dump_with_wrong_password_fails_clearly(built, two_dbs):
    net, _, _ = two_dbs
    code, out = run_backup(built, net,
                           "echo wrong > /tmp/pw && " + dbdump("dump", net[0]).replace(
                               "/run/secrets/db-backup-password", "/tmp/pw") + " > /dev/null")
    assert code == 1
    assert "password authentication failed for user" in out
