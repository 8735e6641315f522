"""Scheduled jobs: units that systemd itself accepts (systemd-analyze verify), timers on the configured
periods, crontab lines for hosts without systemd, and nothing enabled when writing into a folder."""

import shutil
import subprocess
from pathlib import Path

from dr import config, schedule

PROJECT = Path(__file__).resolve().parents[2]


def test_units_are_valid_for_systemd_and_run_the_tasks(tmp_path):
    cfg = config.load(overrides={"schedule.snapshot": "daily", "offsite.repository": "rest:http://h:8000/a"})
    result = schedule.install(cfg, PROJECT, Path("/etc/aggregator-dr/config.toml"), tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(f"aggregator-dr-{j}.{k}" for j in ("snapshot", "maintenance", "drill")
                           for k in ("service", "timer"))
    assert result["enabled"] is False
    snap = (tmp_path / "aggregator-dr-snapshot.service").read_text()
    assert f"ExecStart={PROJECT}/run invoke snapshot --config /etc/aggregator-dr/config.toml" in snap
    maint = (tmp_path / "aggregator-dr-maintenance.service").read_text()
    assert [line.split(" ", 3)[2] for line in maint.splitlines() if line.startswith("ExecStart=")] == \
        ["forget", "check", "offsite"]
    assert "--read-data-subset 5%%" in maint  # '%' escaped for systemd
    assert "OnCalendar=*-*-* 03:20:00" in (tmp_path / "aggregator-dr-snapshot.timer").read_text()
    assert "OnCalendar=Sun *-*-* 04:40:00" in (tmp_path / "aggregator-dr-drill.timer").read_text()
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing (the host bootstrap installs systemd)"
    units = sorted(str(p) for p in tmp_path.iterdir())
    proc = subprocess.run([analyze, "verify", "--man=no", *units], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    bad = tmp_path / "aggregator-dr-broken.service"
    bad.write_text("[Service]\nExecStart=relative/run\n")
    assert subprocess.run([analyze, "verify", "--man=no", str(bad)], capture_output=True).returncode != 0


def test_crontab_lines_escape_percent_and_do_not_overlap():
    cfg = config.load()
    lines = schedule.crontab_lines(cfg, PROJECT, None)
    assert lines[0].startswith("#") and len(lines) == 4  # no off-site repository: no offsite step
    snapshot, maintenance, drill = lines[1:]
    assert snapshot.startswith("5 * * * * flock -n /run/lock/aggregator-dr-snapshot.lock ")
    assert "--config" not in snapshot  # no configuration file: the tasks' default applies
    assert "5\\%" in maintenance and "5%" not in maintenance.replace("5\\%", "")
    assert drill.startswith("40 4 * * 0 ")


def test_without_systemd_nothing_is_written():
    if schedule.has_systemd():
        return  # a host running systemd would get the units enabled; covered by the folder test above
    result = schedule.install(config.load(), PROJECT, None)
    assert result == {"systemd": False, "written": [], "crontab": schedule.crontab_lines(config.load(), PROJECT,
                                                                                          None)}
