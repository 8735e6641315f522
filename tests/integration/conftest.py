"""Integration tests run the real components: our images on the real Docker Engine, FerretDB, pymongo.

The session fixture bootstraps the host and builds the images (a cache hit when nothing changed), so
`./run pytest` works on its own on a fresh machine. Tests use their own instance name, data root, secrets
directory and loopback ports, so they never touch a live Aggregator on the same host.
"""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path

import pytest
from testcontainers.core.container import DockerContainer

from common import config, db, secrets
from dr import host, images
from stages.layout import DataRoot


def pytest_collection_modifyitems(items):
    """Every test in this folder needs Docker: mark it, so that `pytest -m "not docker"` runs only the unit
    tests (a module-level pytestmark in a conftest marks nothing)."""
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.docker)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_instance(root, name: str, sample: bool = False, reports: list | None = None, **overrides):
    """An Aggregator instance of its own (services up by `rebuild`, a repository folder configured) in root;
    everything it created in Docker is removed afterwards. reports, when given, receives rebuild's report."""
    from dr import rebuild

    values = {"instance": name, "data_root": str(root / "data"), "secrets_dir": str(root / "secrets"),
              "db.port": free_port(), "webmirror.port": free_port(), "backup.repository": str(root / "repo"),
              "host.min_free_gb": 1, "monitoring.textfile_dir": str(root / "metrics"),
              "drill.history_dir": str(root / "drills")}
    values.update(overrides)
    cfg = config.load(overrides=values)
    remove_instance(cfg)  # what a killed earlier run may have left: containers, database volume, network
    report = rebuild.rebuild(cfg, sample=sample)
    if reports is not None:
        reports.append(report)
    try:
        yield cfg
    finally:
        remove_instance(cfg)


def remove_instance(cfg) -> None:
    """Every container, volume and network of the instance in Docker (its data root is tmp_path's)."""
    from dr import collector, docker_api, offsite, services

    offsite.stop(cfg, remove_data=True)
    collector.stop(cfg)
    services.down(cfg)
    docker_api.remove_volume(services.db_volume_name(cfg))
    docker_api.remove_network(services.network_name(cfg))


@pytest.fixture(scope="session")
def cfg(tmp_path_factory):
    root = tmp_path_factory.mktemp("instance")
    return config.load(overrides={
        "instance": "aggr-test",
        "data_root": str(root / "data"),
        "secrets_dir": str(root / "secrets"),
        "db.port": free_port(),
        "webmirror.port": free_port(),
        "host.min_free_gb": 1,
        "backup.repository": str(root / "repo"),
        "monitoring.textfile_dir": str(root / "metrics"),
        "drill.history_dir": str(root / "drills"),
    })


@pytest.fixture(scope="session")
def built(cfg):
    """Host bootstrapped, every image built. Returns the configuration."""
    host.bootstrap(cfg)
    images.build_all(cfg)
    return cfg


@pytest.fixture(scope="session")
def db_password_file(built):
    path, _ = secrets.ensure(built.secrets_dir, secrets.DB_PASSWORD)
    return path


def on_loopback(container: DockerContainer, port: int) -> DockerContainer:
    """Publish a container port on an ephemeral port of 127.0.0.1 only (never on every interface)."""
    container.ports[f"{port}/tcp"] = ("127.0.0.1", None)
    return container


def db_container(cfg, password_file, volume: str | None = None) -> DockerContainer:
    """A db container from our image, published on an ephemeral loopback port."""
    c = on_loopback(DockerContainer(cfg.image("db"))
                    .with_env("DB_NAME", cfg.db.database)
                    .with_env("DB_USER", cfg.db.user)
                    .with_volume_mapping(str(password_file), "/run/secrets/db-password", "ro"), 27017)
    if volume:
        c = c.with_volume_mapping(volume, "/var/lib/ferretdb", "rw")
    return c


def connect(cfg, container: DockerContainer, password_file):
    """Wait until the container's database accepts our credentials; return a pymongo client."""
    port = int(container.get_exposed_port(27017))
    password = password_file.read_text().strip()
    db.wait_ready("127.0.0.1", port, cfg.db.user, password, cfg.db.database, timeout_s=60)
    return db.client("127.0.0.1", port, cfg.db.user, password, cfg.db.database)


@pytest.fixture(scope="session")
def database(built, db_password_file):
    """One db container for the session's pipeline tests: (published port, pymongo client)."""
    with db_container(built, db_password_file) as container:
        client = connect(built, container, db_password_file)
        yield int(container.get_exposed_port(27017)), client
        client.close()


@pytest.fixture
def env(tmp_path, built, database):
    """A data root and a configuration pointing at the test database; the database starts empty."""
    port, client = database
    client.drop_database(built.db.database)
    cfg = config.load(overrides={"data_root": str(tmp_path / "data"), "secrets_dir": built.secrets_dir,
                                 "db.host": "127.0.0.1", "db.port": port, "pipeline.workers": 2})
    return cfg, DataRoot(cfg.data_root).ensure(), client[built.db.database]


@pytest.fixture
def sample_collector(built, tmp_path):
    """A fresh sample collector published on a loopback port; yields (collector entry, container)."""
    import docker as docker_sdk

    from dr import collector

    cfg = config.load(overrides={"instance": built.instance, "secrets_dir": str(tmp_path / "collector-secrets")})
    entry = collector.start(cfg, port=free_port())
    yield entry, docker_sdk.from_env().containers.get(collector.container_name(cfg))
    collector.stop(cfg)
