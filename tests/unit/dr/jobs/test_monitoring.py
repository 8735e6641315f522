"""Job metrics (Prometheus textfile) and healthcheck pings, against a real HTTP server on loopback."""

import re

import pytest

from common import config
from dr.drills.drill_reports import RestoreDrillReport
from dr.jobs import monitoring
from dr.jobs.pipeline import PipelineRun
from dr.machine import configfile
from stages.cli import Summary


def metric(text, name, job):
    for line in text.splitlines():
        if line.startswith(f'aggregator_dr_{name}{{job="{job}"}} '):
            return float(line.split()[-1])
    return None


def test_success_then_failure_keeps_the_last_success_time(tmp_path, pings):
    url, seen = pings
    cfg = config.load(overrides={"monitoring.textfile_dir": str(tmp_path), "monitoring.healthcheck_url": url + "/{job}"})
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
    assert [p.name for p in tmp_path.iterdir()] == ["aggregator_dr_snapshot.prom"]  # no temporaries left


def test_an_unreachable_healthcheck_never_fails_the_job(tmp_path, caplog):
    cfg = config.load(overrides={"monitoring.textfile_dir": str(tmp_path),
                                 "monitoring.healthcheck_url": "http://127.0.0.1:9/nobody-listens"})
    with monitoring.job(cfg, "check"):
        pass
    assert metric((tmp_path / "aggregator_dr_check.prom").read_text(), "last_run_success", "check") == 1
    assert "did not arrive" in caplog.text


def test_no_textfile_dir_means_no_metrics(tmp_path):
    cfg = config.load(overrides={"monitoring.textfile_dir": ""})
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

    cfg = config.load(overrides={"monitoring.textfile_dir": str(tmp_path)})
    with monitoring.job(cfg, "pipeline") as run:
        run.metrics.update(monitoring.pipeline_metrics(SUMMARIES))
    text = (tmp_path / "aggregator_dr_pipeline.prom").read_text()
    assert metric(text, "pipeline_poison", "pipeline") == 1
    assert metric(text, "pipeline_reports_imported", "pipeline") == 1
    assert metric(text, "last_run_success", "pipeline") == 1


def test_the_pipeline_task_is_a_monitored_job(tmp_path, pings):
    """`invoke pipeline` runs as the job "pipeline": a run that cannot start (its images are missing) is a
    failed run in its metrics and pings, with one clear line and no traceback; a --stage run is not the
    scheduled job and leaves no metrics and sends no pings."""
    import subprocess
    import sys
    from pathlib import Path

    url, seen = pings
    cfg_file = tmp_path / "config.toml"
    cfg_file.write_text(configfile.to_toml(config.load(overrides={
        "monitoring.textfile_dir": str(tmp_path / "metrics"), "monitoring.healthcheck_url": url + "/{job}",
        "images.prefix": "aggregator-dr-no-such-images", "data_root": str(tmp_path / "data")}).as_dict()))

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
    cfg = config.load(overrides={"monitoring.textfile_dir": str(tmp_path)})
    with monitoring.job(cfg, "drill") as run:
        run.record(DRILL)
    text = (tmp_path / "aggregator_dr_drill.prom").read_text()
    assert "# HELP aggregator_dr_drill_rpo_seconds age of the drilled set" in text
    assert metric(text, "drill_bytes_restored", "drill") == 123 and metric(text, "drill_pass", "drill") == 1


def test_a_failed_snapshot_or_drill_says_so_in_its_gauge(tmp_path):
    cfg = config.load(overrides={"monitoring.textfile_dir": str(tmp_path)})
    for name, gauge in (("snapshot", "snapshot_set_complete"), ("drill", "drill_pass")):
        with pytest.raises(RuntimeError):
            with monitoring.job(cfg, name):
                raise RuntimeError("failed")
        text = (tmp_path / f"aggregator_dr_{name}.prom").read_text()
        assert metric(text, gauge, name) == 0 and metric(text, "last_run_success", name) == 0
        assert metric(text, "last_success_timestamp_seconds", name) is None  # it never succeeded
