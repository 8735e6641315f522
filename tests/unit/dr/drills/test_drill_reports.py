"""Drill reports (dr/drills/drill_reports.py): both drills' Markdown, saving with retention, the history."""

import json

from common import config
from dr.drills import drill_reports

RESTORE = {"started": "2026-01-02T03:04:05Z", "verdict": "pass", "requested": "latest", "set": "20260102T000000Z",
           "set_started": "2026-01-02T00:00:00Z", "rpo_seconds": 11045, "repository": "/repo",
           "files_restored": 3, "bytes_restored": 2_500_000, "documents_restored": 42, "restore_seconds": 7.5,
           "total_seconds": 9.0, "phases": {"start": 2.5, "restore": 5.0, "queries": 0.5, "pipeline": 1.0},
           "problems": []}
BARE = {"started": "2026-01-02T03:04:05Z", "verdict": "FAIL", "set": "S1", "repository": "/repo",
        "total_seconds": 60.0, "prepare_seconds": 10.0, "problems": ["runbook line 12 (2. Wrong): no"],
        "steps": [{"line": 5, "section": "1. Copies", "exit_code": 0, "seconds": 1.0},
                  {"line": 9, "section": "1. Copies", "skipped": "not here"},
                  {"line": 12, "section": "2. Wrong", "exit_code": 0, "seconds": 0.1, "problems": ["no"]}]}


def test_restore_markdown():
    assert drill_reports.restore_markdown(RESTORE) == (
        "# Restore drill 2026-01-02T03:04:05Z: pass\n\n"
        "- set: 20260102T000000Z (taken 2026-01-02T00:00:00Z; recovery point 11045 s before the drill)\n"
        "- repository: /repo\n"
        "- restored: 3 files, 2.5 MB, 42 database documents\n"
        "- restore time: 7.5 s; total 9.0 s\n\n"
        "| phase | seconds |\n|---|---|\n| start | 2.5 |\n| restore | 5.0 |\n| queries | 0.5 |\n| pipeline | 1.0 |\n")


def test_a_failed_restore_drill_before_the_restore_still_renders():
    report = {"started": "2026-01-02T03:04:05Z", "verdict": "FAIL", "requested": "latest", "repository": "/r",
              "restore_seconds": 0, "total_seconds": 0, "phases": {}, "problems": ["no set"]}
    md = drill_reports.restore_markdown(report)
    assert "- set: latest (taken ?;" in md and md.endswith("## Problems\n\n- no set\n")


def test_bare_host_markdown():
    assert drill_reports.bare_host_markdown(BARE) == (
        "# Bare-host drill 2026-01-02T03:04:05Z: FAIL\n\n"
        "- runbook executed on a fresh Debian server, restoring set S1 from a copy of /repo\n"
        "- total 60.0 s (preparing the server 10.0 s)\n\n"
        "| runbook line | section | seconds | result |\n|---|---|---|---|\n"
        "| 5 | 1. Copies | 1.0 | exit 0 |\n| 9 | 1. Copies |  | skipped: not here |\n"
        "| 12 | 2. Wrong | 0.1 | no |\n\n## Problems\n\n- runbook line 12 (2. Wrong): no\n")


def test_two_hosts_markdown_names_each_blocks_server():
    two = {**BARE, "steps": [{**BARE["steps"][0], "host": "aggregator"},
                             {"line": 20, "section": "12.1", "host": "database", "exit_code": 0, "seconds": 2.0},
                             {**BARE["steps"][1], "host": "database"}]}
    assert drill_reports.two_hosts_markdown(two) == (
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
        path = drill_reports.save(cfg, {**RESTORE, "started": f"2026-01-0{day}T00:00:00Z"})
        assert path == tmp_path / "drills" / f"2026010{day}T000000Z.json"
        assert path.with_suffix(".md").read_text().startswith(f"# Restore drill 2026-01-0{day}T00:00:00Z")
    assert sorted(p.name for p in (tmp_path / "drills").iterdir()) == [
        "20260102T000000Z.json", "20260102T000000Z.md", "20260103T000000Z.json", "20260103T000000Z.md"]
    (tmp_path / "drills" / "20260104T000000Z.json").write_text("{not json")
    rows = drill_reports.history(cfg)
    assert [r["started"] for r in rows] == ["20260104T000000Z", "2026-01-03T00:00:00Z", "2026-01-02T00:00:00Z"]
    assert rows[0]["verdict"] == "unreadable"
    assert json.loads((tmp_path / "drills" / "20260103T000000Z.json").read_text())["set"] == RESTORE["set"]


def test_save_into_another_folder_with_another_renderer(tmp_path):
    cfg = config.load(overrides={"drill.history_dir": str(tmp_path / "drills")})
    drill_reports.save(cfg, BARE, tmp_path / "drills" / "bare-host", drill_reports.bare_host_markdown)
    assert (tmp_path / "drills" / "bare-host" / "20260102T030405Z.md").read_text().startswith("# Bare-host drill")
    assert drill_reports.history(cfg) == []
    assert drill_reports.history(cfg, tmp_path / "drills" / "bare-host")[0]["verdict"] == "FAIL"
