"""The built-in sample collector: a container of our `collector` image holding the sample reports, reached
over SSH on the project network like a real collector. Its keys are made here (ssh-keygen) and kept in the
secrets directory, so its host key is pinned like any other collector's. A drill starts others beside it
(`start(cfg, name=..., samples=False)`: empty, each its own container and service label `collector-<name>`,
the same keys). With `publish` (broker.enabled by default) it also runs the publisher (collector/publisher.py),
which announces each complete report to the broker as the broker user of its name (docs/broker.md)."""

from __future__ import annotations

import io
import tarfile
import time

from common import broker, log, poll, runner, secrets
from common.config import Config
from common.errors import ServiceError
from dr.engine import docker_api
from dr.services import stack

_log = log.get("collector")

NAME = "sample"
CLIENT_KEY = "sample-collector.key"
HOST_KEY = "sample-collector-host.key"
ARCHIVE = "/srv/collector/archive"
BROKER_PASSWORD = "/run/collector/broker-password"  # dockerfiles/collector/entrypoint.sh reads both from there
BROKER_CA = "/run/collector/broker-ca.crt"


def ensure_keys(cfg: Config) -> tuple[str, str]:
    """(client private key path, host public key line); generated once with ssh-keygen."""
    d = cfg.secrets_path
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    for name in (CLIENT_KEY, HOST_KEY):
        if not (d / name).exists():
            runner.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"aggregator-dr {name}",
                        "-f", str(d / name)])
    host_pub = (d / f"{HOST_KEY}.pub").read_text().split()
    return str(d / CLIENT_KEY), f"{host_pub[0]} {host_pub[1]}"


def service(name: str = NAME) -> str:
    """The service label of the collector of this name (the sample one's is stack.SAMPLE_COLLECTOR)."""
    return stack.SAMPLE_COLLECTOR if name == NAME else f"{stack.SAMPLE_COLLECTOR}-{name}"


def container_name(cfg: Config, name: str = NAME) -> str:
    return stack.container_name(cfg, service(name))


def publisher_settings(cfg: Config, name: str = NAME) -> tuple[dict, dict]:
    """(environment, volumes) for a collector that publishes as the broker user of name: the broker's address
    (common/broker.address: on the instance network unless broker.host says otherwise), and the user's password
    file (made when missing) and the CA, mounted read-only. The password itself is in no setting."""
    conn = broker.collector_connection(cfg, name)
    secrets.ensure(cfg.secrets_dir, broker.password_name(conn.user))
    if not conn.ca_file.is_file():
        raise ServiceError(f"the broker's CA {conn.ca_file} is missing: `invoke certs` makes it")
    environment = {"BROKER": f"{conn.host}:{conn.port}", "BROKER_COLLECTOR": name}
    volumes = {str(conn.password_file): {"bind": BROKER_PASSWORD, "mode": "ro"},
               str(conn.ca_file): {"bind": BROKER_CA, "mode": "ro"}}
    return environment, volumes


def start(cfg: Config, port: int | None = None, name: str = NAME, samples: bool = True,
          publish: bool | None = None) -> dict:
    """Start a collector (fresh: full of samples, or with an empty archive folder); returns its [[collectors]]
    entry (named name). publish (default: broker.enabled): its publisher announces each report to the broker,
    whose definitions must then name this collector (dr/services/broker.start with the configuration this
    entry is added to; until then the publisher retries its login)."""
    key_file, host_key = ensure_keys(cfg)
    entry_name, name = name, container_name(cfg, name)
    old = docker_api.container_or_none(name)
    if old is not None:
        old.remove(force=True)
    docker_api.ensure_network(stack.network_name(cfg))
    d = cfg.secrets_path
    kwargs = {}
    if port is not None:
        kwargs["ports"] = {"22/tcp": ("127.0.0.1", port)}
    volumes = {str(d / HOST_KEY): {"bind": "/run/collector/host_key", "mode": "ro"},
               str(d / f"{CLIENT_KEY}.pub"): {"bind": "/run/collector/authorized_keys", "mode": "ro"}}
    if cfg.broker.enabled if publish is None else publish:
        kwargs["environment"], more = publisher_settings(cfg, entry_name)
        volumes.update(more)
    docker_api.client().containers.run(
        cfg.image("collector"), name=name, detach=True, network=stack.network_name(cfg), volumes=volumes,
        labels={docker_api.INSTANCE_LABEL: cfg.instance, "org.aggregator-dr.service": service(entry_name)},
        **kwargs,
    )
    _wait_sshd(name)
    if not samples:
        emptied = docker_api.client().containers.get(name).exec_run(
            ["find", ARCHIVE, "-mindepth", "1", "-delete"], user="collector")
        if emptied.exit_code:
            raise ServiceError(f"could not empty the collector {name}: {emptied.output.decode(errors='replace')}")
    return entry(cfg, port, entry_name)


def entry(cfg: Config, port: int | None = None, name: str = NAME) -> dict:
    """The [[collectors]] entry of the collector of this name that start made (reached on the instance network,
    or on port of 127.0.0.1)."""
    key_file, host_key = ensure_keys(cfg)
    return {"name": name, "host": container_name(cfg, name) if port is None else "127.0.0.1",
            "port": 22 if port is None else port, "user": "collector", "key_file": key_file, "host_key": host_key,
            "archive_path": ARCHIVE}


COMPLETING = ".completing"  # in the archive folder: reports being written (a dot-folder: never listed)


def complete(cfg: Config, report: str, body: bytes, name: str = NAME) -> None:
    """A report completed on the collector of this name (complete_in)."""
    complete_in(docker_api.client().containers.get(container_name(cfg, name)), report, body)


def complete_in(container, report: str, body: bytes) -> None:
    """A report completed in a collector container as a collector completes one: written into COMPLETING,
    given to the collector's user, then renamed into place in its archive folder (report: a file name there)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(f"{COMPLETING}/{report}")
        info.size, info.mode, info.mtime = len(body), 0o644, int(time.time())
        tar.addfile(info, io.BytesIO(body))
    if not container.put_archive(ARCHIVE, buf.getvalue()):
        raise ServiceError(f"could not write {report} into the collector {container.name}")
    done = container.exec_run(["sh", "-c", 'cd "$1" && chown -R collector:collector "$3" && mv "$3/$2" "$2"',
                               "sh", ARCHIVE, report, COMPLETING])
    if done.exit_code:
        raise ServiceError(f"could not complete {report} on the collector {container.name}: "
                           f"{done.output.decode(errors='replace')}")


def reports_in(cfg: Config, name: str = NAME) -> int:
    """How many reports the collector's archive folder holds (regular files outside dot-folders: what sync
    lists and the publisher announces)."""
    c = docker_api.client().containers.get(container_name(cfg, name))
    done = c.exec_run(["sh", "-c", f"find {ARCHIVE} -path '*/.*' -prune -o -type f -print | wc -l"],
                      user="collector")
    if done.exit_code:
        raise ServiceError(f"cannot count the reports of {c.name}: {done.output.decode(errors='replace')}")
    return int(done.output.decode().strip() or 0)


def _wait_sshd(name: str, timeout: float = 30) -> None:
    def sshd_started() -> bool:
        c = docker_api.container_or_none(name)
        if c is None or c.status == "exited":
            logs = c.logs(tail=20).decode(errors="replace") if c else ""
            raise ServiceError(f"the sample collector did not start:\n{logs}")
        return c.exec_run(["sh", "-c", "test -f /run/sshd.pid"]).exit_code == 0

    poll.until(sshd_started, "the sample collector's sshd to start", timeout, interval=0.3, error=ServiceError)


def stop(cfg: Config, name: str = NAME) -> None:
    c = docker_api.container_or_none(container_name(cfg, name))
    if c is not None:
        c.remove(force=True)
