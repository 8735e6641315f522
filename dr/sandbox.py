"""The drills' sandbox: a throwaway `db` container (testcontainers) on a network of its own, a throwaway data
folder, and a secrets folder holding only a copy of the repository password(s) and a fresh database
password; everything is removed on exit. The database is reached from the host over loopback.

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
from typing import Iterator

from testcontainers.core.config import ConnectionMode, testcontainers_config
from testcontainers.core.container import DockerContainer

from common import config as dr_config
from common import db as dbconn
from common import log, secrets
from common.config import Config
from dr import docker_api

_log = log.get("sandbox")

LOOPBACK = "127.0.0.1"
DB_PORT = 27017
# The secrets a drill may need besides its own database password: the repositories' (never the live
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


def copy_secrets(secrets_dir: str | Path, dest: Path) -> Path:
    """The sandbox's secrets folder: the repository passwords that exist in secrets_dir, and a fresh
    database password (never the live one). Returns the database password's file."""
    for name in COPIED_SECRETS:
        if secrets.path(secrets_dir, name).exists():
            secrets.put(dest, name, secrets.read(secrets_dir, name))
    pw_path, _ = secrets.ensure(dest, secrets.DB_PASSWORD)
    return pw_path


def db_spec(cfg: Config, instance: str, pw_path: Path) -> dict:
    """What the sandbox's database container is: cfg's `db` image, its own name, network and labels, the
    sandbox's password file, its port on loopback only (a free one)."""
    return {"image": cfg.image("db"), "name": f"{instance}-db",
            "env": {"DB_NAME": cfg.db.database, "DB_USER": cfg.db.user},
            "volumes": [(str(pw_path), "/run/secrets/db-password", "ro")],
            "kwargs": {"network": instance, "labels": {"org.aggregator-dr.instance": instance}},
            "ports": {f"{DB_PORT}/tcp": (LOOPBACK, None)}}


def sandbox_config(cfg: Config, instance: str, work: Path, secrets_dir: Path, port: int) -> Config:
    """cfg as the sandbox sees it: its own instance, data root, secrets and database; no collectors."""
    return dr_config.derive(cfg, {"instance": instance, "data_root": str(work / "data"),
                                  "secrets_dir": str(secrets_dir), "db.host": LOOPBACK, "db.port": port,
                                  "collectors": []})


def _start_db(spec: dict) -> tuple[DockerContainer, int]:
    """Make and start the container of spec with testcontainers; returns it and its port on loopback. The
    container is returned (to be stopped) even when its port cannot be had: stop it on any error after
    start, as the caller's finally does."""
    with testcontainers_settings():
        container = DockerContainer(spec["image"]).with_name(spec["name"]).with_kwargs(**spec["kwargs"])
        for name, value in spec["env"].items():
            container.with_env(name, value)
        for host, inside, mode in spec["volumes"]:
            container.with_volume_mapping(host, inside, mode)
        container.ports.update(spec["ports"])
        try:
            container.start()
            return container, int(container.get_exposed_port(DB_PORT))
        except BaseException:
            _stop(container)
            raise


def _stop(container: DockerContainer) -> None:
    try:
        container.stop()
    except Exception as exc:  # teardown must go on: the network and folder are still to remove
        _log.warning("could not remove the drill database container: %s", exc)


@contextlib.contextmanager
def throwaway(cfg: Config, label: str = "drill") -> Iterator[Sandbox]:
    """A throwaway data folder and database for cfg's repository; everything is removed on exit."""
    work = Path(cfg.drill.work_dir or cfg.cache_path / "drill")
    work.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=work))
    container = None
    client = None
    instance = f"{cfg.instance}-{label}"
    try:
        sec = tmp / "secrets"
        pw_path = copy_secrets(cfg.secrets_dir, sec)
        docker_api.ensure_network(instance)
        container, port = _start_db(db_spec(cfg, instance, pw_path))
        password = secrets.read(sec, secrets.DB_PASSWORD)
        dbconn.wait_ready(LOOPBACK, port, cfg.db.user, password, cfg.db.database, cfg.host.health_timeout)
        client = dbconn.client(LOOPBACK, port, cfg.db.user, password, cfg.db.database, socketTimeoutMS=600000)
        yield Sandbox(sandbox_config(cfg, instance, tmp, sec, port), client)
    finally:
        if client is not None:
            client.close()
        if container is not None:
            _stop(container)
        docker_api.remove_network(instance)
        shutil.rmtree(tmp, ignore_errors=True)
