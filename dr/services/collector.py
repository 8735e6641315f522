"""The built-in sample collector: a container of our `collector` image holding the sample reports, reached
over SSH on the project network like a real collector. Its keys are made here (ssh-keygen) and kept in the
secrets directory, so its host key is pinned like any other collector's. A drill starts others beside it
(`start(cfg, name=..., samples=False)`: empty, each its own container and service label `collector-<name>`,
the same keys)."""

from __future__ import annotations

from common import log, poll, runner
from common.config import Config
from common.errors import ServiceError
from dr.engine import docker_api
from dr.services import stack

_log = log.get("collector")

NAME = "sample"
CLIENT_KEY = "sample-collector.key"
HOST_KEY = "sample-collector-host.key"
ARCHIVE = "/srv/collector/archive"


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


def start(cfg: Config, port: int | None = None, name: str = NAME, samples: bool = True) -> dict:
    """Start a collector (fresh: full of samples, or with an empty archive folder); returns its [[collectors]]
    entry (named name)."""
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
    docker_api.client().containers.run(
        cfg.image("collector"), name=name, detach=True, network=stack.network_name(cfg),
        volumes={str(d / HOST_KEY): {"bind": "/run/collector/host_key", "mode": "ro"},
                 str(d / f"{CLIENT_KEY}.pub"): {"bind": "/run/collector/authorized_keys", "mode": "ro"}},
        labels={docker_api.INSTANCE_LABEL: cfg.instance, "org.aggregator-dr.service": service(entry_name)},
        **kwargs,
    )
    _wait_sshd(name)
    if not samples:
        emptied = docker_api.client().containers.get(name).exec_run(
            ["find", ARCHIVE, "-mindepth", "1", "-delete"], user="collector")
        if emptied.exit_code:
            raise ServiceError(f"could not empty the collector {name}: {emptied.output.decode(errors='replace')}")
    return {"name": entry_name, "host": name if port is None else "127.0.0.1", "port": 22 if port is None else port,
            "user": "collector", "key_file": key_file, "host_key": host_key, "archive_path": ARCHIVE}


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
