"""Drill reports (dr/drills/drill_reports.py): the records of both kinds of drill, their JSON and Markdown,
saving with retention, the history (older and damaged files included) and its table."""

import dataclasses
import json

from common import config
from dr.drills import drill_reports
from dr.drills.drill_reports import (
    DrillHistory,
    DrillPipeline,
    DrillQueries,
    RestoreDrillReport,
    RunbookDrillReport,
    StepRow,
)

RESTORE = RestoreDrillReport(
    started="2026-01-02T03:04:05Z", repository="/repo", requested="latest", set_id="20260102T000000Z",
    set_started="2026-01-02T00:00:00Z", rpo_seconds=11045, bytes_restored=2_500_000, files_restored=3,
    documents_restored=42, database_from="portable dump", queries=DrillQueries(test_country_pairs=2, reports=18),
    pipeline=DrillPipeline(pending_reports=1, stages={"sanitize": {"sanitized": 1}, "importer": {"imported": 1}}),
    phases={"start": 2.5, "restore": 5.0, "queries": 0.5, "pipeline": 1.0}, restore_seconds=7.5, total_seconds=9.0,
    verdict="pass", problems=[])
STEPS = [StepRow(line=5, section="1. Copies", commands="ls", exit_code=0, seconds=1.0, output_tail=["a"]),
         StepRow(line=9, section="1. Copies", commands="offsite", skipped="not here"),
         StepRow(line=12, section="2. Wrong", commands="echo", exit_code=0, seconds=0.1, output_tail=[],
                 problems=["no"])]
BARE = RunbookDrillReport(drill="bare-host", started="2026-01-02T03:04:05Z", set_id="S1", repository="/repo",
                          steps=STEPS, prepare_seconds=10.0, total_seconds=60.0, fed_reports=3, verdict="FAIL",
                          problems=["runbook line 12 (2. Wrong): no"])


def test_restore_report_json_keeps_todays_keys_and_reads_back():
    data = json.loads(RESTORE.to_json())
    assert list(data) == ["started", "repository", "requested", "set", "set_started", "rpo_seconds",
                          "bytes_restored", "files_restored", "documents_restored", "database_from", "queries",
                          "pipeline", "phases", "restore_seconds", "total_seconds", "verdict", "problems"]
    assert data["queries"] == {"test_country_pairs": 2, "reports": 18}
    assert data["pipeline"] == {"pending_reports": 1, "stages": {"sanitize": {"sanitized": 1},
                                                                  "importer": {"imported": 1}}}
    assert RestoreDrillReport.from_json(RESTORE.to_json()) == RESTORE
    assert RESTORE.exit_status() == 0


def test_restore_markdown():
    assert RESTORE.render() == (
        "# Restore drill 2026-01-02T03:04:05Z: pass\n\n"
        "- set: 20260102T000000Z (taken 2026-01-02T00:00:00Z; recovery point 11045 s before the drill)\n"
        "- repository: /repo\n"
        "- restored: 3 files, 2.5 MB, 42 database documents\n"
        "- restore time: 7.5 s; total 9.0 s\n\n"
        "| phase | seconds |\n|---|---|\n| start | 2.5 |\n| restore | 5.0 |\n| queries | 0.5 |\n| pipeline | 1.0 |\n")


def test_a_failed_restore_drill_before_the_restore_still_renders_and_has_only_what_it_reached():
    report = RestoreDrillReport(started="2026-01-02T03:04:05Z", requested="latest", repository="/r",
                                restore_seconds=0.0, total_seconds=0.0, verdict="FAIL", problems=["no set"])
    md = report.render()
    assert "- set: latest (taken ?;" in md and md.endswith("## Problems\n\n- no set\n")
    assert "- restored: 0 files, 0.0 MB, 0 database documents" in md
    data = json.loads(report.to_json())
    assert "set" not in data and "queries" not in data and data["phases"] == {}
    assert RestoreDrillReport.from_dict(data) == report and report.exit_status() == 1


def test_a_report_of_an_older_version_reads_back_with_what_it_has():
    old = {"started": "2025-06-01T00:00:00Z", "verdict": "pass", "requested": "latest", "set": "S0",
           "repository": "/repo", "restore_seconds": 3, "total_seconds": 4, "phases": {"start": 1, "restore": 2},
           "problems": [], "dump_seconds": 2}  # no database_from, queries, ...; a key this version lacks
    report = RestoreDrillReport.from_dict(old)
    assert report.set_id == "S0" and report.database_from is None and report.extra == {"dump_seconds": 2}
    assert json.loads(report.to_json()) == old


def test_bare_host_report_round_trips_and_renders():
    data = json.loads(BARE.to_json())
    assert data["drill"] == "bare-host" and data["set"] == "S1" and data["fed_reports"] == 3
    assert data["steps"][1] == {"line": 9, "section": "1. Copies", "commands": "offsite", "skipped": "not here"}
    assert "problems" not in data["steps"][0] and data["steps"][2]["problems"] == ["no"]
    assert RunbookDrillReport.from_json(BARE.to_json()) == BARE
    assert BARE.exit_status() == 1
    assert BARE.render() == (
        "# Bare-host drill 2026-01-02T03:04:05Z: FAIL\n\n"
        "- runbook executed on a fresh Debian server, restoring set S1 from a copy of /repo\n"
        "- total 60.0 s (preparing the server 10.0 s)\n\n"
        "| runbook line | section | seconds | result |\n|---|---|---|---|\n"
        "| 5 | 1. Copies | 1.0 | exit 0 |\n| 9 | 1. Copies |  | skipped: not here |\n"
        "| 12 | 2. Wrong | 0.1 | no |\n\n## Problems\n\n- runbook line 12 (2. Wrong): no\n")


def test_a_runbook_drill_that_never_knew_its_set():
    report = RunbookDrillReport(drill="bare-host", started="2026-01-02T03:04:05Z", repository="/repo",
                                verdict="FAIL", problems=["cannot copy the repository"])
    assert "set" not in json.loads(report.to_json()) and "prepare_seconds" not in report.to_json()
    assert "restoring set ? from a copy of /repo" in report.render()
    assert "(preparing the server ? s)" in report.render()


def test_two_hosts_markdown_names_each_blocks_server():
    steps = [StepRow(line=5, section="1. Copies", commands="ls", exit_code=0, seconds=1.0, host="aggregator"),
             StepRow(line=20, section="12.1", commands="mv", exit_code=0, seconds=2.0, host="database"),
             StepRow(line=9, section="1. Copies", commands="offsite", skipped="not here", host="database")]
    two = RunbookDrillReport(drill="two-hosts", started=BARE.started, set_id="S1", repository="/repo", steps=steps,
                             prepare_seconds=10.0, total_seconds=60.0, verdict="FAIL", problems=BARE.problems)
    assert RunbookDrillReport.from_json(two.to_json()) == two
    assert json.loads(two.to_json())["steps"][0]["host"] == "aggregator"
    assert two.render() == (
        "# Two-host drill 2026-01-02T03:04:05Z: FAIL\n\n"
        "- runbook executed on two fresh Debian servers (the Aggregator's and the database's), starting from set "
        "S1 of a copy of /repo\n"
        "- total 60.0 s (preparing 10.0 s)\n\n"
        "| runbook line | section | server | seconds | result |\n|---|---|---|---|---|\n"
        "| 5 | 1. Copies | aggregator | 1.0 | exit 0 |\n| 20 | 12.1 | database | 2.0 | exit 0 |\n"
        "| 9 | 1. Copies | database |  | skipped: not here |\n\n## Problems\n\n- runbook line 12 (2. Wrong): no\n")


def test_save_keeps_the_newest_and_history_reads_them_newest_first(tmp_path):
    cfg = config.load(overrides={"drill.history_dir": str(tmp_path / "drills"), "drill.keep": 2})
    for day in (1, 2, 3):
        report = dataclasses.replace(RESTORE, started=f"2026-01-0{day}T00:00:00Z")
        path = drill_reports.save(cfg, report)
        assert path == tmp_path / "drills" / f"2026010{day}T000000Z.json"
        assert path.with_suffix(".md").read_text() == report.render()
    assert sorted(p.name for p in (tmp_path / "drills").iterdir()) == [
        "20260102T000000Z.json", "20260102T000000Z.md", "20260103T000000Z.json", "20260103T000000Z.md"]
    (tmp_path / "drills" / "20260104T000000Z.json").write_text("{not json")
    (tmp_path / "drills" / "20260105T000000Z.json").write_text('{"started": "x", "verdict": 1, "problems": []}')
    hist = drill_reports.history(cfg)
    assert [r.started for r in hist.reports] == ["20260105T000000Z", "20260104T000000Z", "2026-01-03T00:00:00Z",
                                                 "2026-01-02T00:00:00Z"]
    assert [r.verdict for r in hist.reports] == ["unreadable", "unreadable", "pass", "pass"]
    assert hist.reports[0].problems == [f"{tmp_path}/drills/20260105T000000Z.json is not a drill report: "
                                        "RestoreDrillReport.verdict: expected str, got int 1"]
    assert hist.reports[1].problems == [f"{tmp_path}/drills/20260104T000000Z.json is not valid JSON"]
    assert hist.reports[2] == report
    assert json.loads((tmp_path / "drills" / "20260103T000000Z.json").read_text())["set"] == RESTORE.set_id
    assert DrillHistory.from_json(hist.to_json()) == hist


def test_the_history_table(tmp_path):
    hist = DrillHistory(folder="/h", reports=[
        RestoreDrillReport.unreadable("20260104T000000Z", "not JSON"), RESTORE,
        RestoreDrillReport(started="2026-01-01T00:00:00Z", requested="latest", repository="/r", restore_seconds=0.0,
                           total_seconds=0.0, verdict="FAIL", problems=["no set"])])
    assert hist.render() == (
        "started               set               verdict     restore_s  rpo_s  MB\n"
        "20260104T000000Z                        unreadable                    0.0\n"
        f"{RESTORE.started}  20260102T000000Z  pass        7.5        11045  2.5\n"
        "2026-01-01T00:00:00Z                    FAIL        0.0               0.0")
    assert json.loads(hist.to_json())["reports"][0] == {"started": "20260104T000000Z", "phases": {},
                                                        "verdict": "unreadable", "problems": ["not JSON"]}


def test_no_drills_yet(tmp_path):
    cfg = config.load(overrides={"drill.history_dir": str(tmp_path / "drills")})
    assert drill_reports.history(cfg).render() == f"no drills yet in {tmp_path / 'drills'}"


def test_save_a_runbook_drill_into_its_folder(tmp_path):
    cfg = config.load(overrides={"drill.history_dir": str(tmp_path / "drills")})
    drill_reports.save(cfg, BARE, tmp_path / "drills" / "bare-host")
    assert (tmp_path / "drills" / "bare-host" / "20260102T030405Z.md").read_text() == BARE.render()
    saved = (tmp_path / "drills" / "bare-host" / "20260102T030405Z.json").read_text()
    assert RunbookDrillReport.from_json(saved) == BARE
    assert drill_reports.history(cfg).reports == []


def test_a_failing_restore_drill_raises_with_its_saved_report(tmp_path):
    """DrillFailed carries the failing report (FailedWithResult), so that the job history records it."""
    import pytest

    from dr.drills import drill

    cfg = config.load(overrides={"drill.history_dir": str(tmp_path / "drills")})
    failing = dataclasses.replace(RESTORE, phases={"start": 1.0}, problems=["12 reports documents for 13 archived"])
    with pytest.raises(drill.DrillFailed, match="drill of set 20260102T000000Z FAILED: 12 reports") as raised:
        drill._conclude(cfg, failing)
    assert raised.value.result is failing and failing.verdict == "FAIL" and failing.exit_status() == 1
    assert drill_reports.history(cfg).reports[0].problems == ["12 reports documents for 13 archived"]
