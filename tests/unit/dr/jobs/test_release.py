"""Which release lists the jobs ask for (dr/jobs/release.py): by `[sync] release`, and only with collectors.
The jobs themselves run real containers: tests/integration/test_release.py."""

import pytest

from common import config
from dr.jobs import release
from snapshots import cli
from snapshots.results import CopyResult, Release
from stages.cli import Summary

COLLECTOR = {"name": "c1", "host": "collector", "port": 22, "user": "aggr", "key_file": "/k",
             "host_key": "ssh-ed25519 AAAA", "archive_path": "/srv/archive"}


def cfg(tmp_path, **more):
    return config.load(overrides={"data_root": str(tmp_path / "data"), "collectors": [COLLECTOR], **more})


@pytest.mark.parametrize("mode, lists", [("set", ("local", "offsite")), ("offsite", ("offsite",)), ("pulled", ())])
def test_a_mode_asks_for_the_lists_its_sync_reads(mode, lists):
    assert release.lists_wanted(mode) == lists


def test_auto_is_offsite_with_an_offsite_repository_else_set(tmp_path):
    assert release.release_mode(cfg(tmp_path)) == "set"
    assert release.release_mode(cfg(tmp_path, **{"offsite.repository": "rest:http://o:8000/a"})) == "offsite"


def test_nothing_is_released_without_collectors_or_in_mode_pulled(tmp_path):
    assert release.active(cfg(tmp_path), "set")
    assert not release.active(cfg(tmp_path), "pulled")
    assert not release.active(config.load(overrides={"data_root": str(tmp_path)}), "set")


def test_the_backup_cli_takes_the_flag():
    assert cli.parser().parse_args(["take", "--release-list"]).release_list
    assert not cli.parser().parse_args(["copy"]).release_list


def test_a_release_is_part_of_the_jobs_one_result_and_its_failure_is_visible():
    sync = Summary("sync", outcomes={"released": 3}, exit_code=0)
    ok = Release(set_id="20260301T100000Z", repository="offsite", file="releases/20260301T100000Z-offsite.json",
                 reports=3, sync=sync)
    copy = CopyResult(["20260301T100000Z"], [], 1, "rest:http://o:8000/a", release=ok)
    back = CopyResult.from_dict(copy.to_dict())
    assert back == copy and not back.release.failed
    assert back.to_dict()["release"]["set"] == "20260301T100000Z"
    assert "release: set 20260301T100000Z holds 3 pulled report(s)" in copy.render()
    assert "sync: 3 released" in copy.render()
    older = {k: v for k, v in copy.to_dict().items() if k != "release"}  # a result from before releases
    assert CopyResult.from_dict(older).release is None and "release" not in CopyResult.from_dict(older).render()
    unreachable = Summary("sync", errors=["c1: ssh failed (exit 255)"], exit_code=1)
    failed = Release(repository="local", error="set 20260301T100000Z is not complete in the local repository",
                     sync=unreachable)
    assert failed.failed and "release: no local list (set 20260301T100000Z is not complete" in failed.line()
    assert Release(repository="local", sync=sync).line().startswith("release: no new local list; sync:")
