"""Releasing the collectors' reports after a set (issue 22; docs/snapshots.md), on a real instance
(`aggr-release`: `rebuild --sample`, a fresh sample collector, `[sync] release = "set"`): the pipeline pulls
(the collector keeps the reports in .pulled/), a set is taken with its release list, a report is pulled after
the set, then sync's `--release` removes from the collector exactly the reports the set holds, and the late
one only after the next set (`invoke snapshot`'s job: dr/jobs/release.py).

Needs the sync side of issue 22 (`[sync] release`, `python -m stages.sync --release`: r22-release-sync);
skipped without it."""

from __future__ import annotations

import json

import pytest
from conftest import running_instance

from common import config
from dr.engine import docker_api
from dr.jobs import backup, pipeline
from dr.jobs import release as dr_release
from dr.services import collector
from stages import journal
from stages import sync as sync_stage
from stages.layout import DataRoot

PULLED = f"{collector.ARCHIVE}/.pulled"

pytestmark = pytest.mark.skipif(not hasattr(sync_stage, "release_mode"),
                                reason="the sync side of issue 22 (r22-release-sync) is not here yet")


def held(container) -> dict[str, str]:
    """{name under .pulled/: sha256} of what the collector still holds."""
    out = container.exec_run(["sh", "-c", f"cd {PULLED} 2>/dev/null && find . -type f -printf '%P\\0' | "
                                          "xargs -0 -r sha256sum --"], user="collector")
    assert out.exit_code == 0, out.output
    return {name: sha for sha, _, name in (line.partition("  ") for line in out.output.decode().splitlines())}


def put(container, name: str, text: str) -> None:
    r = container.exec_run(["sh", "-c", "printf '%s' \"$2\" > \"$1\"", "sh", f"{collector.ARCHIVE}/{name}", text],
                           user="collector")
    assert r.exit_code == 0, r.output


@pytest.fixture(scope="module")
def instance(built, tmp_path_factory):
    root = tmp_path_factory.mktemp("release")
    with running_instance(root, "aggr-release", sample=True, **{"sync.release": "set"}) as cfg:
        cfg = config.derive(cfg, {"collectors": [collector.start(cfg)]})  # rebuild's own collector, fresh
        code, result = backup.run(cfg, "init")
        assert code == 0 and result is not None
        yield cfg, docker_api.client().containers.get(collector.container_name(cfg))


def test_a_set_releases_exactly_the_reports_it_holds_and_not_one_pulled_after_it(instance):
    cfg, container = instance
    dr = DataRoot(cfg.data_root)
    assert dr_release.release_mode(cfg) == "set"
    run = pipeline.run(cfg)
    assert run.exit_status() == 0, run.render()
    pulled = held(container)
    assert len(pulled) == 20  # the collector keeps every pulled report until a set holds it

    code, taken = backup.run(cfg, "take", extra=("--release-list",))
    assert code == 0 and taken is not None and taken.release is not None, taken
    assert taken.release.error is None and taken.release.reports == 20
    listed = json.loads((dr.root / taken.release.file).read_text())
    assert listed["set"] == taken.set_id and listed["repository"] == "local" and listed["format"] == 1
    assert {(r["collector"], r["remote"], r["sha256"]) for r in listed["reports"]} == {
        ("sample", name, sha) for name, sha in pulled.items()}

    put(container, "late.yaml", "---\nreport pulled after the set\n")
    late = pipeline.run_stage(cfg, "sync")
    assert late.exit_code == 0 and late.outcomes.get("pulled") == 1, late.render()
    assert "late.yaml" in held(container)

    released = dr_release.run_sync(cfg)
    assert released.exit_code == 0 and not released.errors, released.render()
    assert list(held(container)) == ["late.yaml"]  # exactly the set's reports went; the late one stays
    assert not (dr.root / taken.release.file).exists()  # done: every file it names is gone
    notes = [e for _, e in journal.read(dr) if e.get("event") == "released"]
    assert sorted(f for n in notes for f in n["files"]) == sorted(pulled)

    again = dr_release.run_sync(cfg)  # idempotent: nothing left to release, nothing removed
    assert again.exit_code == 0 and list(held(container)) == ["late.yaml"]

    following = dr_release.snapshot(cfg)  # the job: the next set holds the late report, and releases it
    assert following.release is not None and following.release.error is None, following.render()
    assert following.release.reports == 1 and not following.release.failed, following.render()
    assert held(container) == {}
    assert not list((dr.root / "releases").glob("*.json"))
