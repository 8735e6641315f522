"""The db image (FerretDB over SQLite) with pymongo: insert, query, index, count, auth, survives restart."""

import uuid

import docker
import pymongo
import pytest
from conftest import connect, db_container
from pymongo.errors import DuplicateKeyError, OperationFailure


@pytest.fixture
def volume():
    name = f"aggr-test-dbdata-{uuid.uuid4().hex[:8]}"
    yield name
    try:
        docker.from_env().volumes.get(name).remove(force=True)
    except docker.errors.NotFound:
        pass


def test_db_accepts_pymongo_and_keeps_data_across_restart(built, db_password_file, volume):
    cfg = built
    with db_container(cfg, db_password_file, volume) as container:
        client = connect(cfg, container, db_password_file)
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

        container.get_wrapped_container().restart(timeout=20)
        client = connect(cfg, container, db_password_file)
        coll = client[cfg.db.database]["measurements"]
        assert coll.count_documents({}) == 500
        assert coll.find_one({"_id": "r1-499"})["test_name"] == "http_requests"
        assert "probe_cc_1_n_1" in {ix["name"] for ix in coll.list_indexes()}
        client.close()


def test_the_fast_count_is_the_exact_count(built, db_password_file):
    """common.db.count (collStats, answered from SQLite's b-tree) is what verification uses instead of
    count_documents (which reads every document): it must equal count_documents after inserts of small and
    page-overflowing documents, after deletes, and be 0 for a collection that does not exist."""
    from common import db

    cfg = built
    with db_container(cfg, db_password_file) as container:
        client = connect(cfg, container, db_password_file)
        d = client[cfg.db.database]
        assert db.count(d, "nothing") == 0
        d.small.insert_many([{"_id": i, "n": i} for i in range(3000)])
        d.big.insert_many([{"_id": i, "blob": "x" * 20000} for i in range(40)])  # overflow pages
        assert (db.count(d, "small"), db.count(d, "big")) == (3000, 40)
        d.small.delete_many({"n": {"$lt": 1234}})
        d.big.delete_one({"_id": 7})
        assert db.count(d, "small") == d.small.count_documents({}) == 1766
        assert db.count(d, "big") == d.big.count_documents({}) == 39
        client.close()


def test_db_refuses_wrong_and_missing_credentials(built, db_password_file):
    cfg = built
    with db_container(cfg, db_password_file) as container:
        connect(cfg, container, db_password_file).close()
        port = int(container.get_exposed_port(27017))
        wrong = pymongo.MongoClient("127.0.0.1", port, username=cfg.db.user, password="wrong",
                                    authSource=cfg.db.database, serverSelectionTimeoutMS=5000)
        with pytest.raises(OperationFailure, match="Authentication failed"):
            wrong[cfg.db.database].list_collection_names()
        anonymous = pymongo.MongoClient("127.0.0.1", port, serverSelectionTimeoutMS=5000)
        with pytest.raises(OperationFailure):
            anonymous[cfg.db.database]["measurements"].insert_one({"x": 1})
        wrong.close()
        anonymous.close()


def test_db_without_password_file_exits_with_a_clear_message(built):
    client = docker.from_env()
    out = client.containers.run(built.image("db"), remove=False, detach=True)
    try:
        result = out.wait(timeout=30)
        logs = out.logs().decode()
        assert result["StatusCode"] == 2
        assert "password file /run/secrets/db-password is missing" in logs
    finally:
        out.remove(force=True)


def test_a_service_that_cannot_start_is_reported_with_host_paths(built, tmp_path):
    """The db service with an empty password file: the error quotes the container's last log lines, which
    name the host's secret file, not /run/secrets/db-password where the container sees it."""
    import time

    from common import config
    from common.errors import ServiceError
    from dr import docker_api, services

    cfg = config.derive(built, {"instance": "aggr-hostpaths"})
    empty = tmp_path / "db-password"
    empty.write_text("")
    empty.chmod(0o600)
    spec = services.ServiceSpec("db", cfg.image("db"), dict(
        environment={"DB_NAME": cfg.db.database, "DB_USER": cfg.db.user,
                     "DB_PASSWORD_FILE": "/run/secrets/db-password"},
        volumes={str(empty): {"bind": "/run/secrets/db-password", "mode": "ro"}}))
    try:
        services.start_one(cfg, spec)
        with pytest.raises(ServiceError) as failed:
            services.wait_one(cfg, "db", time.monotonic() + 10)
    finally:
        services.down(cfg)
        docker_api.remove_network(services.network_name(cfg))
    assert f"db: password file {empty} is missing or empty" in str(failed.value), str(failed.value)
    assert "/run/secrets" not in str(failed.value)
