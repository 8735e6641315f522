"""Job metrics (Prometheus textfile) and healthcheck pings, against a real HTTP server on loopback."""

import pytest

from dr import config, monitoring


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
