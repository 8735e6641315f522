"""The built-in sample collector: a container of our `collector` image holding the sample reports, reached
over SSH on the project network like a real collector. Its keys are made here (ssh-keygen) and kept in the
secrets directory, so its host key is pinned like any other collector's."""

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


def container_name(cfg: Config) -> str:
    return stack.container_name(cfg, "collector")


def start(cfg: Config, port: int | None = None) -> dict:
    """Start the sample collector (fresh, full of samples); returns its [[collectors]] entry."""
    key_file, host_key = ensure_keys(cfg)
    name = container_name(cfg)
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
        labels={docker_api.INSTANCE_LABEL: cfg.instance, "org.aggregator-dr.service": "collector"},
        **kwargs,
    )
    _wait_sshd(name)
    return {"name": NAME, "host": name if port is None else "127.0.0.1", "port": 22 if port is None else port,
            "user": "collector", "key_file": key_file, "host_key": host_key, "archive_path": ARCHIVE}


def _wait_sshd(name: str, timeout: float = 30) -> None:
    def sshd_started() -> bool:
        c = docker_api.container_or_none(name)
        if c is None or c.status == "exited":
            logs = c.logs(tail=20).decode(errors="replace") if c else ""
            raise ServiceError(f"the sample collector did not start:\n{logs}")
        return c.exec_run(["sh", "-c", "test -f /run/sshd.pid"]).exit_code == 0

    poll.until(sshd_started, "the sample collector's sshd to start", timeout, interval=0.3, error=ServiceError)


def stop(cfg: Config) -> None:
    c = docker_api.container_or_none(container_name(cfg))
    if c is not None:
        c.remove(force=True)
