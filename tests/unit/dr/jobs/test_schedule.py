"""Scheduled jobs: units that systemd itself accepts (systemd-analyze verify), timers on the configured
periods (the pipeline every few minutes), crontab lines for hosts without systemd that never overlap a
running job, and nothing enabled when writing into a folder."""

import re
import shutil
import subprocess
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest

from common import config
from common.errors import ConfigError
from dr.jobs import schedule
from dr.machine import host

PROJECT = Path(__file__).resolve().parents[4]
JOBS = ("pipeline", "snapshot", "maintenance", "drill")


def systemd_analyze():
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing (the host bootstrap installs systemd)"
    return analyze


def next_elapses(spec: str, n: int = 4) -> list[datetime]:
    """The next n times systemd's own calendar parser gives for an OnCalendar value."""
    proc = subprocess.run([systemd_analyze(), "calendar", f"--iterations={n}", spec], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    found = re.findall(r"(?:Next elapse|Iter\. #\d+): \w+ (\S+ \S+)", proc.stdout)
    return [datetime.fromisoformat(t) for t in found]


def test_units_are_valid_for_systemd_and_run_the_tasks(tmp_path):
    cfg = config.load(overrides={"schedule.snapshot": "daily", "offsite.repository": "rest:http://h:8000/a"})
    result = schedule.install(cfg, PROJECT, Path("/etc/aggregator-dr/config.toml"), tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(f"aggregator-dr-{j}.{k}" for j in JOBS for k in ("service", "timer"))
    assert result.enabled is False and result.timers == []
    assert sorted(Path(w).name for w in result.written) == names and result.crontab
    snap = (tmp_path / "aggregator-dr-snapshot.service").read_text()
    assert f"ExecStart={PROJECT}/run invoke snapshot --config /etc/aggregator-dr/config.toml" in snap
    assert "Nice=10" in snap and "IOSchedulingClass=idle" in snap
    maint = (tmp_path / "aggregator-dr-maintenance.service").read_text()
    assert [line.split(" ", 3)[2] for line in maint.splitlines() if line.startswith("ExecStart=")] == \
        ["forget", "check", "offsite"]
    assert "--read-data-subset 5%%" in maint  # '%' escaped for systemd
    assert "OnCalendar=*-*-* 03:20:00" in (tmp_path / "aggregator-dr-snapshot.timer").read_text()
    assert "OnCalendar=Sun *-*-* 04:40:00" in (tmp_path / "aggregator-dr-drill.timer").read_text()

    # The pipeline: a oneshot service (never started again while it runs), the Aggregator's own work at normal
    # priority, every 5 minutes by default, on time.
    pipe = (tmp_path / "aggregator-dr-pipeline.service").read_text()
    assert "Type=oneshot" in pipe
    assert [line for line in pipe.splitlines() if line.startswith("ExecStart=")] == \
        [f"ExecStart={PROJECT}/run invoke pipeline --config /etc/aggregator-dr/config.toml"]
    assert "Nice=" not in pipe and "IOSchedulingClass" not in pipe
    timer = (tmp_path / "aggregator-dr-pipeline.timer").read_text()
    assert "OnCalendar=*-*-* *:02/5:00" in timer and "RandomizedDelaySec" not in timer
    assert "RandomizedDelaySec=120" in (tmp_path / "aggregator-dr-drill.timer").read_text()

    units = sorted(str(p) for p in tmp_path.iterdir())
    proc = subprocess.run([systemd_analyze(), "verify", "--man=no", *units], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    bad = tmp_path / "aggregator-dr-broken.service"
    bad.write_text("[Service]\nExecStart=relative/run\n")
    assert subprocess.run([systemd_analyze(), "verify", "--man=no", str(bad)], capture_output=True).returncode != 0


@pytest.mark.parametrize("period, minute, every, cron", [
    ("5min", 2, 5, "2-59/5 * * * *"),
    ("15min", 2, 15, "2-59/15 * * * *"),
    ("2min", 0, 2, "0-59/2 * * * *"),
    ("1min", 0, 1, "0-59/1 * * * *"),
    ("hourly", 5, 60, "5 * * * *"),
])
def test_periods_as_systemd_calendars_and_cron_fields(period, minute, every, cron):
    assert config.load(overrides={"schedule.pipeline": period}).schedule.pipeline == period
    times = next_elapses(schedule.calendar(period))
    assert len(times) == 4
    assert all(t.minute % every == minute and t.second == 0 for t in times), times
    assert all((b - a).total_seconds() == every * 60 for a, b in zip(times, times[1:])), times
    assert schedule.cron(period) == cron


@pytest.mark.parametrize("key, value", [("pipeline", "7min"), ("pipeline", "5m"), ("pipeline", "0min"),
                                        ("pipeline", "60min"), ("snapshot", "monthly"), ("drill", "")])
def test_a_bad_period_names_its_key(key, value):
    with pytest.raises(ConfigError, match=rf"^schedule\.{key}: must be hourly, daily, weekly or <n>min"):
        config.load(overrides={f"schedule.{key}": value})


def test_crontab_lines_escape_percent_and_do_not_overlap():
    cfg = config.load()
    lines = schedule.crontab_lines(cfg, PROJECT, None)
    assert lines[0].startswith("#") and len(lines) == 5  # no off-site repository: no offsite step
    pipeline, snapshot, maintenance, drill = lines[1:]
    assert pipeline.startswith("2-59/5 * * * * flock -n /run/lock/aggregator-dr-pipeline.lock ")
    assert f"{PROJECT}/run invoke pipeline" in pipeline
    assert snapshot.startswith("5 * * * * flock -n /run/lock/aggregator-dr-snapshot.lock ")
    assert "--config" not in snapshot  # no configuration file: the tasks' default applies
    assert "5\\%" in maintenance and "5%" not in maintenance.replace("5\\%", "")
    assert drill.startswith("40 4 * * 0 ")


def test_a_crontab_line_does_not_start_while_its_job_runs(tmp_path):
    """The pipeline's crontab line, run by sh as cron would, twice at once: the second returns without
    running the job (flock -n) while the first is still running; a third after the first ended runs it."""
    project = tmp_path / "project"
    project.mkdir()
    started, release = tmp_path / "started", tmp_path / "release"
    run = project / "run"
    # The job runs until the test releases it (at most 60 s), so the overlap does not depend on timing.
    run.write_text(f"#!/bin/sh\necho \"$@\" >> {started}\n"
                   f"i=0; while [ ! -e {release} ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done\n")
    run.chmod(0o755)
    line = schedule.crontab_lines(config.load(), project, None)[1]
    command = line.split(" ", 5)[5]  # after the five time fields, as cron hands it to sh

    first = threading.Thread(target=subprocess.run, args=(["sh", "-c", command],))
    first.start()
    deadline = time.monotonic() + 30
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert started.exists(), "the first run did not start its job"
    subprocess.run(["sh", "-c", command], check=True, timeout=30)  # returns although the job still runs
    assert first.is_alive() and started.read_text().splitlines() == ["invoke pipeline"]
    release.touch()
    first.join(timeout=30)
    assert not first.is_alive()
    subprocess.run(["sh", "-c", command], check=True, timeout=30)
    assert started.read_text().splitlines() == ["invoke pipeline", "invoke pipeline"]


def test_without_systemd_nothing_is_written():
    if host.systemd_running():
        return  # a host running systemd would get the units enabled; covered by the folder test above
    result = schedule.install(config.load(), PROJECT, None)
    assert result == schedule.ScheduleInstalled(systemd=False, written=[],
                                                crontab=schedule.crontab_lines(config.load(), PROJECT, None))


def test_what_install_did_reads_back_and_says_what_the_task_said(tmp_path):
    units = [str(tmp_path / "aggregator-dr-pipeline.service"), str(tmp_path / "aggregator-dr-pipeline.timer")]
    timers = schedule.timer_names(config.load())
    assert timers == [f"aggregator-dr-{j}.timer" for j in JOBS]
    enabled = schedule.ScheduleInstalled(systemd=True, written=units, crontab=["# x"], enabled=True, timers=timers)
    assert schedule.ScheduleInstalled.from_json(enabled.to_json()) == enabled
    assert enabled.render().splitlines() == [f"wrote {units[0]}", f"wrote {units[1]}", "timers enabled: "
                                             + ", ".join(timers)]
    into_folder = schedule.ScheduleInstalled(systemd=True, written=units, crontab=["# x"])
    assert into_folder.render().splitlines() == [f"wrote {units[0]}", f"wrote {units[1]}"]
    lines = schedule.crontab_lines(config.load(), PROJECT, None)
    no_systemd = schedule.ScheduleInstalled(systemd=False, written=[], crontab=lines)
    assert set(no_systemd.to_dict()) == {"systemd", "written", "crontab", "enabled", "timers"}
    assert schedule.ScheduleInstalled.from_dict(no_systemd.to_dict()) == no_systemd
    assert no_systemd.render().splitlines() == [
        "this host does not run systemd; add these lines to root's crontab (crontab -e):", *lines]
