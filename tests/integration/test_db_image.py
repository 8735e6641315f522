"""The database: PostgreSQL (postgres image) with FerretDB (db image) in front, through pymongo. Insert,
query, index, count, data kept across restarts, and the roles PostgreSQL itself enforces: what owner,
importer, reader and backup may do, and what the database refuses them (PostgreSQL's own error)."""

import json
import time

import docker
import pymongo
import pytest
from conftest import database_pair, role_client
from pymongo.errors import DuplicateKeyError, OperationFailure

from common import config
from common.errors import DatabaseRefused
from database import db


@pytest.fixture(scope="module")
def pair(built):
    """(port, owner client) of a database of this module's own, holding one collection with one report."""
    with database_pair(built, f"{built.instance}-dbimage") as (database, owner):
        owner[built.db.database].reports.insert_one({"_id": "r1", "report_id": "r1"})
        yield database.port, owner


def test_db_accepts_pymongo_and_keeps_data_across_restart(built):
    cfg = built
    with database_pair(cfg, f"{cfg.instance}-restart") as (database, client):
        coll = client[cfg.db.database]["measurements"]
        docs = [{"_id": f"r1-{i}", "test_name": "http_requests" if i % 3 else "dns_consistency",
                 "probe_cc": ["IT", "BR", "IS"][i % 3], "n": i} for i in range(500)]
        coll.insert_many(docs)
        assert coll.create_index([("test_name", pymongo.ASCENDING)]) == "test_name_1"
        coll.create_index([("probe_cc", 1), ("n", 1)], unique=True)
        assert coll.count_documents({}) == 500
        assert coll.count_documents({"test_name": "dns_consistency"}) == 167
        assert coll.find_one({"_id": "r1-42"})["n"] == 42
        assert [d["n"] for d in coll.find({"probe_cc": "IS"}).sort("n", -1).limit(2)] == [497, 494]
        with pytest.raises(DuplicateKeyError):
            coll.insert_one({"_id": "other", "probe_cc": "IT", "n": 0})
        names = {ix["name"] for ix in coll.list_indexes()}
        assert {"_id_", "test_name_1", "probe_cc_1_n_1"} <= names
        client.close()

        for container in database.containers:  # PostgreSQL first, then FerretDB
            container.get_wrapped_container().restart(timeout=20)
        port = int(database.containers[-1].get_exposed_port(27017))  # a restart publishes another port
        owner_pw = (built.secrets_path / db.password_name("owner")).read_text().strip()
        db.wait_ready("127.0.0.1", port, "owner", owner_pw, cfg.db.database, 60)
        client = role_client(cfg, port, "reader")
        coll = client[cfg.db.database]["measurements"]
        assert coll.count_documents({}) == 500
        assert coll.find_one({"_id": "r1-499"})["test_name"] == "http_requests"
        assert "probe_cc_1_n_1" in {ix["name"] for ix in coll.list_indexes()}
        client.close()


def test_the_fast_count_is_the_exact_count(built, pair):
    """database.db.count is what verification uses instead of count_documents (which reads every document):
    it must equal count_documents after inserts of small and large (TOASTed) documents, after deletes, and
    be 0 for a collection that does not exist."""
    _, client = pair
    d = client[built.db.database]
    assert db.count(d, "nothing") == 0
    d.small.insert_many([{"_id": i, "n": i} for i in range(3000)])
    d.big.insert_many([{"_id": i, "blob": "x" * 20000} for i in range(40)])
    assert (db.count(d, "small"), db.count(d, "big")) == (3000, 40)
    d.small.delete_many({"n": {"$lt": 1234}})
    d.big.delete_one({"_id": 7})
    assert db.count(d, "small") == d.small.count_documents({}) == 1766
    assert db.count(d, "big") == d.big.count_documents({}) == 39


# ---- roles: what PostgreSQL refuses -------------------------------------------------------------------------

WRITES = {
    "insert": lambda c: c.insert_one({"_id": "new", "report_id": "new"}),
    "update": lambda c: c.update_one({"_id": "r1"}, {"$set": {"changed": True}}),
    "delete": lambda c: c.delete_one({"_id": "r1"}),
}
SCHEMA_CHANGES = {
    "drop": lambda c: c.drop(),
    "create_index": lambda c: c.create_index("changed"),
    "create_collection": lambda c: c.database["another"].insert_one({"x": 1}),
}


def refused(role: str, action) -> DatabaseRefused:
    with pytest.raises(OperationFailure) as failure:
        action()
    error = db.refusal(failure.value, role)
    assert error is not None, str(failure.value)
    return error


@pytest.mark.parametrize("role", ["reader", "backup"])
@pytest.mark.parametrize("write", [*WRITES, *SCHEMA_CHANGES])
def test_reader_and_backup_cannot_change_anything(built, pair, role, write):
    port, owner = pair
    client = role_client(built, port, role)
    try:
        coll = client[built.db.database].reports
        assert coll.find_one({"_id": "r1"})["report_id"] == "r1"  # reading is allowed
        action = {**WRITES, **SCHEMA_CHANGES}[write]
        error = refused(role, lambda: action(coll))
        assert error.sqlstate == "42501"
        assert ("permission denied" in str(error) or "must be owner" in str(error)), str(error)
        assert f"role {role}" in str(error)
    finally:
        client.close()
    assert owner[built.db.database].reports.find_one({"_id": "r1"}) == {"_id": "r1", "report_id": "r1"}
    assert "another" not in owner[built.db.database].list_collection_names()


def test_the_importer_writes_documents_but_cannot_change_collections(built, pair):
    port, owner = pair
    client = role_client(built, port, "importer")
    try:
        coll = client[built.db.database].reports
        coll.insert_one({"_id": "imported", "report_id": "imported"})
        coll.update_one({"_id": "imported"}, {"$set": {"entries": 3}})
        assert coll.find_one({"_id": "imported"})["entries"] == 3
        coll.delete_one({"_id": "imported"})  # the importer removes what a poison report left
        for name, action in SCHEMA_CHANGES.items():
            assert refused("importer", lambda a=action: a(coll)).sqlstate == "42501", name
    finally:
        client.close()
    assert owner[built.db.database].reports.count_documents({}) >= 1


def test_a_wrong_password_and_an_unknown_role_are_refused_by_postgresql(built, pair):
    port, _ = pair
    wrong = db.client("127.0.0.1", port, "reader", "not-the-password", timeout_s=5)
    with pytest.raises(DatabaseRefused, match="wrong password"):
        db.wait_ready("127.0.0.1", port, "reader", "not-the-password", built.db.database, 20)
    with pytest.raises(OperationFailure, match="28P01"):
        wrong[built.db.database].reports.find_one()
    wrong.close()
    stranger = pymongo.MongoClient("127.0.0.1", port, username="postgres", password="x", authMechanism="PLAIN",
                                   authSource="$external", serverSelectionTimeoutMS=5000)
    with pytest.raises(OperationFailure, match="28000"):  # pg_hba: the superuser never over the network
        stranger[built.db.database].reports.find_one()
    anonymous = pymongo.MongoClient("127.0.0.1", port, serverSelectionTimeoutMS=5000)
    with pytest.raises(OperationFailure):
        anonymous[built.db.database]["reports"].insert_one({"x": 1})
    stranger.close()
    anonymous.close()


def test_postgres_without_a_role_password_exits_with_a_clear_message(built):
    client = docker.from_env()
    out = client.containers.run(built.image("postgres"), remove=False, detach=True)
    try:
        result = out.wait(timeout=60)
        logs = out.logs().decode()
        assert result["StatusCode"] == 2
        assert "password file /run/secrets/db-owner-password is missing or empty" in logs
    finally:
        out.remove(force=True, v=True)  # and its anonymous volume


def test_a_service_that_cannot_start_is_reported_with_host_paths(built, tmp_path):
    """The postgres service with an empty password file: the error quotes the container's last log lines,
    which name the host's secret file, not /run/secrets/... where the container sees it."""
    from common import config
    from common.errors import ServiceError
    from dr.engine import docker_api
    from dr.services import stack

    cfg = config.derive(built, {"instance": "aggr-hostpaths", "secrets_dir": str(tmp_path / "secrets")})
    spec = stack.postgres_spec(cfg, volume="aggr-hostpaths-pgdata")
    empty = tmp_path / "secrets" / db.password_name("owner")
    empty.write_text("")
    try:
        stack.start_one(cfg, spec)
        with pytest.raises(ServiceError) as failed:
            stack.wait_one(cfg, "postgres", time.monotonic() + 30)
    finally:
        stack.down(cfg)
        docker_api.remove_volume("aggr-hostpaths-pgdata")
        docker_api.remove_network(stack.network_name(cfg))
    assert f"postgres: password file {empty} is missing or empty" in str(failed.value), str(failed.value)
    assert "/run/secrets" not in str(failed.value)


def test_the_image_health_check_runs_on_demand(built, pair):
    """wait_one does not wait for Docker's next scheduled check: it runs the image's own HEALTHCHECK command
    in the container. It passes for a running postgres and db, and is False for a container without a
    health check, for a stopped one and for none at all."""
    from dr.engine import docker_api
    from dr.services import stack

    pcfg = config.derive(built, {"instance": f"{built.instance}-dbimage"})
    for service in ("postgres", "db"):
        assert docker_api.health_check_passes(stack.container_name(pcfg, service)), service
    assert not docker_api.health_check_passes(f"{built.instance}-no-such-container")
    plain = docker.from_env().containers.run("aggregator-dr/backup:latest", ["sleep", "60"], detach=True,
                                             name=f"{built.instance}-no-healthcheck", network_disabled=True)
    try:
        assert not docker_api.health_check_passes(plain.name)  # the backup image declares none
        plain.kill()
        assert not docker_api.health_check_passes(plain.name)  # stopped: exec is refused
    finally:
        plain.remove(force=True)


# ---- the users' queries from indexes, counts from PostgreSQL ------------------------------------------------

def plan(cursor) -> str:
    """PostgreSQL's plan of a find, as FerretDB's explain returns it."""
    return json.dumps(cursor.explain()["queryPlanner"])


def test_the_users_queries_use_indexes_and_postgresql_counts_exactly(built):
    from common.errors import ServiceError
    from database import schema
    from dr.jobs import backup
    from dr.services import stack

    name = f"{built.instance}-indexes"
    cfg = config.derive(built, {"instance": name})
    with database_pair(built, name) as (_, owner):
        d = owner[cfg.db.database]
        schema.ensure(d)
        d.reports.insert_many([{"_id": f"k{i}", "report_id": f"r{i}", "probe_cc": ["IT", "BR", "IS"][i % 3],
                                "test_name": ["dns", "http"][i % 2], "day": f"2014-01-{1 + i % 28:02d}"}
                               for i in range(20_000)])
        d.measurements.insert_many([{"_id": f"k{i}:{j}", "report_key": f"k{i}", "input": f"http://{j}.example/"}
                                    for i in range(2_000) for j in range(10)])
        queries = {
            "a report by id": d.reports.find({"report_id": "r7"}),
            "a report's measurements": d.measurements.find({"report_key": "k7"}),
            "measurements by input": d.measurements.find({"input": "http://3.example/"}),
            "reports by country, test and day": d.reports.find({"probe_cc": "IT", "test_name": "dns",
                                                                "day": "2014-01-07"}),
        }
        for what, cursor in queries.items():
            assert "Seq Scan" in plan(cursor.clone()), what  # FerretDB's own indexes cannot serve them
        made = backup.db_indexes(cfg)
        assert len(made) == 6 and backup.db_indexes(cfg) == made  # made once, then already there
        for what, cursor in queries.items():
            used = plan(cursor.clone())
            assert "Bitmap Index Scan" in used and "aggr_" in used, (what, used)
        assert len(list(queries["a report's measurements"].clone())) == 10
        assert [r["report_id"] for r in queries["a report by id"].clone()] == ["r7"]

        d.reports.delete_many({"probe_cc": "BR"})
        assert backup.db_counts(cfg) == {"reports": d.reports.count_documents({}), "measurements": 20_000}
        # the same counts from psql in the postgres container (restores verify with it; as reader)
        assert stack.pg_counts(cfg) == backup.db_counts(cfg)
        with pytest.raises(ServiceError, match="permission denied"):
            stack.LocalPsql(stack.container_name(cfg, "postgres")).query("DELETE FROM aggregator."
                                                                               '"_ferretdb_database_metadata"')
        assert db.count(d, "reports") == 20_000 - 6_667
