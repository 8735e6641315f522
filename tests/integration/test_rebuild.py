"""`invoke rebuild` (first cut) brings up db and webmirror for an instance; status shows them; down keeps data."""

import urllib.request

import docker
import pytest

from dr import db, rebuild, secrets, services


@pytest.fixture
def instance(built):
    yield built
    services.down(built)
    client = docker.from_env()
    for name in (services.db_volume_name(built),):
        try:
            client.volumes.get(name).remove(force=True)
        except docker.errors.NotFound:
            pass
    for net in client.networks.list(names=[services.network_name(built)]):
        net.remove()


def test_rebuild_starts_healthy_services_and_down_keeps_data(instance):
    cfg = instance
    report = rebuild.rebuild(cfg)
    phases = [p[0] for p in report.phases]
    assert phases == ["preflight", "bootstrap", "images", "start", "health"]
    assert "7 images (7 unchanged)" in dict((p[0], p[2]) for p in report.phases)["images"]

    rows = {r["service"]: r for r in services.status(cfg)}
    assert rows["db"]["health"] == "healthy" and rows["webmirror"]["health"] == "healthy"
    assert rows["db"]["ports"] == f"127.0.0.1:{cfg.db.port}"
    assert rows["webmirror"]["ports"] == f"127.0.0.1:{cfg.webmirror.port}"

    (cfg.data_root_path / "archive" / "hello.txt").write_text("published\n")
    with urllib.request.urlopen(f"http://127.0.0.1:{cfg.webmirror.port}/hello.txt", timeout=10) as resp:
        assert resp.read() == b"published\n"

    password = secrets.read(cfg.secrets_dir, secrets.DB_PASSWORD)
    client = db.client("127.0.0.1", cfg.db.port, cfg.db.user, password, cfg.db.database)
    client[cfg.db.database].reports.insert_one({"_id": "kept"})
    client.close()

    # A second rebuild keeps the running, current containers.
    again = rebuild.rebuild(cfg)
    assert "db running, webmirror running" in dict((p[0], p[2]) for p in again.phases)["start"]

    assert sorted(services.down(cfg)) == [f"{cfg.instance}-db", f"{cfg.instance}-webmirror"]
    assert all(r["state"] == "absent" for r in services.status(cfg))
    assert (cfg.data_root_path / "archive" / "hello.txt").exists()

    services.start(cfg)
    services.wait_healthy(cfg)
    client = db.client("127.0.0.1", cfg.db.port, cfg.db.user, password, cfg.db.database)
    assert client[cfg.db.database].reports.find_one({"_id": "kept"}) == {"_id": "kept"}
    client.close()
