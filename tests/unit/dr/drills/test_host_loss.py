"""The host-loss drill's pure parts (dr/drills/host_loss.py): the moments each round aims at, the tally of what
the archive and the database hold against what the collectors were given, the runbook's section, the report."""

import collections

import pytest

from dr.drills import drill_reports, host_loss, runbook
from dr.drills.drill_reports import HostLossReport, LossRound, StepRow
from stages.layout import DataRoot


def test_every_moment_is_taken_once_before_any_twice_in_an_order_the_seed_gives():
    n = len(host_loss.MOMENTS)
    once = host_loss.plan(7, n)
    assert sorted(once) == sorted(host_loss.MOMENTS)
    assert host_loss.plan(7, 20) == host_loss.plan(7, 20) and host_loss.plan(7, 20)[:n] == once
    assert sorted(host_loss.plan(7, 2 * n)[n:]) == sorted(host_loss.MOMENTS)
    assert len({tuple(host_loss.plan(seed, n)) for seed in range(10)}) > 1
    assert len(host_loss.plan(1, 3)) == 3


def test_the_moments_name_steps_the_flow_has():
    from common import config
    from dr.drills import loss_flow

    cfg = config.load(overrides={"collectors": [{"name": "a", "host": "h", "user": "u", "key_file": "/k",
                                                 "host_key": "ssh-ed25519 AAAA", "archive_path": "/a"}]})
    steps = [name for name, _ in loss_flow.steps(cfg)]
    assert steps == ["sync", "sanitize", "importer", "take", "copy", "release"]
    assert {"mid-pull", "after-pull", "mid-import", "after-set", "after-copy", "mid-release"} <= set(host_loss.MOMENTS)
    assert {step for step, _ in host_loss.MOMENTS.values()} <= set(steps)


def test_the_tally_counts_the_lost_the_doubled_and_the_strangers():
    written = {"a", "b", "c", "d"}
    assert host_loss.tally(written, collections.Counter(["a", "b", "c", "d"]), "archive") == (0, 0, [])
    lost, doubled, problems = host_loss.tally(written, collections.Counter(["a", "a", "b", "x"]), "database")
    assert (lost, doubled) == (2, 1)
    assert problems == ["2 reports missing from the database, e.g. ['c', 'd']",
                        "1 reports more than once in the database, e.g. ['a']",
                        "1 reports in the database that no collector was given, e.g. ['x']"]


def test_report_ids_are_read_from_the_archived_reports_headers(tmp_path):
    dr = DataRoot(tmp_path)
    day = dr.state("archive") / "2014-05-13" / "ZZ"
    day.mkdir(parents=True)
    (day / "one.yaml").write_text("---\nreport_id: r1\ntest_name: t\n...\n---\ninput: x\n...\n")
    (day / "two.yaml").write_text("---\nreport_id: r1\n...\n")
    (day / ".hidden.yaml").write_text("---\nreport_id: r9\n...\n")
    (day / "one.jsonl").write_text("{\"report_id\": \"r1\"}\n")
    assert host_loss.archived_ids(dr) == collections.Counter({"r1": 2})


def test_the_runbook_has_the_three_blocks_in_order_and_a_wrong_order_is_refused():
    steps = host_loss.section(runbook.RUNBOOK.read_text())
    assert list(steps) == list(runbook.LOSS_RUNS)
    assert "rebuild --offsite" in steps["rebuild"].script and "invoke pipeline" in steps["pipeline"].script
    swapped = ("<!-- host-loss drill: run: pipeline -->\n```sh\na\n```\n<!-- host-loss drill: run: rebuild -->\n"
               "```sh\nb\n```\n<!-- host-loss drill: run: release -->\n```sh\nc\n```\n")
    with pytest.raises(runbook.RunbookError, match="not \\['rebuild', 'pipeline', 'release'\\]"):
        host_loss.section(swapped)


def test_the_report_reads_back_from_its_json_and_renders_its_figures():
    report = HostLossReport(started="2026-12-07T10:00:00Z", seed=5, repository="rest:http://x:8000/a",
                            rounds=[LossRound(round=1, moment="mid-pull", lost_at="during sync, 1.2 s in", written=40,
                                              caught_up=3, rebuild_seconds=80.5, back_seconds=95.1,
                                              left_on_collectors=0,
                                              steps=[StepRow(line=3, section="s", commands="c", exit_code=0)])],
                            reports=40, back_seconds_max=95.1, total_seconds=300.0, verdict=drill_reports.PASS)
    assert HostLossReport.from_json(report.to_json()) == report
    text = report.render()
    assert "Host-loss drill 2026-12-07T10:00:00Z: pass" in text and "lost 0, doubled 0" in text
    assert "| 1 | mid-pull | during sync, 1.2 s in | 40 | 3 | 80.5 | 95.1 | 0 | 0 | 0 |" in text
    assert report.exit_status() == 0 and HostLossReport(started="s", seed=1, verdict="FAIL").exit_status() == 1
