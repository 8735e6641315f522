"""The runbook drills' disk estimate and refusal (dr/drills/bare_host.py), pure: a server's Docker data lives on the
host's disk, sized from the set being drilled. A runbook drill's report: a skipped block's row, its conclusion."""

from __future__ import annotations

import time

import pytest

from common import config
from dr.drills import bare_host, runbook
from dr.drills.bare_host import GB
from dr.drills.drill_reports import RunbookDrillReport, StepRow
from snapshots.results import SetRow

ROW = SetRow(set_id="20261207T000000Z", time="2026-12-07T00:00:00", complete=True, parts=["files", "manifest", "pg"],
             snapshots={}, reports=1000, bytes=int(5.2 * GB), documents=10, db_bytes=int(3 * GB))


def test_the_estimate_grows_with_the_set_and_the_servers():
    one = bare_host.space_needed(ROW, repository_bytes=int(4 * GB), images_bytes=2 * GB, min_free_gb=10)
    assert one.docker == 2 * GB + 5.2 * GB * bare_host.FILES_FACTOR + 3 * GB * bare_host.DB_FACTOR + 10 * GB
    assert one.work == 4 * GB + bare_host.CHECKOUT_ALLOWANCE
    two = bare_host.space_needed(ROW, int(4 * GB), 2 * GB, 10, servers=2, checkouts=4)
    assert two.docker - 10 * GB == 2 * (one.docker - 10 * GB)  # the server's own free space is per server's disk
    assert two.work == 4 * GB + 4 * bare_host.CHECKOUT_ALLOWANCE
    small = SetRow(set_id="x", time="t", complete=True, parts=[], snapshots={})  # sizes unknown: images and margin
    assert bare_host.space_needed(small, 0, 2 * GB, 10).docker == 12 * GB


def test_a_host_short_of_disk_is_refused_with_the_figures_and_what_to_do():
    space = bare_host.space_needed(ROW, int(4 * GB), 2 * GB, 10)
    assert bare_host.refusal(space, "/var/lib/docker", 80 * GB, "/var/cache/aggregator-dr/drill", 80 * GB,
                             same_disk=True) is None
    why = bare_host.refusal(space, "/var/lib/docker", 30 * GB, "/w", 30 * GB, same_disk=True)
    assert why.startswith("not enough disk for this drill (/var/lib/docker: 30.0 GB free, about 40.8 GB needed;")
    assert "files 15.6 GB" in why and "drill.work_dir" in why
    # On two disks each is checked against its own part.
    assert bare_host.refusal(space, "/var/lib/docker", 37 * GB, "/w", 5 * GB, same_disk=False) is None
    why = bare_host.refusal(space, "/var/lib/docker", 37 * GB, "/w", 3 * GB, same_disk=False)
    assert "/w: 3.0 GB free, about 4.2 GB needed" in why and "/var/lib/docker:" not in why.split(";")[0]


def test_a_skipped_block_is_a_row_of_the_report_with_its_server():
    report = RunbookDrillReport(drill="two-hosts", started="2026-01-02T03:04:05Z", repository="/r",
                                          verdict="FAIL")
    step = runbook.Step(line=40, heading="7. Off-site", script="./run invoke restore --offsite", skip="no server")
    assert bare_host.run_block(report, None, step, None, "aggregator") == ""
    assert report.steps == [StepRow(line=40, section="7. Off-site", commands="./run invoke restore --offsite",
                                    skipped="no server", host="aggregator")]
    assert report.problems == []


def test_conclude_saves_the_report_and_fails_on_its_problems(tmp_path):
    cfg = config.load(overrides={"drill.history_dir": str(tmp_path)})
    report = RunbookDrillReport(drill="bare-host", started="2026-01-02T03:04:05Z", repository="/r",
                                          verdict="FAIL")
    assert bare_host.conclude(cfg, report, time.monotonic(), bare_host.BareHostFailed) is report
    assert report.verdict == "pass" and report.exit_status() == 0
    assert (tmp_path / "bare-host" / "20260102T030405Z.md").read_text().startswith("# Bare-host drill 2026-01-02")
    report.problems.append("runbook line 9 (1. Copies): exit code 1, the runbook expects 0")
    failed = r"bare-host drill FAILED: runbook line 9 \(1\. Copies\)"
    with pytest.raises(bare_host.BareHostFailed, match=failed) as raised:
        bare_host.conclude(cfg, report, time.monotonic(), bare_host.BareHostFailed)
    assert raised.value.result is report  # for the job history (dr/jobs/monitoring.py)
    saved = RunbookDrillReport.from_json((tmp_path / "bare-host" / "20260102T030405Z.json").read_text())
    assert saved.verdict == "FAIL" and saved.problems == report.problems
