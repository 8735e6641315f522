"""The bare-host drill: docs/runbook.md executed, command block by command block, on a simulated freshly
installed Debian server, ending with the restored Aggregator verified there.

The server is a container made from our base image (debootstrap of Debian stable: no Docker, no Python)
with a Docker Engine of its own inside: `--cap-add ALL --cap-drop SYS_RESOURCE`, seccomp, AppArmor and
system paths unconfined, the host's /sys/fs/cgroup mounted (`--privileged` does not work here), and its
/var/lib/docker in a Docker volume of its own on the host's disk (an Aggregator of realistic size does not fit
in memory), removed with the server, and by the next drill when a killed one left it. The drill first checks
that the host has the disk space that the set being drilled needs (space_needed), and refuses up front
otherwise. It gets what an operator brings to a new server, and nothing else:
- the project checkout (tracked and untracked files, no .venv, no build/) in /opt/aggregator-dr;
- a copy of the secrets directory in /root/recovery/secrets;
- a copy of the restic repository in /var/lib/aggregator-dr/restic (the default `backup.repository`);
- the host's CA bundle (HTTPS to PyPI goes through an intercepting proxy here) through PIP_CERT;
- `http_proxy` pointing at an apt-cacher-ng container (image `aptcache`, its cache in a volume kept between
  drills) so that a warm drill downloads no Debian package twice. The Go binaries come from the copy of the
  repository (the rebuild's artifacts phase), every image is built inside from dockerfiles/.

The commands are the ```sh blocks of the runbook, in order, with their markers (skip, expect, exit, feed;
see runbook). Before a block marked `feed`, the drill puts reports of its own (dr/drills/feed.py: new to any
repository) into the server's raw/, so that the runbook's pipeline has reports to move whatever the user's
repository holds; its final check finds them in the restored database. Blocks run in one bash each (`set -eo pipefail`); the working directory carries over from one to the next,
as in the operator's shell. If the runbook and the code disagree, a block fails and the drill names it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from common import config, log, runner
from common.config import Config
from common.errors import DrError, FailedWithResult
from dr.drills import drill_reports, feed, runbook
from dr.drills.drill_reports import RunbookDrillReport, StepRow
from dr.engine import docker_api
from dr.jobs import backup
from dr.machine import baseimage, images
from dr.services import stack
from snapshots.results import SetRow

_log = log.get("bare-host")

ROOT = Path(__file__).resolve().parents[2]
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
APTCACHE_VOLUME = "aggregator-dr-aptcache"  # shared by every instance's drills: it only caches packages
APTCACHE_PORT = 3142
CHECKOUT = "/opt/aggregator-dr"
RECOVERY = "/root/recovery"
REPOSITORY = "/var/lib/aggregator-dr/restic"
CA_INSIDE = "/usr/local/share/bare-host-drill/ca.crt"
CWD_FILE = "/root/.bare-host-drill-cwd"
DOCKER_DATA = "/var/lib/docker"  # the server's Docker data: a volume of its own (docker_volume_name)
GB = 1e9
# What one server holds besides its images, as multiples of the set's sizes: the restored data root, a
# restore drill's copy of it (runbook section 7) and room for what the runbook's pipeline and set add; the
# restored database, the drill's copy of it and the physical copy unpacked beside it while it is checked.
FILES_FACTOR = 3
DB_FACTOR = 3
IMAGE_GUESS = 0.6 * GB  # an image of ours this host does not have (yet), as the server will build it
CHECKOUT_ALLOWANCE = 0.2 * GB  # one copy of the checkout
OUTPUT_TAIL = 25  # lines of a block's output kept in its report row
# Copied into the checkout only when the project is not a git checkout (a tarball).
NOT_COPIED = (".git", ".venv", "build", "__pycache__", ".pytest_cache")


class BareHostFailed(FailedWithResult):
    """The bare-host drill failed: `result` is its report (saved), or None when it was refused up front."""


def check_repository(cfg: Config) -> None:
    if not config.is_local_repository(cfg.backup.repository) or not (Path(cfg.backup.repository) / "config").is_file():
        raise BareHostFailed(f"the bare-host drill copies a local repository folder; there is none at "
                             f"{cfg.backup.repository} (backup.repository)")


@dataclass
class Space:
    """Bytes a drill needs, part by part, on the disk that holds Docker's data (its servers) and on the one
    that holds its work folder (the copies)."""
    docker_parts: dict[str, float]
    work_parts: dict[str, float]

    @property
    def docker(self) -> float:
        return sum(self.docker_parts.values())

    @property
    def work(self) -> float:
        return sum(self.work_parts.values())

    @property
    def parts(self) -> dict[str, float]:
        return {**self.docker_parts, **self.work_parts}


def space_needed(row: SetRow, repository_bytes: int, images_bytes: float, min_free_gb: int, servers: int = 1,
                 checkouts: int = 1) -> Space:
    """What a drill of row's set needs (pure): on Docker's disk, servers x (the images it builds, the set's files
    and database by FILES_FACTOR and DB_FACTOR) and the host.min_free_gb that a server's own rebuild wants
    free there; on the work folder's disk, the repository's copy and the checkouts."""
    return Space(
        docker_parts={"images": servers * images_bytes, "files": servers * (row.bytes or 0) * FILES_FACTOR,
                      "database": servers * (row.db_bytes or 0) * DB_FACTOR,
                      "free for the server's own preflight (host.min_free_gb)": min_free_gb * GB},
        work_parts={"the repository's copy": float(repository_bytes), "checkouts": checkouts * CHECKOUT_ALLOWANCE})


def refusal(space: Space, docker_dir: str, docker_free: float, work_dir: str, work_free: float,
            same_disk: bool) -> str | None:
    """Why the host lacks the space (pure), or None: one sentence with the figures and what to do."""
    need = {docker_dir: space.docker + (space.work if same_disk else 0)}
    free = {docker_dir: docker_free}
    if not same_disk:
        need[work_dir], free[work_dir] = space.work, work_free
    short = [p for p in need if free[p] < need[p]]
    if not short:
        return None
    said = "; ".join(f"{p}: {free[p] / GB:.1f} GB free, about {need[p] / GB:.1f} GB needed" for p in short)
    parts = ", ".join(f"{k} {v / GB:.1f} GB" for k, v in space.parts.items() if v)
    return (f"not enough disk for this drill ({said}; {parts}): free space there, or set drill.work_dir to a "
            "folder on a larger disk")


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def images_bytes(cfg: Config) -> float:
    """The sizes of this host's images of ours (what a server builds again), IMAGE_GUESS for one not here."""
    total = 0.0
    for name in (cfg.base_image, *(cfg.image(c) for c in images.COMPONENTS)):
        image = docker_api.image_or_none(name)
        total += image.attrs.get("Size", IMAGE_GUESS) if image is not None else IMAGE_GUESS
    return total


def check_space(cfg: Config, work_base: Path, servers: int, checkouts: int) -> Space:
    """Refuse the drill up front (BareHostFailed) when this host lacks the disk its servers and copies will
    need for the newest complete set of cfg's repository; returns the estimate."""
    space = space_needed(latest_complete_set(cfg), folder_bytes(Path(cfg.backup.repository)), images_bytes(cfg),
                         cfg.host.min_free_gb, servers, checkouts)
    docker_dir = docker_api.client().info().get("DockerRootDir", DOCKER_DATA)
    work_base.mkdir(parents=True, exist_ok=True)
    why = refusal(space, docker_dir, shutil.disk_usage(docker_dir).free, str(work_base),
                  shutil.disk_usage(work_base).free, os.stat(docker_dir).st_dev == os.stat(work_base).st_dev)
    if why:
        raise BareHostFailed(why)
    return space


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


def latest_complete_set(cfg: Config, copy: Path | None = None) -> SetRow:
    """The newest complete set of cfg's repository, or of its copy when given."""
    code, listed = backup.run(config.derive(cfg, {"backup.repository": str(copy)}) if copy else cfg, "list")
    if code != 0:
        raise BareHostFailed(f"cannot list the snapshot sets of {'the copy of ' if copy else ''}"
                             f"{cfg.backup.repository} (exit {code})")
    complete = listed.complete
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
    spec = stack.ServiceSpec("aptcache", cfg.image("aptcache"), dict(
        volumes={APTCACHE_VOLUME: {"bind": "/var/cache/apt-cacher-ng", "mode": "rw"}},
    ), network=network, named_volumes=(APTCACHE_VOLUME,))
    stack.start_one(cfg, spec)
    stack.wait_one(cfg, "aptcache", time.monotonic() + cfg.host.health_timeout)
    c = docker_api.client().containers.get(stack.container_name(cfg, "aptcache"))
    address = c.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]
    return f"http://{address}:{APTCACHE_PORT}"


def docker_volume_name(cfg: Config, role: str) -> str:
    """The volume that holds the Docker data of the server <instance>-<role>."""
    return f"{stack.container_name(cfg, role)}-docker"


def fresh_docker_volume(cfg: Config, role: str) -> str:
    """An empty volume for the server's /var/lib/docker (one a killed drill left goes first); its name."""
    name = docker_volume_name(cfg, role)
    docker_api.remove_volume(name)
    docker_api.client().volumes.create(name, labels={docker_api.INSTANCE_LABEL: cfg.instance,
                                                     "org.aggregator-dr.volume": name})
    return name


def start_server(cfg: Config, volumes: dict, proxy: str, role: str = "bare-host", hostname: str = "fresh-debian",
                 network: str | None = None, address: str | None = None, env: dict | None = None):
    """A simulated fresh Debian server (container <instance>-<role>): our base image, its own Docker Engine
    to come (its data in a fresh volume of its own), on network (network_name by default), at address when
    given (the network's subnet is ours), env in its environment besides the package proxy's."""
    name = stack.container_name(cfg, role)
    old = docker_api.container_or_none(name)
    if old is not None:
        old.remove(force=True)
    volumes = {**volumes, fresh_docker_volume(cfg, role): {"bind": DOCKER_DATA, "mode": "rw"}}
    network = network or network_name(cfg)
    env = {"http_proxy": proxy, "no_proxy": "127.0.0.1,localhost", "DEBIAN_FRONTEND": "noninteractive",
           **(env or {})}
    if HOST_CA.is_file():
        env.update(PIP_CERT=CA_INSIDE)
    api = docker_api.client().api
    host_config = api.create_host_config(
        binds=volumes, init=True, network_mode=network, cap_add=["ALL"], cap_drop=["SYS_RESOURCE"],
        security_opt=["seccomp=unconfined", "apparmor=unconfined"])
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


def run_step(container, step: runbook.Step) -> tuple[StepRow, str]:
    """One runbook block, checked against its markers; returns its row for the report (with the last lines
    of its output) and its output."""
    row = StepRow(line=step.line, section=step.heading, commands=step.script)
    if step.skip:
        row.skipped = step.skip
        return row, ""
    _log.info("== runbook line %d (%s):\n%s", step.line, step.heading, step.script)
    script = (f"set -eo pipefail\ncd \"$(cat {CWD_FILE} 2>/dev/null || echo /root)\"\n{step.script}\n"
              f"pwd > {CWD_FILE}\n")
    start = time.monotonic()
    code, output = execute(container, script)
    row.seconds, row.exit_code = round(time.monotonic() - start, 1), code
    row.output_tail = output.splitlines()[-OUTPUT_TAIL:]
    row.problems = runbook.problems(step, code, output) or None
    return row, output


class Feed:
    """The reports a drill feeds its servers (dr/drills/feed.py): one token per drill, numbered on across feeds."""

    def __init__(self):
        self.token = feed.token()
        self.count = 0

    def put(self, container, count: int) -> None:
        """count more reports into raw/ of the data root the server's configuration names."""
        code, out = execute(container, f"cd {CHECKOUT} && ./run python -c 'from common import config; "
                                       "print(config.load().data_root)'")
        root = out.strip().splitlines()[-1] if code == 0 and out.strip() else ""
        if not root.startswith("/"):
            raise BareHostFailed(f"cannot read the server's data root to feed it reports: {out[-300:]}")
        code, out = execute(container, f"install -d -m 0755 '{root}/raw'")
        if code != 0:
            raise BareHostFailed(f"cannot make {root}/raw on the server: {out[-300:]}")
        container.put_archive(f"{root}/raw", feed.archive(self.token, count, self.count))
        self.count += count
        _log.info("fed %d reports of the drill's own into %s/raw/%s", count, root, feed.COLLECTOR)

    def ids(self) -> list[str]:
        return feed.report_ids(self.token, self.count)


def run_block(report: RunbookDrillReport, container, step: runbook.Step, fed: Feed,
              host: str | None = None) -> str | None:
    """One block of a runbook drill: fed first when marked so, run, its row appended to the report (with
    its server's host when given). Returns its output, "" when skipped, None when it has problems (then
    named in report.problems)."""
    if step.feed and not step.skip:
        fed.put(container, step.feed)
    row, output = run_step(container, step)
    row.host = host
    report.steps.append(row)
    if row.problems:
        where = f"{step.heading}, on {host}" if host is not None else step.heading
        report.problems.append(f"runbook line {step.line} ({where}): " + "; ".join(row.problems))
        return None
    return output


def documents_held(cfg: Config) -> int:
    """The documents of cfg's database (run inside a drill's server), once its services are healthy and the
    database answers as users reach it (FerretDB lists the collections); counted exactly by PostgreSQL, as
    the rebuild's verify counts (FerretDB 1.x would read every document to count: minutes at 2 GB)."""
    stack.wait_healthy(cfg)
    client = stack.db_client(cfg)
    try:
        names = client[cfg.db.database].list_collection_names()
    finally:
        client.close()
    counts = backup.db_counts(cfg)
    return sum(counts.get(name, 0) for name in names)


def fed_missing(cfg: Config, token: str, count: int) -> list[str]:
    """The ids of the drill's fed reports (dr/drills/feed.py) that cfg's database has no report document of."""
    ids = feed.report_ids(token, count)
    client = stack.db_client(cfg)
    try:
        found = {d["report_id"] for d in client[cfg.db.database]["reports"].find(
            {"report_id": {"$in": ids}}, {"report_id": 1, "_id": 0})}
    finally:
        client.close()
    return [i for i in ids if i not in found]


def verify_inside(set_id: str, documents: int, token: str = "", fed: int = 0) -> int:
    """Run inside the server after the runbook (`./run python -c ...`): the restored Aggregator answers as
    users reach it, holds at least the set's documents (the rebuild's verify phase compared them exactly,
    before the pipeline moved reports that were in flight) and every report the drill fed it. Exit code for
    the drill."""
    cfg = config.load()
    have = documents_held(cfg)
    if have < documents:
        print(f"the restored database holds {have} documents; set {set_id} has {documents}")
        return 1
    missing = fed_missing(cfg, token, fed)
    if missing:
        print(f"the database lacks {len(missing)} of the {fed} reports the drill fed: {', '.join(missing[:5])}")
        return 1
    print(f"verified: db and webmirror answer; {have} documents (set {set_id}: {documents}); "
          f"the {fed} reports the drill fed are in the database")
    return 0


def final_check(container, source: SetRow, outputs: str, fed: Feed) -> list[str]:
    """The runbook restored the source's latest set, and the Aggregator it left behind verifies."""
    problems = []
    if f"set {source.set_id} (taken" not in outputs:
        problems.append(f"no runbook command said it restored set {source.set_id} (the latest complete one)")
    code, output = execute(container, f"cd {CHECKOUT} && ./run python -c 'import sys; from dr.drills import bare_host; "
                                      f"sys.exit(bare_host.verify_inside(\"{source.set_id}\", {source.documents}, "
                                      f"\"{fed.token}\", {fed.count}))'")
    if code != 0:
        problems.append(f"the restored Aggregator does not verify: {' '.join(output.splitlines()[-3:])}")
    return problems


def stop_server(container) -> None:
    """Stop the inner dockerd first (it stops its containers and cleans up), then remove the server and the
    volume of its Docker data."""
    try:
        execute(container, "p=$(cat /var/run/docker.pid 2>/dev/null) || exit 0; kill $p; "
                           "for i in $(seq 60); do [ -e /proc/$p ] || exit 0; sleep 1; done")
    except Exception as exc:  # the removal below still has to happen
        _log.warning("could not stop the inner dockerd: %s", exc)
    data = [m["Name"] for m in container.attrs.get("Mounts", [])
            if m.get("Type") == "volume" and m.get("Destination") == DOCKER_DATA]
    container.remove(force=True)
    for name in data:
        docker_api.remove_volume(name)


def run(cfg: Config, keep: bool = False) -> RunbookDrillReport:
    """The whole drill; returns its report (also saved in <drill.history_dir>/bare-host/). Raises
    BareHostFailed after saving a failing report, or up front (no report) when the host lacks the disk."""
    steps = runbook.parse(runbook.RUNBOOK.read_text())
    report = begin(cfg, "bare-host")
    t0 = time.monotonic()
    with work_folder(cfg, "bare-host") as work:
        container = None
        fed = Feed()
        try:
            volumes = prepare(cfg, work)
            # The set the runbook must restore: the newest complete one of the copy it gets.
            source = latest_complete_set(cfg, work / "repository")
            report.set_id = source.set_id
            baseimage.ensure(cfg)
            docker_api.ensure_network(network_name(cfg))
            proxy = start_aptcache(cfg)
            container = start_server(cfg, volumes, proxy)
            report.prepare_seconds = round(time.monotonic() - t0, 1)
            outputs = []
            for step in steps:
                output = run_block(report, container, step, fed)
                if output is None:
                    break
                outputs.append(output)
            if not report.problems:
                report.problems += final_check(container, source, "\n".join(outputs), fed)
        except DrError as exc:
            report.problems.append(str(exc))
        finally:
            if container is not None and not keep:
                stop_server(container)
            clean_up(cfg, network_name(cfg), work, keep)
    report.fed_reports = fed.count
    return conclude(cfg, report, t0, BareHostFailed)


def begin(cfg: Config, drill: str) -> RunbookDrillReport:
    """The empty report of a runbook drill ("bare-host" or "two-hosts"), FAIL until it concludes; the
    repository must be a local folder with a repository in it (it is copied)."""
    check_repository(cfg)
    started = dt.datetime.now(dt.timezone.utc)
    return RunbookDrillReport(drill=drill, started=started.strftime("%Y-%m-%dT%H:%M:%SZ"),
                              repository=cfg.backup.repository, verdict=drill_reports.FAIL)


@contextlib.contextmanager
def work_folder(cfg: Config, drill: str, servers: int = 1, checkouts: int = 1):
    """A new work folder for a runbook drill (under drill.work_dir, or <cache_dir>/drill), while this instance's
    lock for the drill is held: one such drill of an instance at a time (its servers have fixed names). The
    folders an earlier one of them left (killed before its clean-up, or --keep) go first; then the drill is
    refused (BareHostFailed) when the host lacks the disk it needs (check_space), before anything is made."""
    base = Path(cfg.drill.work_dir or cfg.cache_path / "drill")
    base.mkdir(parents=True, exist_ok=True)
    prefix = f"{drill}-{cfg.instance}-"
    with open(base / f".{prefix}lock", "w") as held:
        try:
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BareHostFailed(f"another {drill} drill of instance {cfg.instance} is running") from None
        for old in base.glob(prefix + "*"):
            if old.is_dir():
                _log.warning("removing %s, left by an earlier %s drill", old, drill)
                shutil.rmtree(old, ignore_errors=True)
        check_space(cfg, base, servers, checkouts)
        yield Path(tempfile.mkdtemp(prefix=prefix, dir=base))


def clean_up(cfg: Config, network: str, work: Path, keep: bool) -> None:
    """After a drill (unless keep): its package cache container, its network and its folder."""
    if keep:
        return
    aptcache = docker_api.container_or_none(stack.container_name(cfg, "aptcache"))
    if aptcache is not None:
        aptcache.remove(force=True)
    docker_api.remove_network(network)
    shutil.rmtree(work, ignore_errors=True)


def conclude(cfg: Config, report: RunbookDrillReport, t0: float,
             error: type[FailedWithResult]) -> RunbookDrillReport:
    """The report's total and verdict, saved in <drill.history_dir>/<report.drill>/; the report, or error
    raised naming the problems, with the report as its result, after the report is saved."""
    report.total_seconds = round(time.monotonic() - t0, 1)
    report.verdict = drill_reports.FAIL if report.problems else drill_reports.PASS
    drill_reports.save(cfg, report, Path(cfg.drill.history_dir) / report.drill)
    if report.verdict != drill_reports.PASS:
        raise error(f"{report.drill} drill FAILED: " + "; ".join(report.problems), report)
    return report
