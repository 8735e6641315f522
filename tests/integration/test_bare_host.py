"""The bare-host drill: docs/runbook.md, executed block by block on a fresh Debian server (a container from
our base image with its own Docker Engine, its Docker data in a volume on the host's disk), restores the
latest set of an instance after the README's first steps (its set already holds the samples, as a user's
does) and ends with the restored Aggregator verified, holding the reports the drill fed it. Slow (every
image is built inside); the apt cache keeps a warm run to minutes."""

from pathlib import Path

import pytest
from conftest import passed_every_block

from common import config
from dr.drills import bare_host, runbook
from dr.drills.drill_reports import RunbookDrillReport
from dr.engine import docker_api
from dr.services import stack


def test_a_drill_that_cannot_have_the_disk_is_refused_up_front(readme_flow, tmp_path):
    cfg, manifest = readme_flow
    hungry = config.derive(cfg, {"host.min_free_gb": 10 ** 6, "drill.work_dir": str(tmp_path / "work"),
                                 "drill.history_dir": str(tmp_path / "history")})
    with pytest.raises(bare_host.BareHostFailed, match=r"not enough disk for this drill \(.*GB free, about "
                                                       r"1000\d{3}\.\d GB needed.*drill\.work_dir"):
        bare_host.run(hungry)
    # Nothing was made: no server, no report, no copy of the repository.
    assert docker_api.container_or_none(stack.container_name(hungry, "bare-host")) is None
    assert not (tmp_path / "history").exists()
    assert [p.name for p in (tmp_path / "work").iterdir()] == [f".bare-host-{cfg.instance}-lock"]


def test_a_runbook_that_disagrees_with_the_server_fails_naming_its_line(readme_flow, tmp_path, monkeypatch):
    cfg, _ = readme_flow
    cfg = config.derive(cfg, {"drill.work_dir": str(tmp_path / "work")})
    # What a drill killed before its clean-up left: its work folder and its server's Docker data.
    left = tmp_path / "work" / f"bare-host-{cfg.instance}-killed"
    (left / "repository").mkdir(parents=True)
    stale = bare_host.docker_volume_name(cfg, "bare-host")
    docker_api.client().containers.run(cfg.base_image, ["touch", "/v/stale"], volumes={stale: {"bind": "/v"}},
                                       remove=True)
    doc = tmp_path / "runbook.md"
    doc.write_text("# Runbook\n\n## 1. Copies\n\n```sh\nls /root/recovery/secrets/restic-password\n"
                   "test \"$(stat -f -c %T /var/lib/docker)\" != tmpfs\ntest -z \"$(ls -A /var/lib/docker)\"\n```\n\n"
                   "## 2. Wrong\n\n<!-- bare-host drill: expect: restored -->\n```sh\necho nothing here\n```\n\n"
                   "```sh\necho never runs\n```\n")
    monkeypatch.setattr(runbook, "RUNBOOK", doc)
    with pytest.raises(bare_host.BareHostFailed, match=r"runbook line 14 \(2\. Wrong\): its output lacks 'restored'"):
        bare_host.run(cfg)
    saved = sorted((Path(cfg.drill.history_dir) / "bare-host").glob("*.json"))
    report = RunbookDrillReport.from_json(saved[-1].read_text())
    assert report.verdict == "FAIL" and report.drill == "bare-host"
    # The server's /var/lib/docker is on disk, not in memory, and starts empty (the leftover volume was not
    # reused); the third block never ran.
    assert [r.exit_code for r in report.steps] == [0, 0]
    # Nothing is left behind: server, its Docker data, cache container, network, work folders (the killed
    # drill's too).
    assert docker_api.container_or_none(stack.container_name(cfg, "bare-host")) is None
    assert not docker_api.client().volumes.list(filters={"name": bare_host.docker_volume_name(cfg, "bare-host")})
    assert docker_api.container_or_none(stack.container_name(cfg, "aptcache")) is None
    assert not [n for n in docker_api.client().networks.list() if n.name == bare_host.network_name(cfg)]
    assert not [p for p in (tmp_path / "work").iterdir() if p.is_dir()]


def test_the_runbook_rebuilds_a_fresh_debian_server_from_a_users_repository(readme_flow):
    cfg, manifest = readme_flow
    report = bare_host.run(cfg)
    # Every block ran; the pipeline had the drill's own reports to move although the set holds the samples.
    ran = passed_every_block(cfg, report, manifest, "bare-host", "bare-host", "Bare-host drill")
    assert len(ran) >= 10 and any("./run invoke rebuild" in r.commands for r in ran)
    assert docker_api.container_or_none(stack.container_name(cfg, "bare-host")) is None
