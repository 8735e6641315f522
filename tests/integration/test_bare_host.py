"""The bare-host drill: docs/runbook.md, executed block by block on a fresh Debian server (a container from
our base image with its own Docker Engine), restores the latest set of a real instance's repository and
ends with the restored Aggregator verified. Slow (every image is built inside); the apt cache keeps a warm
run to minutes."""

import json
from pathlib import Path

import pytest
from conftest import running_instance

from dr import backup, bare_host, docker_api, runbook, services


@pytest.fixture(scope="module")
def source(built, tmp_path_factory):
    """An instance with the samples pulled through the pipeline and one complete set in its repository."""
    with running_instance(tmp_path_factory.mktemp("bare"), "aggr-bare", sample=True) as cfg:
        assert backup.run(cfg, "init")[0] == 0
        code, manifest = backup.run(cfg, "take")
        assert code == 0
        yield cfg, manifest


def test_a_runbook_that_disagrees_with_the_server_fails_naming_its_line(source, tmp_path, monkeypatch):
    cfg, _ = source
    doc = tmp_path / "runbook.md"
    doc.write_text("# Runbook\n\n## 1. Copies\n\n```sh\nls /root/recovery/secrets/restic-password\n```\n\n"
                   "## 2. Wrong\n\n<!-- bare-host drill: expect: restored -->\n```sh\necho nothing here\n```\n\n"
                   "```sh\necho never runs\n```\n")
    monkeypatch.setattr(runbook, "RUNBOOK", doc)
    with pytest.raises(bare_host.BareHostFailed, match=r"runbook line 12 \(2\. Wrong\): its output lacks 'restored'"):
        bare_host.run(cfg)
    saved = sorted((Path(cfg.drill.history_dir) / "bare-host").glob("*.json"))
    report = json.loads(saved[-1].read_text())
    assert report["verdict"] == "FAIL"
    assert [r.get("exit_code") for r in report["steps"]] == [0, 0]  # the third block never ran
    # Nothing is left behind: server, cache container, network.
    assert docker_api.container_or_none(services.container_name(cfg, "bare-host")) is None
    assert docker_api.container_or_none(services.container_name(cfg, "aptcache")) is None
    assert not [n for n in docker_api.client().networks.list() if n.name == bare_host.network_name(cfg)]


def test_the_runbook_rebuilds_a_fresh_debian_server_from_the_repository(source):
    cfg, manifest = source
    report = bare_host.run(cfg)
    assert report["verdict"] == "pass", report["problems"]
    assert report["set"] == manifest.set_id
    ran = [r for r in report["steps"] if "skipped" not in r]
    steps = runbook.parse(runbook.RUNBOOK.read_text())
    assert len(ran) == len([s for s in steps if not s.skip]) >= 10
    assert any("./run invoke rebuild" in r["commands"] for r in ran)
    md = (Path(cfg.drill.history_dir) / "bare-host" / (report["started"].replace(":", "").replace("-", "") + ".md"))
    assert md.read_text().startswith(f"# Bare-host drill {report['started']}: pass")
