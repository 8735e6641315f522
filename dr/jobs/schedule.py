"""Scheduled jobs: systemd service and timer units, or the equivalent crontab lines on a host without
systemd. Each job is a oneshot `./run invoke ...` in the project checkout with the configuration file, so a
scheduled run is exactly what an operator would type. Every job writes its metrics and pings through
dr.jobs.monitoring (the tasks do it themselves), so the units stay plain.

One run of a job at a time: a timer does not start its oneshot service again while that service is still
running (it stays "activating" until its last ExecStart ends; the elapsed timer is simply skipped), and each
crontab line runs under `flock -n` on the job's own lock file, so a slow run is never overlapped by the next.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from common import log, runner
from common.config import Config, every_minutes
from common.records import Record
from dr.machine import host

_log = log.get("schedule")

UNIT_DIR = Path("/etc/systemd/system")
PREFIX = "aggregator-dr"
# systemd OnCalendar value and cron fields for each period; spread over the hour so jobs do not collide.
CALENDAR = {"hourly": "*-*-* *:05:00", "daily": "*-*-* 03:20:00", "weekly": "Sun *-*-* 04:40:00"}
CRON = {"hourly": "5 * * * *", "daily": "20 3 * * *", "weekly": "40 4 * * 0"}
# "<n>min" periods start at minute 2 (modulo n), so the default 5 minutes stay clear of :05, :20 and :40.
FIRST_MINUTE = 2


@dataclass
class Job:
    name: str
    period: str
    commands: list[list[str]]  # invoke arguments, run in order; the job fails at the first failing one
    description: str
    background: bool = True  # maintenance: nice and idle I/O, so it never slows the Aggregator's own work


def calendar(period: str) -> str:
    """systemd OnCalendar value of a period."""
    n = every_minutes(period)
    return f"*-*-* *:{FIRST_MINUTE % n:02d}/{n}:00" if n else CALENDAR[period]


def cron(period: str) -> str:
    """crontab time fields of a period."""
    n = every_minutes(period)
    return f"{FIRST_MINUTE % n}-59/{n} * * * *" if n else CRON[period]


@dataclass
class ScheduleInstalled(Record):
    """What `install` did: the unit files written, whether systemd runs here and the timers were enabled (and
    which), and the crontab lines of the same jobs (a host without systemd gets only these, to add by hand)."""
    systemd: bool
    written: list[str]
    crontab: list[str]
    enabled: bool = False
    timers: list[str] = field(default_factory=list)

    def render(self) -> str:
        lines = [f"wrote {path}" for path in self.written]
        if self.written and self.enabled:
            lines.append("timers enabled: " + ", ".join(self.timers))
        if not self.systemd:
            lines.append("this host does not run systemd; add these lines to root's crontab (crontab -e):")
            lines += self.crontab
        return "\n".join(lines)


def timer_names(cfg: Config) -> list[str]:
    """The systemd timer of every job."""
    return [f"{PREFIX}-{j.name}.timer" for j in jobs(cfg)]


def jobs(cfg: Config) -> list[Job]:
    maintenance = [["forget"], ["check", "--read-data-subset", cfg.schedule.check_read_data_subset]]
    if cfg.offsite.repository:
        maintenance.append(["offsite"])
    return [
        Job("pipeline", cfg.schedule.pipeline, [["pipeline"]], "run the pipeline (sync, sanitize, import)",
            background=False),
        Job("snapshot", cfg.schedule.snapshot, [["snapshot"]], "take a snapshot set"),
        Job("maintenance", cfg.schedule.maintenance, maintenance,
            "apply retention, verify the repository" + (", copy sets off-site" if cfg.offsite.repository else "")),
        Job("drill", cfg.schedule.drill, [["drill"]], "restore drill of the latest set"),
    ]


def _invoke(project: Path, config_file: Path | None, args: list[str]) -> str:
    config = ["--config", str(config_file)] if config_file else []
    return shlex.join([str(project / "run"), "invoke", args[0], *config, *args[1:]])


def systemd_units(cfg: Config, project: Path, config_file: Path | None) -> dict[str, str]:
    """{file name: content} of one service and one timer per job."""
    units = {}
    for j in jobs(cfg):
        # '%' starts a specifier in unit files ("5%" -> "5%%")
        execs = "\n".join(f"ExecStart={_invoke(project, config_file, a).replace('%', '%%')}" for a in j.commands)
        priority = "Nice=10\nIOSchedulingClass=idle\n" if j.background else ""
        # Type=oneshot: the timer never starts the service again while it runs (see the module's docstring).
        units[f"{PREFIX}-{j.name}.service"] = (
            f"[Unit]\nDescription=Aggregator DR: {j.description}\nAfter=docker.service\nWants=docker.service\n\n"
            f"[Service]\nType=oneshot\nWorkingDirectory={project}\n{execs}\n{priority}")
        # a random delay spreads the hourly and longer jobs; a job every few minutes starts on time
        delay = "" if every_minutes(j.period) else "RandomizedDelaySec=120\n"
        units[f"{PREFIX}-{j.name}.timer"] = (
            f"[Unit]\nDescription=Aggregator DR: {j.description} ({j.period})\n\n"
            f"[Timer]\nOnCalendar={calendar(j.period)}\nPersistent=true\n{delay}\n"
            f"[Install]\nWantedBy=timers.target\n")
    return units


def crontab_lines(cfg: Config, project: Path, config_file: Path | None) -> list[str]:
    """The same jobs as crontab lines for root; flock keeps a slow run from overlapping the next one."""
    lines = ["# Aggregator DR scheduled jobs (install with `crontab -e` as root); output goes to syslog"]
    for j in jobs(cfg):
        # '%' ends the command in a crontab line unless escaped
        chain = " && ".join(_invoke(project, config_file, a) for a in j.commands).replace("%", "\\%")
        lines.append(f"{cron(j.period)} flock -n /run/lock/{PREFIX}-{j.name}.lock sh -c "
                     f"{shlex.quote(chain)} 2>&1 | logger -t {PREFIX}-{j.name}")
    return lines


def install(cfg: Config, project: Path, config_file: Path | None, dest: Path | None = None) -> ScheduleInstalled:
    """Write the units (into dest, or /etc/systemd/system and enable the timers when systemd runs here);
    without systemd and without dest: nothing is written, the crontab lines are returned to print."""
    crontab = crontab_lines(cfg, project, config_file)
    if dest is None and not host.systemd_running():
        return ScheduleInstalled(systemd=False, written=[], crontab=crontab)
    target = dest or UNIT_DIR
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in systemd_units(cfg, project, config_file).items():
        (target / name).write_text(text)
        written.append(str(target / name))
    enabled = dest is None
    timers = timer_names(cfg) if enabled else []
    if enabled:
        runner.run(["systemctl", "daemon-reload"])
        runner.run(["systemctl", "enable", "--now", *timers])
    return ScheduleInstalled(systemd=host.systemd_running(), written=written, crontab=crontab, enabled=enabled,
                             timers=timers)
