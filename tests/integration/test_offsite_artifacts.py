"""The off-site copy is enough on its own (issue 22, item 4): `offsite` copies the newest build artifacts with
the sets, `check --offsite` reads them back there, an artifacts restore from the off-site repository fills an
empty cache folder with the binaries, and `rebuild --offsite` on a host that has neither its local repository
nor the Go module proxy rebuilds from the off-site copy alone. A real rest-server (dr/services/offsite.py),
real restic in the backup image, real services."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import free_port, remove_instance, running_instance

from common import config
from common.digest import sha256_file
from dr.jobs import backup, rebuild
from dr.machine import gobuild
from dr.services import offsite

FERRETDB = "ferretdb-v1.24.2/ferretdb"


@pytest.fixture(scope="module")
def primary(built, tmp_path_factory):
    """An Aggregator with the sample reports, a set (the build artifacts beside it) in its local repository,
    and an empty off-site repository on its own rest-server: (configuration, the set's manifest)."""
    with running_instance(tmp_path_factory.mktemp("offart"), "aggr-offart", sample=True) as live:
        cfg = config.derive(live, {"offsite.repository": offsite.repository_url(live),
                                   "offsite.network": offsite.network_name(live), "offsite.serve_port": free_port()})
        offsite.serve(cfg)  # removed with the instance
        assert backup.run(cfg, "init")[0] == 0 and backup.run(cfg, "init", offsite=True)[0] == 0
        code, m = backup.run(cfg, "take")
        assert code == 0 and m.artifacts.artifacts == [FERRETDB], m.artifacts
        yield cfg, m


def test_the_offsite_copy_carries_the_build_artifacts_and_check_reads_them_back(primary, tmp_path):
    cfg, m = primary
    code, before = backup.run(cfg, "check", offsite=True)
    assert code == 0 and before.artifacts.verdict == "none"  # the off-site repository holds none yet

    code, copied = backup.run(cfg, "copy")
    assert code == 0 and copied.copied == [m.set_id], copied
    assert copied.artifacts.state == "copied" and copied.artifacts.fingerprint == m.artifacts.fingerprint
    code, again = backup.run(cfg, "copy")  # the same binaries are copied once
    assert code == 0 and again.copied == [] and again.artifacts.state == "present"
    assert again.artifacts.snapshot == copied.artifacts.snapshot

    code, checked = backup.run(cfg, "check", offsite=True)
    assert code == 0 and checked.ok, checked
    assert checked.artifacts.verdict == "ok" and checked.artifacts.artifacts == [FERRETDB]
    assert checked.artifacts.snapshot == copied.artifacts.snapshot
    assert checked.render().splitlines()[-1].startswith(f"artifacts: ok (snapshot {copied.artifacts.snapshot}: ")

    # Into an empty cache folder, from the off-site repository alone: the binary, its sha256 as recorded and
    # as built here.
    empty = config.derive(cfg, {"cache_dir": str(tmp_path / "cache")})
    code, restored = backup.run(empty, "artifacts-restore", offsite=True)
    assert code == 0 and restored.restored == [FERRETDB] and restored.snapshot == copied.artifacts.snapshot
    binary = tmp_path / "cache" / "go" / FERRETDB
    recorded = json.loads(binary.with_suffix(".json").read_text())["sha256"]
    assert sha256_file(binary) == recorded == sha256_file(cfg.cache_path / "go" / FERRETDB)


def test_rebuild_offsite_needs_neither_the_local_repository_nor_the_go_module_proxy(primary, tmp_path, monkeypatch):
    """A second host (instance aggr-offart2) with the secrets and the configuration, an empty cache folder, no
    local repository, and a Go that can download nothing: its rebuild takes the binary and the latest set from
    the off-site repository, and its next set goes into a new local repository."""
    cfg, m = primary
    assert backup.run(cfg, "copy")[0] == 0  # whatever ran before: the set and the artifacts are off-site
    shutil.copytree(cfg.secrets_dir, tmp_path / "secrets")
    lost = config.load(overrides={
        "instance": "aggr-offart2", "data_root": str(tmp_path / "data"), "secrets_dir": str(tmp_path / "secrets"),
        "cache_dir": str(tmp_path / "cache"), "backup.repository": str(tmp_path / "repo"),
        "db.port": free_port(), "webmirror.port": free_port(), "host.min_free_gb": 1,
        "monitoring.textfile_dir": str(tmp_path / "metrics"), "drill.history_dir": str(tmp_path / "drills"),
        "history.dir": str(tmp_path / "history"), "status.page_dir": str(tmp_path / "status"),
        "offsite.repository": cfg.offsite.repository, "offsite.network": cfg.offsite.network})
    monkeypatch.setenv("GOPROXY", "off")
    monkeypatch.setenv("GOMODCACHE", str(tmp_path / "gomodcache"))  # not this host's module cache either
    remove_instance(lost)
    try:
        report = rebuild.rebuild(lost, offsite=True)
        notes = report.notes()
        assert notes["artifacts"].startswith(f"restored {FERRETDB} from artifacts snapshot "), notes["artifacts"]
        assert "of the off-site repository, sha256 verified" in notes["artifacts"]
        (art,) = gobuild.ARTIFACTS
        assert gobuild.cached(art, lost.cache_path)
        assert sha256_file(gobuild.cached_path(lost.cache_path, art)) == sha256_file(cfg.cache_path / "go" / FERRETDB)
        assert notes["restore"].startswith(f"set {m.set_id} ") and "verified against its manifest" in notes["restore"]
        assert "verify" in notes and report.restored.set_id == m.set_id
        assert notes["repository"].startswith(f"a new, empty repository at {lost.backup.repository}")
        assert report.offsite and report.render().splitlines()[-1] == (
            f"  from the off-site repository {cfg.offsite.repository}")

        # The next set goes into the new local repository, the binaries with it.
        code, taken = backup.run(lost, "take")
        assert code == 0 and taken.artifacts.saved is True and taken.reports == m.reports
    finally:
        remove_instance(lost)
