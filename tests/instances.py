"""The tests' and benchmarks' own instances: a free loopback port, the removal of everything an instance made
in Docker, and two instances on this Docker Engine standing for the two hosts of a database on its own host
(issue 12; tests/integration/test_two_hosts.py, bench/tls_bench.py): `<prefix>-dbh` (host.role database:
PostgreSQL and FerretDB, their ports published on one address, TLS only) and `<prefix>-app` (host.role
aggregator: everything else, its [db] pointing at that address). The address is the gateway of the
Aggregator's Docker network: its containers reach it as they would reach another host, and so does this
process. The certificates are made on the Aggregator's side; the database's side gets `invoke
db-host-kit`'s folder (no CA key) as its secrets directory. Nothing is started: `rebuild` each, the
database's first.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
from pathlib import Path
from typing import Iterator

from common import config, secrets
from common.config import Config
from database import db as dbconn
from dr.engine import docker_api
from dr.services import broker, certs, collector, dbhost, offsite, stack

# Each pytest-xdist worker picks loopback ports in a range of its own, below the kernel's ephemeral ports
# (32768 and up), so that the two lanes never pick the same one (tests/conftest.py).
PORT_RANGES = {"gw0": (20000, 26000), "gw1": (26000, 32000)}


def lane() -> str:
    """This process's pytest-xdist worker ("gw0", "gw1"), or "" without xdist."""
    return os.environ.get("PYTEST_XDIST_WORKER", "")


def free_port() -> int:
    """A loopback port nothing listens on now (in this lane's range under pytest-xdist)."""
    low, high = PORT_RANGES.get(lane(), (0, 1))
    for _ in range(200):
        port = random.randrange(low, high) if high > 1 else 0
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError(f"no free port in {low}..{high}")


def remove_instance(cfg: Config) -> None:
    """Every container, volume and network of the instance in Docker (its data root is the caller's)."""
    offsite.stop(cfg, remove_data=True)
    broker.stop(cfg, remove_data=True)
    collector.stop(cfg)
    stack.down(cfg)
    docker_api.remove_volume(stack.pg_volume_name(cfg))
    docker_api.remove_network(stack.network_name(cfg))


def _values(root: Path, name: str, gateway: str, ports: tuple[int, int], prefix: str) -> dict:
    db_port, pg_port = ports
    return {"instance": name, "data_root": str(root / name / "data"), "secrets_dir": str(root / name / "secrets"),
            "backup.repository": str(root / "repo"), "host.min_free_gb": 1, "webmirror.port": free_port(),
            "monitoring.textfile_dir": str(root / name / "metrics"), "drill.history_dir": str(root / name / "drills"),
            "history.dir": str(root / name / "history"), "status.page_dir": str(root / name / "status"),
            "db.tls": True, "db.port": db_port, "db.postgres_port": pg_port,
            # Both instances share this Docker Engine, so their containers' names differ; on two real hosts
            # they are the same (one instance name) and need no extra name.
            "certs.db_names": [gateway, f"{prefix}-dbh-db", f"{prefix}-dbh-postgres"]}


@contextlib.contextmanager
def two_instances(root: Path, prefix: str, **overrides) -> Iterator[tuple[Config, Config]]:
    """(the Aggregator's configuration, the database host's), with role passwords, the restic password,
    the certificates and the kit in place and the repository initialised by neither; whatever they make in
    Docker is removed afterwards (and first: what a killed run left)."""
    app_name, dbh_name = f"{prefix}-app", f"{prefix}-dbh"
    for name in (app_name, dbh_name):
        remove_instance(config.load(overrides={"instance": name, "data_root": str(root / "none")}))
    gateway = docker_api.ensure_network(app_name).attrs["IPAM"]["Config"][0]["Gateway"]
    ports = (free_port(), free_port())
    app = config.load(overrides={**_values(root, app_name, gateway, ports, prefix), "host.role": "aggregator",
                                 "db.host": gateway, **overrides})
    dbh = config.load(overrides={**_values(root, dbh_name, gateway, ports, prefix), "host.role": "database",
                                 "db.bind": gateway, **overrides})
    for role in dbconn.ROLES:
        secrets.ensure(app.secrets_dir, dbconn.password_name(role))
    secrets.ensure(app.secrets_dir, secrets.RESTIC_PASSWORD)
    certs.make(app)  # on the Aggregator's side, which keeps the CA
    dbhost.write_kit(app, dbh.secrets_dir)
    try:
        yield app, dbh
    finally:
        for cfg in (app, dbh):
            remove_instance(cfg)


def refuses_plaintext(host: str, port: int) -> bool:
    """Whether a MongoDB client without TLS is refused at host:port (a TLS-only listener)."""
    import pymongo
    import pymongo.errors

    client = pymongo.MongoClient(host, port, serverSelectionTimeoutMS=3000, directConnection=True)
    try:
        client.admin.command("ping")
        return False
    except pymongo.errors.PyMongoError:
        return True
    finally:
        client.close()


def other_ca_error(cfg: Config, host: str, port: int, folder: Path) -> str:
    """What a client that trusts a CA of its own (made in folder), not cfg's, is told at host:port as reader;
    "" when it gets in."""
    import pymongo.errors

    other = config.derive(cfg, {"instance": "aggr-other", "secrets_dir": str(folder)})
    certs.make(other)
    password = secrets.read(cfg.secrets_dir, dbconn.password_name("reader"))
    client = dbconn.client(host, port, "reader", password, timeout_s=3, tls_ca_file=str(certs.db_files(other)[0]))
    try:
        client.admin.command("ping")
        return ""
    except pymongo.errors.ServerSelectionTimeoutError as exc:
        return str(exc)
    finally:
        client.close()


def served_certificates(cfg: Config, host: str, port: int) -> tuple[str, str]:
    """(the certificate FerretDB serves at host:port, the one cfg's PostgreSQL was started with: the file
    its ssl_cert_file names, which its entrypoint copied at start), both PEM, without verifying anything."""
    import ssl

    ferretdb = ssl.get_server_certificate((host, port))
    psql = stack.LocalPsql(stack.container_name(cfg, "postgres"), role="")
    path = psql.query("SHOW ssl_cert_file")[0][0]
    postgres = docker_api.container_or_none(stack.container_name(cfg, "postgres"))
    return ferretdb, postgres.exec_run(["cat", path]).output.decode()


def pem_body(pem: str) -> str:
    """A PEM certificate without its armour and line breaks (ssl's PEM and openssl's wrap differently)."""
    return "".join(line for line in pem.strip().splitlines() if not line.startswith("-----"))
