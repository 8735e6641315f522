"""What `invoke restore` reports (dr/jobs/restore.Restored, its physical part a CopyReport): JSON with the keys
the task printed before these were records, read back into an equal record, and the text the task printed."""

import pytest

from common import config
from dr.jobs import rebuild, restore
from dr.jobs.restore import Restored
from snapshots.results import CopyRestored, DbRestored, FilesRestored, Manifest
from stages.cli import Summary

SET = "20260101T000000Z"
COUNTS = {"reports": 2, "measurements": 9}
MANIFEST = Manifest.from_dict({
    "format": 1, "set": SET, "host": "aggr", "version": "0.1.0", "started": "2026-01-01T00:00:00Z",
    "locked": "2026-01-01T00:00:01Z", "ended": "2026-01-01T00:00:09Z", "paused_seconds": 1.25,
    "lock_waited_seconds": 0.0, "recovered": [], "journal_position": 4096,
    "directories": {"archive": {"files": 4, "reports": 2, "bytes": 9000, "digest": "cd" * 32}},
    "database": {"database": "aggregator", "collections": COUNTS}, "snapshots": {"files": "f" * 64}})
FILES = FilesRestored("/srv/aggregator", {}, 0.5, 10_200_000, 6, "/srv/aggregator/.replaced-" + SET)
DUMP = DbRestored("aggregator", COUNTS, {"web_connectivity IT": [2, 9]}, 0.25)
COPIED = CopyRestored(SET, 49_457_664, 1.5, 17, replaced=f"replaced-{SET}-20260102T000000Z", sha256="ab" * 32)


def copy_report() -> restore.CopyReport:
    cfg = config.load(overrides={"db.database": "aggr"})
    return restore.copy_report(cfg, COPIED, COUNTS, 12.25, {"stop": 1.0, "copy": 2.5, "start": 8.0, "verify": 0.75})


def test_a_copy_report_carries_what_the_container_put_in_place_and_the_database_it_went_into():
    report = copy_report()
    assert (report.set_id, report.database, report.bytes, report.postgres_major) == (SET, "aggr", 49_457_664, 17)
    assert report.seconds == 12.25 and report.copy_seconds == 1.5 and report.documents == 11
    assert report.replaced == COPIED.replaced and report.sha256 == COPIED.sha256
    assert restore.CopyReport.from_json(report.to_json()) == report
    # the keys `invoke restore --json` printed for the copy before it was a record, and two more
    assert set(report.to_dict()) == {"set", "bytes", "postgres_major", "replaced", "sha256", "collections",
                                     "seconds", "database", "copy_seconds", "phases"}
    assert report.to_dict()["seconds"] == 12.25  # the whole restore's, as before


def test_restored_from_the_dump_says_what_the_task_said():
    done = restore.Restored(SET, "2026-01-01T00:00:00Z", MANIFEST, files=FILES, dump=DUMP)
    assert done.documents == 11
    data = done.to_dict()
    assert set(data) == {"set", "set_started", "manifest", "files", "db"}
    assert data["manifest"]["set"] == SET and data["db"]["database"] == "aggregator"
    assert restore.Restored.from_json(done.to_json()) == done
    assert done.render().splitlines() == [
        f"restored set {SET} (taken 2026-01-01T00:00:00Z), verified against its manifest:",
        f"  files: 6 files, 10.2 MB into /srv/aggregator in 0.5s; the previous content is in "
        f"/srv/aggregator/.replaced-{SET}",
        "  database aggregator from the portable dump: measurements 9, reports 2 in 0.2s"]


def test_restored_from_the_physical_copy_names_the_database_and_the_previous_one():
    done = restore.Restored(SET, "2026-01-01T00:00:00Z", MANIFEST, copy=copy_report())
    assert done.documents == 11
    assert set(done.to_dict()) == {"set", "set_started", "manifest", "copy"}
    back = restore.Restored.from_json(done.to_json())
    assert back == done and back.copy.phases == {"stop": 1.0, "copy": 2.5, "start": 8.0, "verify": 0.75}
    assert done.render().splitlines() == [
        f"restored set {SET} (taken 2026-01-01T00:00:00Z), verified against its manifest:",
        "  database aggr from the physical copy (49.5 MB, PostgreSQL 17): measurements 9, reports 2 in 12.2s; "
        f"the previous database is in PostgreSQL's volume as replaced-{SET}-20260102T000000Z"]


def test_only_the_files_restored_say_only_the_files():
    files = FilesRestored("/data", {}, 1.0, 0, 0, None)
    done = restore.Restored(SET, "2026-01-01T00:00:00Z", MANIFEST, files=files)
    assert done.documents == 0 and set(done.to_dict()) == {"set", "set_started", "manifest", "files"}
    assert done.render().splitlines()[1:] == ["  files: 0 files, 0.0 MB into /data in 1.0s"]
    assert restore.Restored.from_dict(done.to_dict()) == done


# What `invoke rebuild` reports (dr/jobs/rebuild.RebuildReport): its phases and the set it restored read back
# from JSON into an equal record, and the summary the task printed (bench/dr_bench.py and the runbook drills
# read its `rebuild summary:` lines).


def report() -> rebuild.RebuildReport:
    phases = [rebuild.Phase("preflight", 0.04, "disk ok"), rebuild.Phase("images", 61.25, "7 images (7 unchanged)"),
              rebuild.Phase("restore", 12.0, f"set {SET} (taken 2026-01-01T00:00:00Z): 11 documents"),
              rebuild.Phase("verify", 0.5, "")]
    return rebuild.RebuildReport(phases, Restored(SET, "2026-01-01T00:00:00Z", MANIFEST, dump=DUMP),
                                 pipeline=[Summary("sync", {"pulled": 3}).finish()])


def test_the_summary_lists_every_phase_and_the_total():
    assert report().render().splitlines() == [
        "rebuild summary:",
        "  preflight        0.0s  disk ok",
        "  images          61.2s  7 images (7 unchanged)",
        f"  restore         12.0s  set {SET} (taken 2026-01-01T00:00:00Z): 11 documents",
        "  verify           0.5s  ",
        "  total           73.8s"]
    assert report().total == pytest.approx(73.79)
    assert report().notes()["images"] == "7 images (7 unchanged)"
    assert rebuild.RebuildReport().render() == "rebuild summary:\n  total            0.0s"


def test_the_summary_names_the_repository_it_rebuilt_from():
    offsite = rebuild.RebuildReport(report().phases, repository="rest:http://backup-host:8000/aggregator", offsite=True)
    assert offsite.render().splitlines()[-2:] == [
        "  total           73.8s", "  from the off-site repository rest:http://backup-host:8000/aggregator"]
    primary = rebuild.RebuildReport(repository="/var/lib/aggregator-dr/restic")
    assert primary.render().splitlines()[-1] == "  from the primary repository /var/lib/aggregator-dr/restic"
    assert rebuild.RebuildReport.from_json(offsite.to_json()) == offsite
    # A report written before the repository was named reads back as a rebuild from the primary one.
    old = rebuild.RebuildReport.from_dict({"phases": [], "pipeline": []})
    assert old.repository is None and old.offsite is False


def test_the_report_round_trips_with_the_pipelines_stages():
    done = report()
    data = done.to_dict()
    assert set(data) == {"phases", "restored", "pipeline", "offsite"} and data["restored"]["set"] == SET
    assert data["pipeline"][0]["outcomes"] == {"pulled": 3}
    assert data["phases"][1] == {"name": "images", "seconds": 61.25, "note": "7 images (7 unchanged)"}
    back = rebuild.RebuildReport.from_json(done.to_json())
    assert back == done and back.pipeline[0].outcomes == {"pulled": 3}
    nothing = rebuild.RebuildReport([rebuild.Phase("restore", 0.1, "no repository at /repo")])
    assert "restored" not in nothing.to_dict() and rebuild.RebuildReport.from_dict(nothing.to_dict()) == nothing
