"""dr/watch/publish.py: after a job, the status model's gauges in aggregator_dr_status.prom, read back with
Prometheus's own parser; a job whose status cannot be published still succeeds."""

import datetime as dt
import os
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from common import config
from dr.jobs import history, monitoring
from dr.watch import publish, rules


def make_cfg(tmp_path, textfile_dir, page_dir=None):
    return config.load(overrides={
        "data_root": str(tmp_path / "data"), "history.dir": str(tmp_path / "history"),
        "drill.history_dir": str(tmp_path / "drills"), "secrets_dir": str(tmp_path / "secrets"),
        "monitoring.textfile_dir": textfile_dir, "monitoring.healthcheck_url": "",
        "status.page_dir": str(tmp_path / "page") if page_dir is None else page_dir})


def samples_of(path):
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(path.read_text()) for s in family.samples}


def test_a_job_publishes_the_status_gauges_with_every_rule(tmp_path):
    cfg = make_cfg(tmp_path, str(tmp_path / "textfiles"))
    waiting = tmp_path / "data" / "raw" / "c" / "old.yaml"
    waiting.parent.mkdir(parents=True)
    waiting.write_text("report")
    os.utime(waiting, (time.time() - 7200,) * 2)
    with publish.job(cfg, "stage-sanitize"):
        pass
    got = samples_of(tmp_path / "textfiles" / monitoring.STATUS_FILE)
    assert got[("aggregator_dr_backlog_inputs", (("state", "raw"),))] == 1
    assert got[("aggregator_dr_oldest_input_age_seconds", (("state", "raw"),))] == pytest.approx(7200, abs=120)
    assert got[("aggregator_dr_recovery_point_objective_seconds", ())] == cfg.status.recovery_point_minutes * 60
    assert abs(got[("aggregator_dr_status_computed_timestamp_seconds", ())] - time.time()) < 120
    firing = {dict(labels)["rule"]: v for (name, labels), v in got.items() if name == "aggregator_dr_rule_firing"}
    assert set(firing) == {r.name for r in rules.RULES}
    assert firing["recovery_point_old"] == 1  # no set was ever taken here
    assert firing["poison"] == 0
    assert ("aggregator_dr_recovery_point_age_seconds", ()) not in got  # no complete set: no age at all
    # the job itself is in the history, before the status was computed from it
    assert [r.job for r in history.read(cfg)] == ["stage-sanitize"]


def test_what_each_collector_holds_until_a_release_is_in_the_gauges(tmp_path):
    """From sync's account in the history: a collector that holds pulled reports, one that holds none, one no
    sync reached (no figures); the rule firing with the default limits for the first, whose oldest is 31 h old."""
    from dr.jobs.pipeline import PipelineRun
    from stages.cli import CollectorPull, Summary

    entry = {"user": "aggregator", "key_file": "/k/c", "host_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5",
             "archive_path": "/archive"}
    cfg = config.derive(make_cfg(tmp_path, str(tmp_path / "textfiles")), {"collectors": [
        entry | {"name": n, "host": f"{n}.example"} for n in ("holds", "empty", "down")]})
    oldest = history.stamp(dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=31))
    pulls = [CollectorPull("holds", True, 3, 3, held=40, held_bytes=123_456_789, oldest_held=oldest),
             CollectorPull("empty", True), CollectorPull("down", False, error="connection refused")]
    publish.as_job(cfg, "stage-sync", lambda: PipelineRun([Summary("sync", collectors=pulls)]))
    got = samples_of(tmp_path / "textfiles" / monitoring.STATUS_FILE)
    held = {(name, dict(labels)["collector"]): v for (name, labels), v in got.items()
            if name.startswith("aggregator_dr_collector_")}
    age = held.pop(("aggregator_dr_collector_oldest_held_age_seconds", "holds"))
    assert age == pytest.approx(31 * 3600, abs=120)
    assert held == {("aggregator_dr_collector_held_reports", "holds"): 40,
                    ("aggregator_dr_collector_held_bytes", "holds"): 123_456_789,
                    ("aggregator_dr_collector_held_reports", "empty"): 0,
                    ("aggregator_dr_collector_held_bytes", "empty"): 0,
                    ("aggregator_dr_collector_oldest_held_age_seconds", "empty"): 0}
    assert got[("aggregator_dr_rule_firing", (("rule", "collector_unreleased"),))] == 1


def test_a_status_that_cannot_be_written_does_not_fail_the_job(tmp_path):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the textfile folder should be")
    cfg = make_cfg(tmp_path, str(blocked))
    with publish.job(cfg, "stage-importer"):
        pass
    assert [r.job for r in history.read(cfg)] == ["stage-importer"]


def test_only_declared_status_metrics_are_written():
    with pytest.raises(ValueError, match="no status metric"):
        monitoring.status_registry([("made_up", {}, 1.0)])


def test_a_job_writes_the_status_page_atomically_and_world_readable(tmp_path):
    cfg = make_cfg(tmp_path, str(tmp_path / "textfiles"))
    old = os.umask(0o077)  # a root job's strict umask: the page is still readable by the web mirror
    try:
        with publish.job(cfg, "snapshot"):
            pass
    finally:
        os.umask(old)
    folder = tmp_path / "page"
    assert [p.name for p in folder.iterdir()] == [publish.PAGE]  # no temporary file left
    page = folder / publish.PAGE
    assert page.stat().st_mode & 0o777 == 0o644 and folder.stat().st_mode & 0o777 == 0o755
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>") and "recovery_point_old" in text  # no set was ever taken here
    assert str(tmp_path) not in text


def test_a_page_that_cannot_be_written_does_not_fail_the_job_nor_the_gauges(tmp_path):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the page folder should be")
    cfg = make_cfg(tmp_path, str(tmp_path / "textfiles"), page_dir=str(blocked))
    with publish.job(cfg, "check"):
        pass
    assert [r.job for r in history.read(cfg)] == ["check"]
    assert (tmp_path / "textfiles" / monitoring.STATUS_FILE).exists()
    assert blocked.read_text() == "a file where the page folder should be"


def test_no_page_when_page_dir_is_empty(tmp_path):
    cfg = make_cfg(tmp_path, "", page_dir="")
    assert publish.write_page(cfg, None, []) is None


def test_as_job_records_the_result_and_publishes_the_page(tmp_path):
    from dr.jobs.pipeline import PipelineRun
    from stages.cli import Summary

    cfg = make_cfg(tmp_path, "")
    failed = PipelineRun([Summary("sanitize", {"sanitized": 2}, exit_code=1)])
    assert publish.as_job(cfg, "stage-sanitize", lambda: failed) is failed
    (run,) = history.read(cfg)
    assert (run.job, run.outcome, run.exit_code, run.result_type) == ("stage-sanitize", "failed", 1, "PipelineRun")
    assert (tmp_path / "page" / publish.PAGE).read_text().startswith("<!DOCTYPE html>")
