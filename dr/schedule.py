"""Scheduled jobs: systemd service and timer units, or the equivalent crontab lines on a host without
systemd. Each job is a oneshot `./run invoke ...` in the project checkout with the configuration file, so a
scheduled run is exactly what an operator would type. Every job writes its metrics and pings through
dr.monitoring (the tasks do it themselves), so the units stay plain.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from dr import log, runner
from dr.config import Config

_log = log.get("schedule")

UNIT_DIR = Path("/etc/systemd/system")
PREFIX = "aggregator-dr"
# systemd OnCalendar value and cron fields for each period; spread over the hour so jobs do not collide.
CALENDAR = {"hourly": "*-*-* *:05:00", "daily": "*-*-* 03:20:00", "weekly": "Sun *-*-* 04:40:00"}
CRON = {"hourly": "5 * * * *", "daily": "20 3 * * *", "weekly": "40 4 * * 0"}


@dataclass
class Job:
    name: str
    period: str
    commands: list[list[str]]  # invoke arguments, run in order; the job fails at the first failing one
    description: str


def jobs(cfg: Config) -> list[Job]:
    maintenance = [["forget"], ["check", "--read-data-subset", cfg.schedule.check_read_data_subset]]
    if cfg.offsite.repository:
        maintenance.append(["offsite"])
    return [
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
        units[f"{PREFIX}-{j.name}.service"] = (
            f"[Unit]\nDescription=Aggregator DR: {j.description}\nAfter=docker.service\nWants=docker.service\n\n"
            f"[Service]\nType=oneshot\nWorkingDirectory={project}\n{execs}\nNice=10\nIOSchedulingClass=idle\n")
        units[f"{PREFIX}-{j.name}.timer"] = (
            f"[Unit]\nDescription=Aggregator DR: {j.description} ({j.period})\n\n"
            f"[Timer]\nOnCalendar={CALENDAR[j.period]}\nPersistent=true\nRandomizedDelaySec=120\n\n"
            f"[Install]\nWantedBy=timers.target\n")
    return units


def crontab_lines(cfg: Config, project: Path, config_file: Path | None) -> list[str]:
    """The same jobs as crontab lines for root; flock keeps a slow run from overlapping the next one."""
    lines = ["# Aggregator DR scheduled jobs (install with `crontab -e` as root); output goes to syslog"]
    for j in jobs(cfg):
        # '%' ends the command in a crontab line unless escaped
        chain = " && ".join(_invoke(project, config_file, a) for a in j.commands).replace("%", "\\%")
        lines.append(f"{CRON[j.period]} flock -n /run/lock/{PREFIX}-{j.name}.lock sh -c "
                     f"{shlex.quote(chain)} 2>&1 | logger -t {PREFIX}-{j.name}")
    return lines


def has_systemd() -> bool:
    return Path("/run/systemd/system").is_dir()


def install(cfg: Config, project: Path, config_file: Path | None, dest: Path | None = None) -> dict:
    """Write the units (into dest, or /etc/systemd/system and enable the timers when systemd runs here);
    without systemd and without dest: nothing is written, the crontab lines are returned to print."""
    if dest is None and not has_systemd():
        return {"systemd": False, "written": [], "crontab": crontab_lines(cfg, project, config_file)}
    target = dest or UNIT_DIR
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in systemd_units(cfg, project, config_file).items():
        (target / name).write_text(text)
        written.append(str(target / name))
    if dest is None:
        runner.run(["systemctl", "daemon-reload"])
        runner.run(["systemctl", "enable", "--now", *[f"{PREFIX}-{j.name}.timer" for j in jobs(cfg)]])
    return {"systemd": has_systemd(), "written": written, "enabled": dest is None,
            "crontab": crontab_lines(cfg, project, config_file)}
