"""`invoke rebuild` (first cut) brings up postgres, db and webmirror for an instance, with the importer's
collections made by the owner role; status shows them; down keeps data."""

import hashlib
import json
import urllib.error
import urllib.request

import pytest
from conftest import free_port, remove_instance

from common import config
from dr.jobs import rebuild
from dr.machine import images
from dr.services import stack


@pytest.fixture
def instance(built):
    remove_instance(built)  # what a killed earlier run may have left
    yield built
    remove_instance(built)


def test_rebuild_starts_healthy_services_and_down_keeps_data(instance):
    cfg = instance
    report = rebuild.rebuild(cfg)
    phases = [p.name for p in report.phases]
    assert phases == ["preflight", "bootstrap", "artifacts", "images", "start", "health", "indexes", "restore"]
    notes = report.notes()
    n = len(images.COMPONENTS)
    assert f"{n} images ({n} unchanged)" in notes["images"]
    assert notes["restore"].startswith("no repository at ")  # a new Aggregator: nothing to restore
    assert notes["indexes"] == "6 indexes serve the users' queries"
    assert notes["artifacts"].startswith("Go binaries cached: ferretdb v1.24.2")

    rows = {r.service: r for r in stack.status(cfg)}
    assert {r.health for r in rows.values()} == {"healthy"} and set(rows) == {"postgres", "db", "webmirror"}
    assert rows["postgres"].ports == ""  # reached only on the instance network
    assert rows["db"].ports == f"127.0.0.1:{cfg.db.port}"
    assert rows["webmirror"].ports == f"127.0.0.1:{cfg.webmirror.port}"

    (cfg.data_root_path / "archive" / "hello.txt").write_text("published\n")
    with urllib.request.urlopen(f"http://127.0.0.1:{cfg.webmirror.port}/hello.txt", timeout=10) as resp:
        assert resp.read() == b"published\n"

    client = stack.db_client(cfg, "importer")
    assert set(client[cfg.db.database].list_collection_names()) >= {"reports", "measurements"}
    client[cfg.db.database].reports.insert_one({"_id": "kept"})
    client.close()

    # A second rebuild keeps the running, current containers.
    again = rebuild.rebuild(cfg)
    assert "postgres running, db running, webmirror running" in again.notes()["start"]

    # Another port in the configuration replaces the running container (a kept one would publish the old).
    moved = config.derive(cfg, {"webmirror.port": free_port()})
    assert stack.start(moved) == {"postgres": "running", "db": "running", "webmirror": "started"}
    stack.wait_healthy(moved)
    with urllib.request.urlopen(f"http://127.0.0.1:{moved.webmirror.port}/hello.txt", timeout=10) as resp:
        assert resp.read() == b"published\n"

    assert sorted(stack.down(cfg).removed) == [f"{cfg.instance}-{s}" for s in ("db", "postgres", "webmirror")]
    assert all(r.state == "absent" for r in stack.status(cfg))
    assert (cfg.data_root_path / "archive" / "hello.txt").exists()

    stack.start(cfg)
    stack.wait_healthy(cfg)
    client = stack.db_client(cfg)
    assert client[cfg.db.database].reports.find_one({"_id": "kept"}) == {"_id": "kept"}
    client.close()


def test_rebuild_sample_runs_the_pipeline_in_its_images_and_publishes(instance):
    cfg = instance
    report = rebuild.rebuild(cfg, sample=True)
    notes = report.notes()
    # the sample collector keeps what was pulled (in .pulled/) until a set holds it ([sync] release)
    assert "sync 20 held_on_collector, 20 pulled" in notes["pipeline"] and "importer 18 imported" in notes["pipeline"]
    assert [r.stage for r in report.pipeline] == ["sync", "sanitize", "importer"]
    assert all(r.exit_code == 0 for r in report.pipeline)
    dr = cfg.data_root_path
    assert not [p for p in (dr / "raw").rglob("*") if p.is_file()]
    assert [p.name for p in (dr / "quarantine").rglob("*.yamlooni")] == ["real-probe2012-prototype-marco-1.yamlooni"]

    base = f"http://127.0.0.1:{cfg.webmirror.port}"
    with urllib.request.urlopen(base + "/index.json", timeout=10) as resp:
        index = json.loads(resp.read())
    assert index["count"] == 18
    first = index["reports"][0]
    with urllib.request.urlopen(f"{base}/{first['name']}", timeout=10) as resp:
        body = resp.read()
    assert hashlib.sha256(body).hexdigest() == first["sha256"]
    for private in ("/../raw/", "/../originals/", "/../quarantine/", "/../journal.jsonl", "/.index-cache.json"):
        try:
            with urllib.request.urlopen(base + private, timeout=10) as resp:
                status = resp.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        assert status in (400, 403, 404), private

    client = stack.db_client(cfg)
    assert client[cfg.db.database].reports.count_documents({}) == 18
    client.close()

    # Again: the sample collector is refilled; everything it holds is recognized as a duplicate.
    again = rebuild.rebuild(cfg, sample=True)
    assert "sanitize 19 duplicate" in again.notes()["pipeline"]

    # `invoke down` stops the sample collector with the services: none of the instance's containers runs.
    from dr.engine import docker_api
    from dr.services import collector

    assert docker_api.container_or_none(collector.container_name(cfg)).status == "running"
    stopped = stack.down(cfg)
    assert sorted(stopped.removed) == [f"{cfg.instance}-{s}" for s in ("collector", "db", "postgres", "webmirror")]
    assert stopped.still_running == [] and stack.still_running(cfg) == []
    assert not docker_api.client().containers.list(filters={"label": f"{docker_api.INSTANCE_LABEL}={cfg.instance}"})
