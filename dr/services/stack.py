"""The long-running services: `postgres` (PostgreSQL), `db` (FerretDB in front of it) and `webmirror` (nginx).
Start, wait for health, status, down.

Containers, the network and the database volume are named after `instance` in the configuration, so tests
run their own instance beside a live one. Ports are published on the configured address (127.0.0.1 by
default). `down` stops and removes containers and never touches data (volume, data root, secrets).
"""

from __future__ import annotations

import hashlib
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import docker.errors

from common import config, log, poll, secrets
from common.config import Config
from common.errors import ServiceError
from common.records import Record, optional
from database import db, pgsql
from dr.engine import containers, docker_api
from dr.machine import roles
from dr.services import certs
from dr.services.instance import container_name

_log = log.get("services")

PG_VOLUME = "/var/lib/postgresql/volume"  # the data directory is data/ in it (dockerfiles/postgres)
SECRETS_INSIDE = "/run/secrets"
DB_PORT, DB_TLS_PORT = 27017, 27018  # FerretDB's plaintext and TLS listeners inside the instance network
DB_TLS_CERT, DB_TLS_KEY = "/run/tls/db.crt", "/run/tls/db.key"  # where the db container finds them
TLS_CA = "/run/tls/ca.crt"  # the CA the db container verifies PostgreSQL with


def services_of(cfg: Config) -> tuple[str, ...]:
    """The services this host runs (its role's, dr/machine/roles.py), in start order."""
    return roles.of(cfg).services


def db_address(cfg: Config) -> tuple[str, int]:
    """Where this host's own tools reach the database: db.host on another host; else the address its port is
    published on (loopback when that is every interface)."""
    if roles.of(cfg).database_elsewhere:
        return cfg.db.host, cfg.db.port
    return ("127.0.0.1" if cfg.db.bind in ("0.0.0.0", "::") else cfg.db.bind), cfg.db.port


def network_name(cfg: Config) -> str:
    return cfg.instance


def pg_volume_name(cfg: Config) -> str:
    """The named volume of PostgreSQL's data directory."""
    return f"{cfg.instance}-pgdata"


@dataclass
class ServiceSpec:
    name: str
    image: str
    kwargs: dict
    network: str | None = None  # default: the instance's network
    named_volumes: tuple[str, ...] = ()  # Docker volumes to create before the start

    def fingerprint(self, image_id: str) -> str:
        """What the container is made of: image, network and every run setting (ports, mounts, ...).
        A running container whose fingerprint differs (say the configured port changed) is replaced."""
        text = json.dumps([image_id, self.network, self.kwargs], sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


SPEC_LABEL = "org.aggregator-dr.spec"


def role_secrets(secrets_dir) -> dict[str, dict]:
    """Every database role's password file (made when missing), mounted read-only where the postgres image's
    entrypoint reads them."""
    mounts = {}
    for role in db.ROLES:
        path, _ = secrets.ensure(secrets_dir, db.password_name(role))
        mounts[str(path)] = {"bind": f"{SECRETS_INSIDE}/{db.password_name(role)}", "mode": "ro"}
    return mounts


def postgres_spec(cfg: Config, volume: str | None = None) -> ServiceSpec:
    """PostgreSQL: its data in a named volume (pg_volume_name unless given), the role passwords read-only,
    no published port: only the project network reaches it. With db.tls, its certificate and key
    (read-only), and it takes TLS connections only (dockerfiles/postgres/entrypoint.sh). On the database's
    own host (host.role database) its port is published on db.bind at db.postgres_port, for the
    Aggregator's backup container (pg_basebackup, psql), and it takes its roles from any address."""
    volume = volume or pg_volume_name(cfg)
    kwargs: dict = {"environment": {"DB_NAME": cfg.db.database},
                    "volumes": {volume: {"bind": PG_VOLUME, "mode": "rw"}, **role_secrets(cfg.secrets_dir)}}
    if cfg.db.tls:
        kwargs["environment"]["PG_TLS"] = "1"
        kwargs["volumes"].update(_tls_mounts({
            "/run/tls/postgres.crt": ("PostgreSQL's TLS certificate", certs.cert_path(cfg, "postgres")),
            "/run/tls/postgres.key": ("PostgreSQL's TLS key", certs.key_path(cfg, "postgres"))}))
    if roles.of(cfg).publishes_postgres:
        kwargs["environment"]["PG_FROM"] = "all"  # the entrypoint refuses it without PG_TLS
        kwargs["ports"] = {f"{pgsql.PG_PORT}/tcp": (cfg.db.bind, cfg.db.postgres_port)}
    return ServiceSpec("postgres", cfg.image("postgres"), kwargs, named_volumes=(volume,))


def db_port_inside(cfg: Config) -> int:
    """FerretDB's port inside the instance network: its TLS listener with db.tls, else the plaintext one."""
    return DB_TLS_PORT if cfg.db.tls else DB_PORT


def db_spec(cfg: Config) -> ServiceSpec:
    """FerretDB: no password, no volume; its port published on the configured address. With db.tls, its
    certificate and key and the CA (read-only): only its TLS listener is reachable (the plaintext one stays
    on the container's loopback, for its health check), and it reaches PostgreSQL over TLS, verifying it
    (dockerfiles/db/entrypoint.sh)."""
    kwargs: dict = {"environment": {"PG_HOST": container_name(cfg, "postgres")},
                    "ports": {f"{db_port_inside(cfg)}/tcp": (cfg.db.bind, cfg.db.port)}}
    if cfg.db.tls:
        ca, cert, key = certs.db_files(cfg)
        kwargs["environment"]["DB_TLS"] = "1"
        kwargs["volumes"] = _tls_mounts({DB_TLS_CERT: ("database's TLS certificate", cert),
                                         DB_TLS_KEY: ("database's TLS key", key), TLS_CA: ("CA certificate", ca)})
    return ServiceSpec("db", cfg.image("db"), kwargs)


def _tls_mounts(files: dict) -> dict:
    """{host path: read-only bind} of {container path: (what, host path)}; ServiceError naming a missing one."""
    mounts = {}
    for target, (what, path) in files.items():
        if not path.is_file():
            raise ServiceError(f"db.tls is on but the {what} {path} is missing: `invoke certs` makes it (or set "
                               "the [db] file keys)")
        mounts[str(path)] = {"bind": target, "mode": "ro"}
    return mounts


STATUS_MAIN, STATUS_LOCAL = "/srv/status", "/srv/status-local"  # the page's folder served on 8080, on 8081
STATUS_LISTENER = 8081  # nginx's second listener: the status page alone (dockerfiles/webmirror/nginx.conf)


def _reached_at(address: str) -> str:
    """The address this host reaches a port published on address at (loopback for every interface), as a URL
    writes it."""
    host = "127.0.0.1" if address in ("0.0.0.0", "::") else address
    return f"[{host}]" if ":" in host else host


def _status_served(cfg: Config) -> tuple[str, str, int] | None:
    """Where the status page is served ([webmirror] status): its folder's mount point in the container, and
    the host address and port this host reads it at; None when it is not served (off, or no page_dir).
    Loopback with a loopback bind: the mirror's own listener already is loopback-only. Loopback with another
    bind: nginx's second listener, published on 127.0.0.1 only (client addresses are not to be trusted
    behind Docker's NAT, so no allow/deny), and the main listener's /status/ folder stays empty (404)."""
    mirror = cfg.webmirror
    if mirror.status == "off" or not cfg.status.page_dir:
        return None
    if mirror.status == "public" or config.is_loopback(mirror.bind):
        return STATUS_MAIN, _reached_at(mirror.bind), mirror.port
    return STATUS_LOCAL, "127.0.0.1", mirror.status_port


def status_url(cfg: Config) -> str | None:
    """Where this host reads the status page, or None when the mirror does not serve it."""
    served = _status_served(cfg)
    return None if served is None else f"http://{served[1]}:{served[2]}/status/"


def webmirror_spec(cfg: Config) -> ServiceSpec:
    """nginx: the archive folder read-only at /, and the status page's folder read-only at /status/ on the
    listener [webmirror] status says (_status_served)."""
    archive = cfg.data_root_path / "archive"
    archive.mkdir(parents=True, exist_ok=True, mode=0o755)
    volumes = {str(archive): {"bind": "/srv/archive", "mode": "ro"}}
    ports = {"8080/tcp": (cfg.webmirror.bind, cfg.webmirror.port)}
    served = _status_served(cfg)
    if served is not None:  # dr/watch/publish.py writes the page there
        inside, host, port = served
        pages = Path(cfg.status.page_dir)
        pages.mkdir(parents=True, exist_ok=True, mode=0o755)
        volumes[str(pages)] = {"bind": inside, "mode": "ro"}
        if inside == STATUS_LOCAL:
            ports[f"{STATUS_LISTENER}/tcp"] = (host, port)
    return ServiceSpec("webmirror", cfg.image("webmirror"), dict(
        volumes=volumes,
        ports=ports,
        read_only=True,
        tmpfs={"/run": "", "/var/lib/nginx": "", "/tmp": ""},
    ))


def start_one(cfg: Config, spec: ServiceSpec) -> str:
    """Start one service; keep a running container made from the same image and settings, replace any
    other one (stopped, older image, or another port, mount or network than the configuration says)."""
    name = container_name(cfg, spec.name)
    image = docker_api.client().images.get(spec.image)
    fingerprint = spec.fingerprint(image.id)
    existing = docker_api.container_or_none(name)
    if existing is not None:
        current = existing.labels.get(SPEC_LABEL) == fingerprint
        if current and existing.status == "running":
            _log.info("%s: running, image and settings current", name)
            return "running"
        _log.info("%s: replacing (%s, %s)", name, existing.status,
                  "image and settings current" if current else "image or settings changed")
        existing.remove(force=True, v=True)  # anonymous volumes only: named ones stay
    for volume in spec.named_volumes:
        docker_api.ensure_volume(volume)
    network = spec.network or network_name(cfg)
    if network != NO_NETWORK:
        docker_api.ensure_network(network)
    docker_api.client().containers.run(
        spec.image, name=name, detach=True, network=network,
        restart_policy={"Name": "unless-stopped"},
        labels={docker_api.INSTANCE_LABEL: cfg.instance, "org.aggregator-dr.service": spec.name,
                SPEC_LABEL: fingerprint},
        **spec.kwargs,
    )
    # Components on the project network reach the database as <instance>-db:27017 (27018 with db.tls).
    return "started"


def start(cfg: Config) -> dict[str, str]:
    docker_api.ensure_network(network_name(cfg))
    makers = {"postgres": postgres_spec, "db": db_spec, "webmirror": webmirror_spec}
    return {name: start_one(cfg, makers[name](cfg)) for name in services_of(cfg)}


def health(cfg: Config, service: str) -> str:
    """Docker's health verdict (or the container's state); while Docker still says "starting", the image's
    own check is run at once and "healthy" when it passes (Docker runs it only every few seconds), so a
    restore does not wait for Docker's schedule and `status` agrees with what the restore saw."""
    c = docker_api.container_or_none(container_name(cfg, service))
    if c is None:
        return "absent"
    c.reload()
    state = c.attrs.get("State", {}).get("Health", {}).get("Status", c.status)
    if state == "starting" and docker_api.health_check_passes(c.name):
        return "healthy"
    return state


def wait_one(cfg: Config, service: str, deadline: float) -> None:
    """Wait (until the time.monotonic() deadline) for one service container to be healthy (see health());
    its last log lines when it fails or the deadline passes."""
    seen = {"state": "absent"}

    def failed(why: str) -> ServiceError:
        c = docker_api.container_or_none(container_name(cfg, service))
        logs = "" if c is None else containers.host_paths(c.logs(tail=30).decode(errors="replace"),
                                                          containers.mounts(c))
        return ServiceError(f"{why}; its last log lines:\n{logs}")

    def healthy() -> bool:
        seen["state"] = state = health(cfg, service)
        if state in ("absent", "exited", "dead", "unhealthy"):
            raise failed(f"{service} is {state}, not healthy")
        return state == "healthy"

    poll.until(healthy, f"{service} to become healthy", deadline - time.monotonic(), interval=0.25,
               error=lambda message: failed(f"{message}: {service} is {seen['state']}, not healthy"))


def wait_healthy(cfg: Config) -> dict[str, float]:
    """Wait for Docker's health checks of this host's services, then check from the host side as a user
    would: the database (here or on its own host) and the webmirror (when it runs here)."""
    deadline = time.monotonic() + cfg.host.health_timeout
    start = time.monotonic()
    waited = {}
    for service in services_of(cfg):
        wait_one(cfg, service, deadline)
        waited[service] = round(time.monotonic() - start, 1)
    check_db(cfg)
    prepare_db(cfg)
    if "webmirror" in services_of(cfg):
        check_webmirror(cfg)
    return waited


def db_client(cfg: Config, role: str = "reader", **kwargs):
    """A pymongo client of this instance's database as role (reader unless said), from the host
    (db_address)."""
    host, port = db_address(cfg)
    return db.client_as(cfg.db, cfg.secrets_dir, role, host=host, port=port, **kwargs)


@dataclass(frozen=True)
class LocalPsql(pgsql.Queries):
    """psql in this host's postgres container (docker exec; the superuser over its socket acting as role, or
    as itself when role is ""): no container to start and no password, for the checks right after a restore
    and for changing the roles' passwords, where PostgreSQL's container is on this host by definition."""
    container: str
    role: str = "reader"

    def _argv(self, sql: str) -> list[str]:
        return pgsql.socket_argv(sql, self.role) if self.role else pgsql.superuser_argv(sql)

    def query(self, sql: str) -> list[list[str]]:
        argv = self._argv(sql)
        _log.debug("in %s: %s", self.container, " ".join(argv))
        return self._run(argv)

    def execute_private(self, sql: str) -> None:
        """query, without logging sql (it carries a password's verifier)."""
        self._run(self._argv(sql))

    def _run(self, argv: list[str]) -> list[list[str]]:
        c = docker_api.container_or_none(self.container)
        if c is None:
            raise ServiceError(f"there is no container {self.container} to ask PostgreSQL in")
        if c.status != "running":
            raise ServiceError(f"{self.container} is not running ({c.status}): start the services "
                               "(`invoke rebuild`) first")
        code, (out, err) = c.exec_run(argv, user="postgres", demux=True)
        if code != 0:
            said = (err or b"").decode(errors="replace").strip()[-500:]
            raise ServiceError(f"psql in {self.container} as {self.role or 'the superuser'} failed (exit {code}): "
                               f"{said}")
        return pgsql.parse_rows((out or b"").decode())


def pg_counts(cfg: Config) -> dict[str, int]:
    """Exact documents per collection of cfg's database, counted by this host's PostgreSQL as reader."""
    return LocalPsql(container_name(cfg, "postgres")).counts(cfg.db.database)


def check_db(cfg: Config) -> None:
    """Every role logs in (PostgreSQL checks each password)."""
    host, port = db_address(cfg)
    for role in db.ROLES:
        password = secrets.read(cfg.secrets_dir, db.password_name(role))
        try:
            db.wait_ready(host, port, role, password, cfg.db.database, timeout_s=20,
                          tls_ca_file=db.tls_ca_file(cfg.db, cfg.secrets_dir))
        except Exception as exc:
            raise ServiceError(f"db does not accept the role {role} at {host}:{port}: {exc}") from None


def prepare_db(cfg: Config) -> list[str]:
    """As owner: the collections the importer writes, and their indexes (database.schema); the importer itself
    cannot create a collection. Returns what was created."""
    from database import schema

    client = db_client(cfg, "owner")
    try:
        return schema.ensure(client[cfg.db.database])
    finally:
        client.close()


def check_webmirror(cfg: Config) -> None:
    """The mirror answers at / and, when it serves a page that exists, at /status/."""
    _check_http(f"http://{_reached_at(cfg.webmirror.bind)}:{cfg.webmirror.port}/")
    url = status_url(cfg)
    if url is not None and (Path(cfg.status.page_dir) / "index.html").is_file():
        _check_http(url)


def _check_http(url: str) -> None:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            if resp.status != 200:
                raise ServiceError(f"webmirror answered {resp.status} at {url}")
    except urllib.error.HTTPError as exc:
        raise ServiceError(f"webmirror answered {exc.code} at {url}") from None
    except OSError as exc:
        raise ServiceError(f"webmirror does not answer at {url}: {exc}") from None


@dataclass
class ServiceRow(Record):
    """One service as `invoke status` shows it: its container's state and, when the container is there, its
    health, image, published ports and start time."""
    service: str
    container: str
    state: str
    health: str | None = optional()
    image: str | None = optional()
    ports: str | None = optional()
    started: str | None = optional()


def status(cfg: Config) -> list[ServiceRow]:
    """Each service of this host, in start order."""
    rows = []
    for service in services_of(cfg):
        name = container_name(cfg, service)
        c = docker_api.container_or_none(name)
        if c is None:
            rows.append(ServiceRow(service, name, "absent"))
            continue
        ports = c.attrs.get("NetworkSettings", {}).get("Ports") or {}
        published = ", ".join(f"{b['HostIp']}:{b['HostPort']}" for v in ports.values() if v for b in v)
        rows.append(ServiceRow(service, name, c.status, health=health(cfg, service),
                               image=(c.image.tags or [c.image.short_id])[0], ports=published,
                               started=c.attrs.get("State", {}).get("StartedAt", "")[:19]))
    return rows


SAMPLE_COLLECTOR = "collector"  # the built-in sample collector's service name (dr/services/collector.py)
SUBSCRIBER = "subscriber"  # the broker's consumer (dr/jobs/subscriber.py), stopped first
FOLLOWERS = ("follow-importer", "follow-sanitize")  # the stages in follow mode beside it (dr/jobs/subscriber.py)
BROKER = "broker"  # its service name (dr/services/broker.py), stopped after the collectors that publish to it
NO_NETWORK = "none"  # ServiceSpec.network of a container with no network at all (the sanitizer's)
# Why a container of the instance that `down` leaves running stays, by its service label.
KEPT = {"offsite": "the off-site copy's server stands for another host: `invoke offsite-server --stop`",
        "aptcache": "a runbook drill's package cache: the drill removes it when it ends"}
KEPT_OTHER = "a drill's server or a job that is running now: it removes its own containers when it ends"


@dataclass
class StillRunning(Record):
    """A container of the instance that `down` leaves running, and why it stays."""
    container: str
    why: str


@dataclass
class Stopped(Record):
    """What `invoke down` did: the containers it removed, and those of the instance still running."""
    removed: list[str]
    still_running: list[StillRunning]

    def render(self) -> str:
        lines = ["stopped: " + (", ".join(self.removed) if self.removed else "nothing was running")]
        return "\n".join(lines + [f"still running: {s.container} ({s.why})" for s in self.still_running])


def down(cfg: Config) -> Stopped:
    """Stop and remove the subscriber and the stages following it, the sample collector (ours: `rebuild --sample`
    started it), the broker and the service containers.
    Data (volume, data root, secrets) is left alone."""
    removed = stop(cfg, (SUBSCRIBER, *FOLLOWERS, SAMPLE_COLLECTOR, BROKER, *reversed(services_of(cfg))))
    return Stopped(removed, still_running(cfg))


def still_running(cfg: Config) -> list[StillRunning]:
    """Every container of the instance that is running, and why it stays (after `down`: what down does not
    stop)."""
    found = docker_api.client().containers.list(filters={"label": f"{docker_api.INSTANCE_LABEL}={cfg.instance}"})
    return sorted((StillRunning(c.name, KEPT.get(c.labels.get("org.aggregator-dr.service", ""), KEPT_OTHER))
                   for c in found), key=lambda s: s.container)


def stop(cfg: Config, names: tuple[str, ...]) -> list[str]:
    """Stop (PostgreSQL: a clean shutdown) and remove these service containers, in this order; returns the
    containers removed."""
    removed = []
    for service in names:
        c = docker_api.container_or_none(container_name(cfg, service))
        if c is None:
            continue
        _log.info("stopping %s", c.name)
        try:
            c.stop(timeout=60)  # PostgreSQL checkpoints as it shuts down
        except docker.errors.APIError:
            pass
        c.remove(v=True)
        removed.append(c.name)
    return removed
