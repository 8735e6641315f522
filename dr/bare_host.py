"""The bare-host drill: docs/runbook.md executed, command block by command block, on a simulated freshly
installed Debian server, ending with the restored Aggregator verified there.

The server is a container made from our base image (debootstrap of Debian stable: no Docker, no Python)
with a Docker Engine of its own inside: `--cap-add ALL --cap-drop SYS_RESOURCE`, seccomp, AppArmor and
system paths unconfined, the host's /sys/fs/cgroup mounted and a tmpfs for its /var/lib/docker
(`--privileged` does not work here). It gets what an operator brings to a new server, and nothing else:
- the project checkout (tracked and untracked files, no .venv, no build/) in /opt/aggregator-dr;
- a copy of the secrets directory in /root/recovery/secrets;
- a copy of the restic repository in /var/lib/aggregator-dr/restic (the default `backup.repository`);
- the host's CA bundle (HTTPS to PyPI goes through an intercepting proxy here) through PIP_CERT;
- `http_proxy` pointing at an apt-cacher-ng container (image `aptcache`, its cache in a volume kept between
  drills) so that a warm drill downloads no Debian package twice. The Go binaries come from the copy of the
  repository (the rebuild's artifacts phase), every image is built inside from dockerfiles/.

The commands are the ```sh blocks of the runbook, in order, with their markers (skip, expect, exit; see
runbook). Blocks run in one bash each (`set -eo pipefail`); the working directory carries over from one to the next,
as in the operator's shell. If the runbook and the code disagree, a block fails and the drill names it.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
import time
from pathlib import Path

from common import config, log, runner
from common.config import Config
from common.errors import DrError
from dr import backup, baseimage, docker_api, drill_reports, images, runbook, services
from snapshots.results import SetRow

_log = log.get("bare-host")

ROOT = Path(__file__).resolve().parents[1]
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
APTCACHE_VOLUME = "aggregator-dr-aptcache"  # shared by every instance's drills: it only caches packages
APTCACHE_PORT = 3142
CHECKOUT = "/opt/aggregator-dr"
RECOVERY = "/root/recovery"
REPOSITORY = "/var/lib/aggregator-dr/restic"
CA_INSIDE = "/usr/local/share/bare-host-drill/ca.crt"
CWD_FILE = "/root/.bare-host-drill-cwd"
# Copied into the checkout only when the project is not a git checkout (a tarball).
NOT_COPIED = (".git", ".venv", "build", "__pycache__", ".pytest_cache")


class BareHostFailed(DrError):
    pass


def check_repository(cfg: Config) -> None:
    if not config.is_local_repository(cfg.backup.repository) or not (Path(cfg.backup.repository) / "config").is_file():
        raise BareHostFailed(f"the bare-host drill copies a local repository folder; there is none at "
                             f"{cfg.backup.repository} (backup.repository)")


def copy_repository(cfg: Config, dest: Path) -> None:
    """Copy the repository while holding our host-wide lock of restic runs (snapshots.repolock), so
    that no set is being written into it meanwhile."""
    from snapshots.repolock import repo_lock
    from stages.lock import LockTimeout

    try:
        with repo_lock(cfg):
            shutil.copytree(cfg.backup.repository, dest)
    except LockTimeout as exc:
        raise BareHostFailed(f"cannot copy the repository: {exc}") from None


def latest_complete_set(cfg: Config, copy: Path) -> SetRow:
    """The newest complete set of the copy of cfg's repository."""
    code, rows = backup.run(config.derive(cfg, {"backup.repository": str(copy)}), "list")
    if code != 0:
        raise BareHostFailed(f"cannot list the snapshot sets of the copy of {cfg.backup.repository} (exit {code})")
    complete = [r for r in rows if r.complete]
    if not complete:
        raise BareHostFailed(f"the repository {cfg.backup.repository} has no complete snapshot set to restore")
    return complete[0]


def copy_checkout(dest: Path) -> None:
    """What an operator's clone or tarball holds: tracked and untracked files, not what git ignores."""
    if (ROOT / ".git").exists():
        out = runner.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         capture=True, quiet=True)
        for rel in sorted(set(p for p in out.split("\0") if p)):
            src = ROOT / rel
            if src.is_file():
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest / rel)
    else:
        shutil.copytree(ROOT, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*NOT_COPIED))


def prepare(cfg: Config, work: Path) -> dict[str, dict]:
    """The operator's copies in work/: checkout, secrets, repository. Returns the container's volumes."""
    _log.info("copying the checkout, the secrets and the repository %s into %s", cfg.backup.repository, work)
    copy_checkout(work / "checkout")
    shutil.copytree(cfg.secrets_dir, work / "recovery" / "secrets")
    copy_repository(cfg, work / "repository")
    volumes = {
        str(work / "checkout"): {"bind": CHECKOUT, "mode": "rw"},
        str(work / "recovery"): {"bind": RECOVERY, "mode": "ro"},
        str(work / "repository"): {"bind": REPOSITORY, "mode": "rw"},
        "/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"},
    }
    if HOST_CA.is_file():
        volumes[str(HOST_CA)] = {"bind": CA_INSIDE, "mode": "ro"}
    return volumes


def network_name(cfg: Config) -> str:
    return f"{cfg.instance}-bare-host"


def start_aptcache(cfg: Config, network: str | None = None) -> str:
    """The package cache on the drill's network (network_name unless given); returns its proxy URL (by
    address: the inner Docker's containers do not see the outer Docker's names)."""
    network = network or network_name(cfg)
    images.build_one(cfg, "aptcache", images.git_revision())
    spec = services.ServiceSpec("aptcache", cfg.image("aptcache"), dict(
        volumes={APTCACHE_VOLUME: {"bind": "/var/cache/apt-cacher-ng", "mode": "rw"}},
    ), network=network, named_volumes=(APTCACHE_VOLUME,))
    services.start_one(cfg, spec)
    services.wait_one(cfg, "aptcache", time.monotonic() + cfg.host.health_timeout)
    c = docker_api.client().containers.get(services.container_name(cfg, "aptcache"))
    address = c.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]
    return f"http://{address}:{APTCACHE_PORT}"


def start_server(cfg: Config, volumes: dict, proxy: str, role: str = "bare-host", hostname: str = "fresh-debian",
                 network: str | None = None, address: str | None = None, env: dict | None = None):
    """A simulated fresh Debian server (container <instance>-<role>): our base image, its own Docker Engine
    to come, on network (network_name by default), at address when given (the network's subnet is ours),
    env in its environment besides the package proxy's."""
    name = services.container_name(cfg, role)
    old = docker_api.container_or_none(name)
    if old is not None:
        old.remove(force=True)
    network = network or network_name(cfg)
    env = {"http_proxy": proxy, "no_proxy": "127.0.0.1,localhost", "DEBIAN_FRONTEND": "noninteractive",
           **(env or {})}
    if HOST_CA.is_file():
        env.update(PIP_CERT=CA_INSIDE)
    api = docker_api.client().api
    host_config = api.create_host_config(
        binds=volumes, init=True, network_mode=network, cap_add=["ALL"], cap_drop=["SYS_RESOURCE"],
        security_opt=["seccomp=unconfined", "apparmor=unconfined"],
        tmpfs={"/var/lib/docker": "rw,exec,dev,suid"})
    # `--security-opt systempaths=unconfined` is the docker CLI's name for these two (the SDK lacks it):
    # nothing of /proc and /sys masked or read-only, as the inner dockerd needs.
    host_config.update(MaskedPaths=[], ReadonlyPaths=[])
    networking = None
    if address:
        networking = api.create_networking_config({network: api.create_endpoint_config(ipv4_address=address)})
    created = api.create_container(
        cfg.base_image, ["sleep", "infinity"], name=name, hostname=hostname, environment=env,
        host_config=host_config, networking_config=networking,
        labels={docker_api.INSTANCE_LABEL: cfg.instance, "org.aggregator-dr.service": role})
    api.start(created["Id"])
    return docker_api.client().containers.get(created["Id"])


def execute(container, script: str) -> tuple[int, str]:
    """Run a bash script in the server, its output streamed to the log; returns (exit code, output)."""
    api = docker_api.client().api
    ex = api.exec_create(container.id, ["bash", "-c", script], stdout=True, stderr=True)
    out: list[str] = []
    partial = b""
    for chunk in api.exec_start(ex["Id"], stream=True):
        partial += chunk
        *done, partial = partial.split(b"\n")
        for raw in done:
            line = raw.decode(errors="replace")
            out.append(line)
            _log.info("  | %s", line)
    if partial:
        out.append(partial.decode(errors="replace"))
        _log.info("  | %s", out[-1])
    return api.exec_inspect(ex["Id"])["ExitCode"], "\n".join(out)


def run_step(container, step: runbook.Step) -> tuple[dict, str]:
    """One runbook block, checked against its markers; returns its row for the report and its output."""
    row = {"line": step.line, "section": step.heading, "commands": step.script}
    if step.skip:
        row.update(skipped=step.skip)
        return row, ""
    _log.info("== runbook line %d (%s):\n%s", step.line, step.heading, step.script)
    script = (f"set -eo pipefail\ncd \"$(cat {CWD_FILE} 2>/dev/null || echo /root)\"\n{step.script}\n"
              f"pwd > {CWD_FILE}\n")
    start = time.monotonic()
    code, output = execute(container, script)
    row.update(seconds=round(time.monotonic() - start, 1), exit_code=code)
    problems = []
    if code != step.exit_code:
        problems.append(f"exit code {code}, the runbook expects {step.exit_code}")
    problems += [f"its output lacks {text!r}" for text in step.expect if text not in output]
    if problems:
        row.update(problems=problems, output_tail=output.splitlines()[-15:])
    return row, output


def documents_held(cfg: Config) -> int:
    """The documents of cfg's database, once its services are healthy as users reach them (run inside a
    drill's server)."""
    from common import db

    services.wait_healthy(cfg)
    client = services.db_client(cfg)
    try:
        d = client[cfg.db.database]
        return sum(db.count(d, c) for c in d.list_collection_names())
    finally:
        client.close()


def verify_inside(set_id: str, documents: int) -> int:
    """Run inside the server after the runbook (`./run python -c ...`): the restored Aggregator answers as
    users reach it and holds at least the set's documents (the rebuild's verify phase compared them exactly,
    before the pipeline moved reports that were in flight). Exit code for the drill."""
    have = documents_held(config.load())
    if have < documents:
        print(f"the restored database holds {have} documents; set {set_id} has {documents}")
        return 1
    print(f"verified: db and webmirror answer; {have} documents (set {set_id}: {documents})")
    return 0


def final_check(container, source: SetRow, outputs: str) -> list[str]:
    """The runbook restored the source's latest set, and the Aggregator it left behind verifies."""
    problems = []
    if f"set {source.set_id} (taken" not in outputs:
        problems.append(f"no runbook command said it restored set {source.set_id} (the latest complete one)")
    code, output = execute(container, f"cd {CHECKOUT} && ./run python -c 'import sys; from dr import bare_host; "
                                      f"sys.exit(bare_host.verify_inside(\"{source.set_id}\", {source.documents}))'")
    if code != 0:
        problems.append(f"the restored Aggregator does not verify: {' '.join(output.splitlines()[-3:])}")
    return problems


def stop_server(container) -> None:
    """Stop the inner dockerd first (it stops its containers and cleans up), then remove the server."""
    try:
        execute(container, "p=$(cat /var/run/docker.pid 2>/dev/null) || exit 0; kill $p; "
                           "for i in $(seq 60); do [ -e /proc/$p ] || exit 0; sleep 1; done")
    except Exception as exc:  # the removal below still has to happen
        _log.warning("could not stop the inner dockerd: %s", exc)
    container.remove(force=True)


def run(cfg: Config, keep: bool = False) -> dict:
    """The whole drill; returns its report (also saved in <drill.history_dir>/bare-host/). Raises
    BareHostFailed after saving a failing report."""
    steps = runbook.parse(runbook.RUNBOOK.read_text())
    report, work = begin(cfg, "bare-host")
    container = None
    t0 = time.monotonic()
    try:
        volumes = prepare(cfg, work)
        # The set the runbook must restore: the newest complete one of the copy it gets.
        source = latest_complete_set(cfg, work / "repository")
        report["set"] = source.set_id
        baseimage.ensure(cfg)
        docker_api.ensure_network(network_name(cfg))
        proxy = start_aptcache(cfg)
        container = start_server(cfg, volumes, proxy)
        report["prepare_seconds"] = round(time.monotonic() - t0, 1)
        outputs = []
        for step in steps:
            row, output = run_step(container, step)
            report["steps"].append(row)
            outputs.append(output)
            if row.get("problems"):
                report["problems"].append(f"runbook line {step.line} ({step.heading}): "
                                          + "; ".join(row["problems"]))
                break
        if not report["problems"]:
            report["problems"] += final_check(container, source, "\n".join(outputs))
    except DrError as exc:
        report["problems"].append(str(exc))
    finally:
        if container is not None and not keep:
            stop_server(container)
        clean_up(cfg, network_name(cfg), work, keep)
    return conclude(cfg, report, t0, "bare-host", drill_reports.bare_host_markdown, BareHostFailed)


def begin(cfg: Config, drill: str) -> tuple[dict, Path]:
    """A runbook drill's empty report and its work folder (under drill.work_dir, or <cache_dir>/drill); the
    repository must be a local folder with a repository in it (it is copied)."""
    check_repository(cfg)
    started = dt.datetime.now(dt.timezone.utc)
    report = {"started": started.strftime("%Y-%m-%dT%H:%M:%SZ"), "set": None,
              "repository": cfg.backup.repository, "steps": [], "problems": []}
    base = Path(cfg.drill.work_dir or cfg.cache_path / "drill")
    base.mkdir(parents=True, exist_ok=True)
    return report, Path(tempfile.mkdtemp(prefix=f"{drill}-", dir=base))


def clean_up(cfg: Config, network: str, work: Path, keep: bool) -> None:
    """After a drill (unless keep): its package cache container, its network and its folder."""
    if keep:
        return
    aptcache = docker_api.container_or_none(services.container_name(cfg, "aptcache"))
    if aptcache is not None:
        aptcache.remove(force=True)
    docker_api.remove_network(network)
    shutil.rmtree(work, ignore_errors=True)


def conclude(cfg: Config, report: dict, t0: float, drill: str, render, error: type[DrError]) -> dict:
    """The report's total and verdict, saved in <drill.history_dir>/<drill>/ (Markdown by render); the report,
    or error raised naming the problems after the report is saved."""
    report["total_seconds"] = round(time.monotonic() - t0, 1)
    report["verdict"] = "pass" if not report["problems"] else "FAIL"
    drill_reports.save(cfg, report, Path(cfg.drill.history_dir) / drill, render)
    if report["verdict"] != "pass":
        raise error(f"{drill} drill FAILED: " + "; ".join(report["problems"]))
    return report
