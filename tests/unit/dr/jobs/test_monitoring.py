"""Every job's run in the job history, and the scheduled jobs' metrics (Prometheus textfile) and healthcheck
pings, against real files in a temporary folder and a real HTTP server on loopback."""

import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

from common import config
from common.errors import DrError
from dr.drills import bare_host
from dr.drills.drill_reports import RestoreDrillReport, RunbookDrillReport
from dr.jobs import history, monitoring
from dr.jobs.pipeline import PipelineRun
from dr.machine import configfile
from stages.cli import Summary
from stages.layout import DataRoot


def metric(text, name, job):
    for line in text.splitlines():
        if line.startswith(f'aggregator_dr_{name}{{dr_job="{job}"}} '):
            return float(line.split()[-1])
    return None


def settings(tmp_path, **more):
    """Metrics in tmp_path, the job history in tmp_path/history: never the host's."""
    return config.load(overrides={"monitoring.textfile_dir": str(tmp_path), "history.dir": str(tmp_path / "history"),
                                  **more})


def test_success_then_failure_keeps_the_last_success_time(tmp_path, pings):
    url, seen = pings
    cfg = settings(tmp_path, **{"monitoring.healthcheck_url": url + "/{job}"})
    with monitoring.job(cfg, "snapshot") as run:
        run.metrics["snapshot_paused_seconds"] = 2.25
    text = (tmp_path / "aggregator_dr_snapshot.prom").read_text()
    assert metric(text, "last_run_success", "snapshot") == 1
    assert metric(text, "snapshot_paused_seconds", "snapshot") == 2.25
    first_success = metric(text, "last_success_timestamp_seconds", "snapshot")
    assert first_success > 1.7e9
    assert "# TYPE aggregator_dr_last_run_duration_seconds gauge" in text

    with pytest.raises(RuntimeError):
        with monitoring.job(cfg, "snapshot"):
            raise RuntimeError("the dump failed")
    text = (tmp_path / "aggregator_dr_snapshot.prom").read_text()
    assert metric(text, "last_run_success", "snapshot") == 0
    assert metric(text, "last_success_timestamp_seconds", "snapshot") == first_success
    assert seen == ["/snapshot/start", "/snapshot", "/snapshot/start", "/snapshot/fail"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["aggregator_dr_snapshot.prom", "history"]  # no temporaries


def test_the_gauges_name_their_job_in_dr_job_never_in_job(tmp_path):
    """`job` is Prometheus's own target label: a scrape with the default settings would rename ours."""
    with monitoring.job(settings(tmp_path), "check") as run:
        run.metrics["check_verified_sets"] = 3
    text = (tmp_path / "aggregator_dr_check.prom").read_text()
    samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
    assert len(samples) == 5 and all(s.labels == {"dr_job": "check"} for s in samples), samples
    assert "job=" not in text.replace("dr_job=", "")


# What the version before dr_job wrote: the same gauges, labelled job="snapshot".
OLD_SNAPSHOT_PROM = """\
# HELP aggregator_dr_last_run_timestamp_seconds when the job last ran (start, unix time)
# TYPE aggregator_dr_last_run_timestamp_seconds gauge
aggregator_dr_last_run_timestamp_seconds{job="snapshot"} 1.75e+09
# HELP aggregator_dr_last_run_success 1 if the job's last run succeeded, else 0
# TYPE aggregator_dr_last_run_success gauge
aggregator_dr_last_run_success{job="snapshot"} 1.0
# HELP aggregator_dr_last_success_timestamp_seconds when the job last succeeded (end, unix time)
# TYPE aggregator_dr_last_success_timestamp_seconds gauge
aggregator_dr_last_success_timestamp_seconds{job="snapshot"} 1.750000042e+09
"""


def test_the_last_success_written_with_the_old_job_label_survives_the_upgrade(tmp_path):
    """A metrics file written before the label was dr_job still gives its last success time: a first failed
    run after the upgrade keeps it, now labelled dr_job."""
    (tmp_path / "aggregator_dr_snapshot.prom").write_text(OLD_SNAPSHOT_PROM)
    assert monitoring._last_success(tmp_path / "aggregator_dr_snapshot.prom", "snapshot") == 1750000042.0
    assert monitoring._last_success(tmp_path / "aggregator_dr_snapshot.prom", "drill") is None  # another job's
    with pytest.raises(RuntimeError):
        with monitoring.job(settings(tmp_path), "snapshot"):
            raise RuntimeError("the dump failed")
    text = (tmp_path / "aggregator_dr_snapshot.prom").read_text()
    assert metric(text, "last_run_success", "snapshot") == 0
    assert metric(text, "last_success_timestamp_seconds", "snapshot") == 1750000042.0
    assert 'job="snapshot"' not in text.replace('dr_job="snapshot"', "")


def test_an_unreachable_healthcheck_never_fails_the_job(tmp_path, caplog):
    cfg = settings(tmp_path, **{"monitoring.healthcheck_url": "http://127.0.0.1:9/nobody-listens"})
    with monitoring.job(cfg, "check"):
        pass
    assert metric((tmp_path / "aggregator_dr_check.prom").read_text(), "last_run_success", "check") == 1
    assert "did not arrive" in caplog.text


def test_no_textfile_dir_means_no_metrics(tmp_path):
    cfg = config.load(overrides={"monitoring.textfile_dir": "", "history.dir": str(tmp_path / "history")})
    with monitoring.job(cfg, "forget"):
        pass
    assert monitoring.write_metrics(cfg, monitoring.Run("forget"), True, 0.0, 1.0) is None


# A pipeline run: stage summaries as the stages print them (`--json`), read back as the host does; "failed"
# is optional.
SUMMARIES = PipelineRun([Summary.from_dict(s) for s in [
    {"stage": "sync", "outcomes": {"pulled": 3, "duplicate": 1}, "errors": [], "exit_code": 0},
    {"stage": "sanitize", "outcomes": {"sanitized": 2, "quarantined:yaml_error": 1}, "errors": [], "exit_code": 0},
    {"stage": "importer", "outcomes": {"imported": 1, "quarantined:poison": 1, "failed": 1}, "errors": [],
     "failed": [{"input": "/srv/data/staging/a.yaml", "reason": "db_write", "error": "short write"}],
     "exit_code": 1},
]])


def test_pipeline_gauges_from_stage_summaries(tmp_path):
    assert monitoring.pipeline_metrics(SUMMARIES) == {
        "pipeline_reports_pulled": 3, "pipeline_reports_sanitized": 2, "pipeline_reports_imported": 1,
        "pipeline_quarantined": 2, "pipeline_poison": 1, "pipeline_failed_inputs": 1, "pipeline_errors": 0}
    stopped = PipelineRun([Summary.from_dict({"stage": "sanitize", "outcomes": {},
                                              "errors": ["disk full", "lock timeout"], "exit_code": 1})])
    assert monitoring.pipeline_metrics(stopped)["pipeline_errors"] == 2
    assert monitoring.pipeline_metrics(stopped)["pipeline_failed_inputs"] == 0  # no "failed" list: none
    assert set(monitoring.pipeline_metrics(PipelineRun()).values()) == {0}

    cfg = settings(tmp_path)
    with monitoring.job(cfg, "pipeline") as run:
        run.metrics.update(monitoring.pipeline_metrics(SUMMARIES))
    text = (tmp_path / "aggregator_dr_pipeline.prom").read_text()
    assert metric(text, "pipeline_poison", "pipeline") == 1
    assert metric(text, "pipeline_reports_imported", "pipeline") == 1
    assert metric(text, "last_run_success", "pipeline") == 1


def test_the_pipeline_task_is_a_monitored_job(tmp_path, pings):
    """`invoke pipeline` runs as the job "pipeline": a run that cannot start (its images are missing) is a
    failed run in its metrics and pings, with one clear line and no traceback; a --stage run is not the
    scheduled job and leaves no metrics and sends no pings. Both are in the job history."""
    import subprocess
    import sys
    from pathlib import Path

    url, seen = pings
    cfg_file = tmp_path / "config.toml"
    cfg_file.write_text(configfile.to_toml(config.load(overrides={
        "monitoring.textfile_dir": str(tmp_path / "metrics"), "monitoring.healthcheck_url": url + "/{job}",
        "images.prefix": "aggregator-dr-no-such-images", "data_root": str(tmp_path / "data"),
        "history.dir": str(tmp_path / "history")}).as_dict()))

    def invoke(*args):
        return subprocess.run([sys.executable, "-m", "invoke", "pipeline", "--config", str(cfg_file), *args],
                              capture_output=True, text=True, cwd=Path(__file__).resolve().parents[4])

    out = invoke()
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert re.search(r"^error: (image aggregator-dr-no-such-images/sanitizer:latest is missing|the Docker daemon "
                     r"does not answer)", out.stderr, re.M), out.stderr  # unit tests may run without Docker
    text = (tmp_path / "metrics" / "aggregator_dr_pipeline.prom").read_text()
    assert metric(text, "last_run_success", "pipeline") == 0
    assert seen == ["/pipeline/start", "/pipeline/fail"]

    (tmp_path / "metrics" / "aggregator_dr_pipeline.prom").unlink()
    out = invoke("--stage", "sanitize")
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert not (tmp_path / "metrics" / "aggregator_dr_pipeline.prom").exists()
    assert seen == ["/pipeline/start", "/pipeline/fail"]
    runs = history.read(config.load(cfg_file))
    assert [(r.job, r.outcome) for r in runs] == [("pipeline", "error"), ("stage-sanitize", "error")]
    assert f"error: {runs[1].error}" in out.stderr.splitlines()


# A passing restore drill's report, as dr/drills/drill.py returns it.
DRILL = RestoreDrillReport(started="2026-01-02T03:04:05Z", set_id="S", set_started="2026-01-02T03:03:05Z",
                           rpo_seconds=60, bytes_restored=123, restore_seconds=3.0, total_seconds=9.0,
                           verdict="pass", problems=[])


def test_every_job_gauge_is_in_the_schema_with_its_help(tmp_path):
    from types import SimpleNamespace as NS

    made = {
        "snapshot": monitoring.snapshot_metrics(NS(paused_seconds=1.5, bytes_added=10, reports=3, bytes=99,
                                                   documents=7)),
        "forget": monitoring.forget_metrics(NS(forget=["a", "b"])),
        "check": monitoring.check_metrics(NS(failed_sets=["s"], verified=2, restic_check=NS(ok=True),
                                             artifacts=NS(failed=False))),
        "offsite": monitoring.offsite_metrics(NS(copied=["s"], offsite_complete_sets=4)),
        "drill": monitoring.drill_metrics(DRILL),
    }
    assert made["snapshot"]["snapshot_set_complete"] == 1 and made["forget"] == {"forget_sets_removed": 2}
    assert made["check"] == {"check_failed_sets": 1, "check_verified_sets": 2, "check_restic_ok": 1,
                             "check_artifacts_ok": 1}
    for job, values in made.items():
        assert set(values) == set(monitoring.JOB_METRICS[job]), job
    assert set(monitoring.JOB_GAUGES) == set(monitoring.JOB_METRICS)  # every job records its gauges
    cfg = settings(tmp_path)
    with monitoring.job(cfg, "drill") as run:
        run.record(DRILL)
    text = (tmp_path / "aggregator_dr_drill.prom").read_text()
    assert "# HELP aggregator_dr_drill_rpo_seconds age of the drilled set" in text
    assert metric(text, "drill_bytes_restored", "drill") == 123 and metric(text, "drill_pass", "drill") == 1


def test_a_failed_snapshot_or_drill_says_so_in_its_gauge(tmp_path):
    cfg = settings(tmp_path)
    for name, gauge in (("snapshot", "snapshot_set_complete"), ("drill", "drill_pass")):
        with pytest.raises(RuntimeError):
            with monitoring.job(cfg, name):
                raise RuntimeError("failed")
        text = (tmp_path / f"aggregator_dr_{name}.prom").read_text()
        assert metric(text, gauge, name) == 0 and metric(text, "last_run_success", name) == 0
        assert metric(text, "last_success_timestamp_seconds", name) is None  # it never succeeded


def pipeline_run(exit_code: int) -> PipelineRun:
    return PipelineRun([Summary(stage="sanitize", outcomes={"sanitized": 2}, exit_code=exit_code)])


def test_every_job_has_its_run_in_the_history_and_only_the_scheduled_ones_metrics_and_pings(tmp_path, pings):
    url, seen = pings
    cfg = settings(tmp_path, **{"monitoring.healthcheck_url": url + "/{job}", "data_root": str(tmp_path)})
    with monitoring.job(cfg, "pipeline") as run:
        run.record(SUMMARIES)  # its importer failed: a failed run
    assert metric((tmp_path / "aggregator_dr_pipeline.prom").read_text(), "last_run_success", "pipeline") == 0
    assert seen == ["/pipeline/start", "/pipeline/fail"]
    with monitoring.job(cfg, "stage-sanitize") as run:  # no gauges of its own: record() keeps its result
        run.record(pipeline_run(0))
    assert sorted(p.name for p in tmp_path.glob("*.prom")) == ["aggregator_dr_pipeline.prom"]
    assert seen == ["/pipeline/start", "/pipeline/fail"]
    assert monitoring.SCHEDULED == set(monitoring.JOB_GAUGES)  # the scheduled jobs are those with gauges

    scheduled, alone = history.read(cfg)
    assert (scheduled.job, scheduled.outcome, scheduled.exit_code) == ("pipeline", "failed", 1)
    assert PipelineRun.from_dict(scheduled.result) == SUMMARIES and scheduled.result_type == "PipelineRun"
    assert (alone.job, alone.outcome, alone.exit_code, alone.error) == ("stage-sanitize", "ok", 0, None)
    assert alone.data_free_bytes > 0 and alone.seconds >= 0


def test_each_run_records_the_inputs_waiting_at_its_end_and_a_count_that_fails_fails_no_job(tmp_path):
    dr = DataRoot(tmp_path / "data").ensure()
    for path in ("raw/c1/a.yaml", "raw/c1/b.yaml.gz", "raw/.incoming/c1/c.yaml", "staging/s.yaml", "reports/r.yaml",
                 "reports/r.jsonl", "archive/2026-12-07/IT/done.yaml"):  # sync's partial file, a report's pair, done
        (dr.root / path).parent.mkdir(parents=True, exist_ok=True)
        (dr.root / path).write_text("x")
    cfg = settings(tmp_path, data_root=str(dr.root))
    with monitoring.job(cfg, "stage-sanitize") as run:
        run.record(pipeline_run(0))
    for root in (tmp_path / "none", tmp_path / ("x" * 300)):  # no data root; one that cannot be read (too long)
        with monitoring.job(settings(tmp_path, data_root=str(root)), "stage-sanitize") as run:
            run.record(pipeline_run(0))
    counted, *uncounted = history.read(cfg)
    assert counted.backlog == {"raw": 2, "staging": 1, "reports": 1}
    assert [(r.outcome, r.backlog) for r in uncounted] == [("ok", None), ("ok", None)]


def test_a_job_that_raises_is_an_error_run_and_its_error_comes_through(tmp_path):
    cfg = settings(tmp_path, data_root=str(tmp_path / "none"))
    with pytest.raises(DrError, match="no disk for the images"):
        with monitoring.job(cfg, "rebuild"):
            raise DrError("no disk for the images")
    with pytest.raises(ZeroDivisionError):
        with monitoring.job(cfg, "rotate-secrets") as run:
            run.record(pipeline_run(0))  # a result recorded, then an error: the error is the outcome
            1 / 0
    with monitoring.job(cfg, "catch-up"):
        pass  # a body that records no result is an error too
    rebuild, rotation, catch_up = history.read(cfg)
    assert (rebuild.job, rebuild.outcome, rebuild.exit_code, rebuild.result) == ("rebuild", "error", 1, None)
    assert rebuild.error == "no disk for the images" and rebuild.data_free_bytes is None  # no data root
    assert (rotation.outcome, rotation.result, rotation.error) == ("error", None,
                                                                   "unexpected ZeroDivisionError: division by zero")
    assert (catch_up.outcome, catch_up.error) == ("error", "the job ended without recording its result")
    assert not list(tmp_path.glob("*.prom"))  # none of them is a scheduled job


def test_a_failing_drill_is_a_failed_run_with_its_report(tmp_path):
    """A drill that fails raises after saving its report, and hands it over (FailedWithResult): the history
    has the report, not only a message."""
    cfg = settings(tmp_path)
    report = RunbookDrillReport(drill="bare-host", started="2026-01-02T03:04:05Z", repository="/r", verdict="FAIL",
                                problems=["runbook line 9 (1. Copies): exit code 1, the runbook expects 0"])
    with pytest.raises(bare_host.BareHostFailed) as raised:
        with monitoring.job(cfg, "drill-bare-host"):
            raise bare_host.BareHostFailed("bare-host drill FAILED: runbook line 9", report)
    assert raised.value.result is report
    with pytest.raises(bare_host.BareHostFailed):
        with monitoring.job(cfg, "drill-bare-host"):
            raise bare_host.BareHostFailed("not enough disk for this drill")  # refused up front: no report
    failed, refused = history.read(cfg)
    assert (failed.outcome, failed.exit_code, failed.result_type) == ("failed", 1, "RunbookDrillReport")
    assert RunbookDrillReport.from_dict(failed.result) == report
    assert failed.error == "bare-host drill FAILED: runbook line 9"
    assert (refused.outcome, refused.result, refused.error) == ("error", None, "not enough disk for this drill")


def test_a_history_that_cannot_be_appended_to_fails_no_job(tmp_path, caplog):
    cfg = settings(tmp_path)
    (tmp_path / "history").write_text("a file where the folder should be")
    with monitoring.job(cfg, "snapshot") as run:
        run.metrics["snapshot_paused_seconds"] = 1.0
    assert metric((tmp_path / "aggregator_dr_snapshot.prom").read_text(), "last_run_success", "snapshot") == 1
    assert f"the run of snapshot is not in the job history ({tmp_path / 'history'})" in caplog.text
    with pytest.raises(DrError, match="the restic repository is locked"):  # the job's own error, not the history's
        with monitoring.job(cfg, "rebuild"):
            raise DrError("the restic repository is locked")
    assert (tmp_path / "history").read_text() == "a file where the folder should be"
