"""What `invoke rebuild` reports (dr/jobs/rebuild.RebuildReport): its phases and the set it restored read back
from JSON into an equal record, and the summary the task printed (bench/dr_bench.py and the runbook drills read
its `rebuild summary:` lines)."""

import pytest

from dr.jobs import rebuild
from dr.jobs.restore import Restored
from stages.cli import StageResult, Summary
from tests.unit.dr.jobs.test_restore_report import DUMP, MANIFEST, SET


def report() -> rebuild.RebuildReport:
    phases = [rebuild.Phase("preflight", 0.04, "disk ok"), rebuild.Phase("images", 61.25, "7 images (7 unchanged)"),
              rebuild.Phase("restore", 12.0, f"set {SET} (taken 2026-01-01T00:00:00Z): 11 documents"),
              rebuild.Phase("verify", 0.5, "")]
    return rebuild.RebuildReport(phases, Restored(SET, "2026-01-01T00:00:00Z", MANIFEST, dump=DUMP),
                                 pipeline=[StageResult(Summary("sync"), 0)])


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


def test_the_report_round_trips_without_the_pipelines_stages():
    done = report()
    data = done.to_dict()
    assert set(data) == {"phases", "restored"} and data["restored"]["set"] == SET
    assert data["phases"][1] == {"name": "images", "seconds": 61.25, "note": "7 images (7 unchanged)"}
    back = rebuild.RebuildReport.from_json(done.to_json())
    assert back == done and back.pipeline == []  # kept on this side only
    nothing = rebuild.RebuildReport([rebuild.Phase("restore", 0.1, "no repository at /repo")])
    assert "restored" not in nothing.to_dict() and rebuild.RebuildReport.from_dict(nothing.to_dict()) == nothing
