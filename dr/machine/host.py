"""The host: preflight checks and an idempotent bootstrap (Debian packages, a running Docker daemon).

Used by `invoke rebuild`, `invoke bootstrap` and `.ci/run`. The second run of bootstrap changes nothing
and says so.
"""

from __future__ import annotations

import fcntl
import os
import platform
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from common import log, poll, runner
from common.config import Config
from common.errors import CommandError, CommandNotFound, PreflightError
from common.records import Record

_log = log.get("host")

# What the host itself needs. Components run in our images; the host builds them and drives them.
PACKAGES = (
    "docker.io",        # Docker Engine from Debian (no registry needed)
    "debootstrap",      # the base image
    "rsync",            # stages run on the host in development and tests
    "openssh-client",
    "ca-certificates",
    "curl",             # the runbook checks the web mirror with it
    "git",              # image labels carry the commit
    "openssl",          # `invoke certs`: the private CA and the TLS certificates (dr/services/certs.py)
    "tar",
    "python3-venv",
    "systemd",          # systemd-analyze checks the scheduled units (timers run where systemd is PID 1)
)
# trixie splits the client out of docker.io; bookworm has no such package (its docker.io has the client).
# Each is wanted only when the command it provides is missing.
OPTIONAL_PACKAGES = {"docker-cli": "docker"}
# Debian's chromium and its WebDriver: for `invoke screenshot` (dr/watch/screenshot.py) and the status page's
# browser tests, which ensure them when they run (not installed on every host by bootstrap).
BROWSER_PACKAGES = ("chromium", "chromium-driver")
# Our own apt runs, one at a time on this host (two commands bootstrapping at once, or two test lanes);
# apt's own lock would make the second one fail at once.
APT_LOCK = Path("/run/lock/aggregator-dr-apt.lock")
SUPPORTED_DEBIAN = ("12", "13")
DOCKERD_LOG = Path("/var/log/aggregator-dr/dockerd.log")


@dataclass
class BootstrapReport(Record):
    """What `invoke bootstrap` did: the packages installed now, whether it started dockerd, the packages
    that were there already."""
    installed: list[str] = field(default_factory=list)
    started_dockerd: bool = False
    present: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.installed or self.started_dockerd)

    def summary(self) -> str:
        """One line (rebuild's bootstrap phase says it too)."""
        return self.render()

    def render(self) -> str:
        if not self.changed:
            return f"host bootstrap: nothing to do ({len(self.present)} packages present, dockerd answering)"
        parts = []
        if self.installed:
            parts.append("installed " + " ".join(self.installed))
        if self.started_dockerd:
            parts.append("started dockerd")
        return "host bootstrap: " + "; ".join(parts)


def free_gb(path: Path) -> float:
    p = path
    while not p.exists():
        p = p.parent
    return shutil.disk_usage(p).free / 1e9


def preflight(cfg: Config) -> list[str]:
    """Check root, Debian, free disk. Returns the lines it checked; raises PreflightError on the first failure."""
    checks = []
    if os.geteuid() != 0:
        raise PreflightError("must run as root (it installs packages and drives the Docker daemon)")
    checks.append("running as root")
    try:
        rel = platform.freedesktop_os_release()
    except OSError:  # neither /etc/os-release nor /usr/lib/os-release: certainly not Debian
        rel = {}
    if rel.get("ID") != "debian" or rel.get("VERSION_ID") not in SUPPORTED_DEBIAN:
        raise PreflightError(
            f"this host is {rel.get('PRETTY_NAME', 'not Debian')}; need Debian {' or '.join(SUPPORTED_DEBIAN)}")
    checks.append(f"{rel.get('PRETTY_NAME')}")
    need = cfg.host.min_free_gb
    for p in {cfg.data_root_path, Path("/var/lib/docker"), cfg.cache_path}:
        have = free_gb(p)
        if have < need:
            raise PreflightError(f"only {have:.1f} GB free for {p}; need at least {need} GB (host.min_free_gb)")
        checks.append(f"{have:.0f} GB free for {p}")
    return checks


def _installed(pkg: str) -> bool:
    try:
        out = runner.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture=True, quiet=True, ok_codes=(0, 1))
    except CommandNotFound:
        raise PreflightError("dpkg-query not found: this does not look like a Debian host") from None
    return out.strip().endswith(" installed")


def _available(pkg: str) -> bool:
    out = runner.run(["apt-cache", "show", "--no-all-versions", pkg], capture=True, quiet=True, ok_codes=(0, 100))
    return "Package:" in out


def ensure_packages(names=PACKAGES, optional=OPTIONAL_PACKAGES) -> tuple[list[str], list[str]]:
    """apt-get install what is missing. Returns (installed now, already present)."""
    present = [p for p in names if _installed(p)]
    missing = [p for p in names if p not in present]
    optional_missing = [p for p, command in optional.items() if not shutil.which(command) and not _installed(p)]
    if not missing and not optional_missing:
        return [], present
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    APT_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(APT_LOCK, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        runner.run(["apt-get", "update", "-q"], env=env)
        wanted = missing + [p for p in optional_missing if _available(p)]
        if wanted:
            runner.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *wanted], env=env)
    return wanted, present


def docker_answers(timeout: float = 5.0) -> bool:
    import docker  # host-only dependency

    try:
        c = docker.from_env(timeout=timeout)
        c.ping()
        c.close()
        return True
    except Exception:
        return False


def systemd_running(root: Path = Path("/")) -> bool:
    """systemd is this host's init (as sd_booted(3) tests): /run/systemd/system exists. root: for tests."""
    return (root / "run/systemd/system").is_dir()


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def start_dockerd(timeout: int) -> None:
    """Start the daemon: with systemd through its unit, else as a detached process logging to DOCKERD_LOG."""
    if systemd_running():
        runner.run(["systemctl", "start", "docker"])
        tail_source = "journalctl -u docker"
    else:
        dockerd = runner.which("dockerd", ["/usr/sbin", "/usr/bin"])
        if dockerd is None:
            raise PreflightError("dockerd is not installed (package docker.io)")
        DOCKERD_LOG.parent.mkdir(parents=True, exist_ok=True)
        runner.start_detached([dockerd], DOCKERD_LOG)
        tail_source = str(DOCKERD_LOG)

    def failed(_message: str) -> PreflightError:  # the wording docs/runbook.md quotes
        detail = _log_tail(DOCKERD_LOG) if not systemd_running() else f"(see {tail_source})"
        return PreflightError(f"dockerd did not answer within {timeout}s (host.dockerd_timeout); log tail:\n{detail}")

    poll.until(lambda: docker_answers(timeout=2), "dockerd to answer", timeout, interval=1, error=failed)
    _log.info("dockerd answers")


def bootstrap(cfg: Config) -> BootstrapReport:
    """Idempotent: installs missing packages and starts dockerd only when no daemon answers."""
    report = BootstrapReport()
    if os.geteuid() != 0:
        raise PreflightError("host bootstrap must run as root")
    try:
        report.installed, report.present = ensure_packages()
    except CommandError as exc:
        raise PreflightError(f"could not install host packages: {exc}") from None
    if not docker_answers():
        start_dockerd(cfg.host.dockerd_timeout)
        report.started_dockerd = True
    return report
