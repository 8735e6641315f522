"""The drills' sandbox: a throwaway database (the `postgres` and `db` containers, made by testcontainers from
the same specs as the live services) on a network of its own, a throwaway data folder, and a secrets folder
holding only a copy of the repository password(s) and fresh database role passwords; everything is removed
on exit. The database is reached from the host over loopback.

This is the one place that configures testcontainers, and it does so explicitly (TESTCONTAINERS), only
while the container is made and started, restoring what it changed: never through the process's
environment.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from testcontainers.core.config import ConnectionMode, testcontainers_config
from testcontainers.core.container import DockerContainer

from common import config as dr_config
from common import log, secrets
from common.config import Config
from database import db as dbconn
from dr.engine import docker_api
from dr.services import stack

_log = log.get("sandbox")

LOOPBACK = "127.0.0.1"
DB_PORT = 27017
# The secrets a drill may need besides its own database passwords: the repositories' (never the live
# database's).
COPIED_SECRETS = (secrets.RESTIC_PASSWORD, secrets.OFFSITE_RESTIC_PASSWORD, secrets.OFFSITE_HTTP_PASSWORD)
# testcontainers_config attributes, while the sandbox's container is made and started:
TESTCONTAINERS = {
    # No Ryuk reaper: it is an image from a registry (never pulled here); the sandbox removes what it made.
    "ryuk_disabled": True,
    # Our images are local: never a registry prefix in front of their names.
    "hub_image_name_prefix": "",
    # The container's port is published on the Docker host's loopback and reached there.
    "connection_mode_override": ConnectionMode.docker_host,
    "tc_host_override": LOOPBACK,
}


@dataclass
class Sandbox:
    cfg: Config  # the drill's configuration: its own instance name, data root, secrets and database port
    client: object  # pymongo client of the throwaway database (from the host, over loopback)

    @property
    def db(self):
        return self.client[self.cfg.db.database]


@contextlib.contextmanager
def testcontainers_settings(settings: dict | None = None) -> Iterator[object]:
    """testcontainers_config with settings (TESTCONTAINERS by default) while the block runs; the previous
    values are put back after it, whatever happens in it."""
    settings = TESTCONTAINERS if settings is None else settings
    saved = {name: getattr(testcontainers_config, name) for name in settings}
    try:
        for name, value in settings.items():
            setattr(testcontainers_config, name, value)
        yield testcontainers_config
    finally:
        for name, value in saved.items():
            setattr(testcontainers_config, name, value)


def copy_secrets(secrets_dir: str | Path, dest: Path) -> None:
    """The sandbox's secrets folder: the repository passwords that exist in secrets_dir, and fresh database
    role passwords (never the live ones; stack.postgres_spec makes them)."""
    for name in COPIED_SECRETS:
        if secrets.path(secrets_dir, name).exists():
            secrets.put(dest, name, secrets.read(secrets_dir, name))


def sandbox_config(cfg: Config, instance: str, work: Path, secrets_dir: Path, port: int = DB_PORT) -> Config:
    """cfg as the sandbox sees it: its own instance, data root, secrets and database; no collectors. Its
    database is this host's alone (published on loopback, its own network), so it runs without TLS whatever
    db.tls says: the instance's certificate does not name the sandbox's containers."""
    return dr_config.derive(cfg, {"instance": instance, "data_root": str(work / "data"),
                                  "secrets_dir": str(secrets_dir), "db.host": LOOPBACK, "db.port": port,
                                  "db.tls": False, "collectors": []})


def container_for(cfg: Config, spec: stack.ServiceSpec) -> DockerContainer:
    """The testcontainers container of a service spec (the same image, environment, mounts and network
    as the live service), in cfg's instance network, its published ports on a free loopback port."""
    kwargs = dict(spec.kwargs)
    env = kwargs.pop("environment", {})
    volumes = kwargs.pop("volumes", {})
    ports = kwargs.pop("ports", {})
    container = (DockerContainer(spec.image).with_name(stack.container_name(cfg, spec.name))
                 .with_kwargs(network=stack.network_name(cfg),
                              labels={docker_api.INSTANCE_LABEL: cfg.instance}, **kwargs))
    for name, value in env.items():
        container.with_env(name, value)
    for source, bind in volumes.items():
        container.with_volume_mapping(source, bind["bind"], bind["mode"])
    container.ports.update({port: (LOOPBACK, None) for port in ports})
    return container


@dataclass
class Database:
    """A started postgres + db pair: its containers (to stop) and the db's port on loopback."""
    containers: list
    port: int
    volume: str


def clear_leftovers(cfg: Config, volume: bool = True) -> None:
    """Remove what a sandbox of cfg's instance left behind when its process was killed before its
    teardown: its containers (their names would block the start) and, with volume, its database volume
    (old data under other passwords). The instance's name is the sandbox's own, never a live instance's."""
    removed = docker_api.remove_instance_containers(cfg.instance)
    if removed:
        _log.warning("removed containers left by an earlier %s that did not finish: %s", cfg.instance,
                     ", ".join(sorted(removed)))
    if volume:
        docker_api.remove_volume(stack.pg_volume_name(cfg))


def start_database(cfg: Config) -> Database:
    """PostgreSQL (in a new named volume) and FerretDB in front of it, from cfg's images, in cfg's instance
    network, with the role passwords of cfg's secrets folder; waits until the owner role logs in. Started
    with testcontainers; on any error whatever was started is stopped again. Containers of cfg's instance
    that a killed run left are removed first (the volume is kept: it may hold a copy put there)."""
    clear_leftovers(cfg, volume=False)
    volume = stack.pg_volume_name(cfg)
    docker_api.ensure_network(stack.network_name(cfg))
    docker_api.ensure_volume(volume)
    started: list = []
    try:
        with testcontainers_settings():
            for spec in (stack.postgres_spec(cfg, volume), stack.db_spec(cfg)):
                container = container_for(cfg, spec)
                started.append(container)
                container.start()
            port = int(started[-1].get_exposed_port(DB_PORT))
        password = secrets.read(cfg.secrets_dir, dbconn.password_name("owner"))
        dbconn.wait_ready(LOOPBACK, port, "owner", password, cfg.db.database, cfg.host.health_timeout)
        return Database(started, port, volume)
    except BaseException:
        stop_database(Database(started, 0, volume))
        raise


def stop_database(database: Database) -> None:
    """Stop and remove the pair's containers and its volume; teardown goes on past errors."""
    for container in reversed(database.containers):
        try:
            container.stop()
        except Exception as exc:  # teardown must go on: the network and folder are still to remove
            _log.warning("could not remove a drill database container: %s", exc)
    try:
        docker_api.remove_volume(database.volume)
    except Exception as exc:  # noqa: BLE001 - as above
        _log.warning("could not remove the drill database volume %s: %s", database.volume, exc)


@contextlib.contextmanager
def throwaway(cfg: Config, label: str = "drill",
              before_start: Callable[[Config], None] | None = None) -> Iterator[Sandbox]:
    """A throwaway data folder and database for cfg's repository; everything is removed on exit. The
    sandbox's client logs in as owner (a drill restores). before_start(sandbox's cfg), when given, runs
    before PostgreSQL starts (a physical copy goes into its volume then)."""
    work = Path(cfg.drill.work_dir or cfg.cache_path / "drill")
    work.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=work))
    database = None
    client = None
    instance = f"{cfg.instance}-{label}"
    try:
        sec = tmp / "secrets"
        copy_secrets(cfg.secrets_dir, sec)
        sb_cfg = sandbox_config(cfg, instance, tmp, sec)
        clear_leftovers(sb_cfg)
        if before_start is not None:
            database = Database([], 0, stack.pg_volume_name(sb_cfg))  # removed on exit even if it fails
            before_start(sb_cfg)
        database = start_database(sb_cfg)
        sb_cfg = dr_config.derive(sb_cfg, {"db.port": database.port})
        client = dbconn.client_as(sb_cfg.db, sec, "owner", socketTimeoutMS=600000)
        yield Sandbox(sb_cfg, client)
    finally:
        if client is not None:
            client.close()
        if database is not None:
            stop_database(database)
        docker_api.remove_network(instance)
        shutil.rmtree(tmp, ignore_errors=True)
