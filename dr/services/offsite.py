"""The off-site rest-server, for the host that keeps the off-site copy (or, for tests and drills, this
Docker host): Debian's restic-rest-server in its own image (`offsite`), on its own Docker network, with its
own volume and its own user and password (the secret file offsite-http-password), started `--append-only`.

The Aggregator reaches it as rest:http://<instance>-offsite:8000/<path> on that network (rest:https:// with
offsite.serve_tls: HTTPS only, restic verifying the certificate against the CA, `--cacert`); `invoke offsite`
(snapshots/offsite.py) copies whole sets into it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from common import log, secrets
from common.config import Config
from common.errors import ServiceError
from common.records import Record
from dr.engine import docker_api
from dr.services import stack

_log = log.get("offsite")
SERVICE = "offsite"
REPOSITORY_PATH = "aggregator"


def network_name(cfg: Config) -> str:
    return f"{cfg.instance}-offsite"


def volume_name(cfg: Config) -> str:
    return f"{cfg.instance}-offsite-data"


def repository_url(cfg: Config) -> str:
    scheme = "https" if cfg.offsite.serve_tls else "http"
    return f"rest:{scheme}://{stack.container_name(cfg, SERVICE)}:8000/{REPOSITORY_PATH}"


def spec(cfg: Config) -> stack.ServiceSpec:
    """The rest-server: its volume, its user's password read-only and, with offsite.serve_tls, its
    certificate and key (read-only; it then serves HTTPS only)."""
    pw_path, _ = secrets.ensure(cfg.secrets_dir, secrets.OFFSITE_HTTP_PASSWORD)
    kwargs: dict = dict(
        environment={"OFFSITE_USER": cfg.offsite.user},
        volumes={volume_name(cfg): {"bind": "/srv/restic", "mode": "rw"},
                 str(pw_path): {"bind": f"/run/secrets/{secrets.OFFSITE_HTTP_PASSWORD}", "mode": "ro"}},
        ports={"8000/tcp": (cfg.offsite.serve_bind, cfg.offsite.serve_port)})
    if cfg.offsite.serve_tls:
        from dr.services import certs

        kwargs["environment"]["OFFSITE_TLS"] = "1"
        for name, path in (("offsite.crt", certs.cert_path(cfg, "offsite")), ("offsite.key", certs.key_path(cfg, "offsite"))):
            if not path.is_file():
                raise ServiceError(f"offsite.serve_tls is on but {path} is missing: `invoke certs` makes it")
            kwargs["volumes"][str(path)] = {"bind": f"/run/tls/{name}", "mode": "ro"}
    return stack.ServiceSpec(SERVICE, cfg.image(SERVICE), kwargs, network=network_name(cfg),
                                named_volumes=(volume_name(cfg),))


@dataclass
class OffsiteServer(Record):
    """The rest-server's state ("started" or "running" after serve, "stopped" or "removed" after stop) and
    what to configure to use it."""
    state: str
    container: str
    network: str
    published: str
    repository: str
    user: str

    def render(self) -> str:
        if self.state == "stopped":
            return "offsite server stopped; its data volume is kept"
        if self.state == "removed":
            return "offsite server stopped; its data volume and network removed"
        return (f"offsite server {self.state}: {self.container} on network {self.network}, "
                f"published on {self.published}\n"
                f"to use it from this host, set in the configuration:\n"
                f"  [offsite]\n  repository = \"{self.repository}\"\n  network = \"{self.network}\"\n"
                f"  user = \"{self.user}\"   # password: the secret file offsite-http-password")


def _server(cfg: Config, state: str) -> OffsiteServer:
    return OffsiteServer(state, stack.container_name(cfg, SERVICE), network_name(cfg),
                         f"{cfg.offsite.serve_bind}:{cfg.offsite.serve_port}", repository_url(cfg), cfg.offsite.user)


def serve(cfg: Config) -> OffsiteServer:
    """Start (or keep) the rest-server container and wait until it answers; what to configure to use it."""
    state = stack.start_one(cfg, spec(cfg))
    stack.wait_one(cfg, SERVICE, time.monotonic() + cfg.host.health_timeout)
    return _server(cfg, state)


def stop(cfg: Config, remove_data: bool = False) -> OffsiteServer:
    """Stop and remove the rest-server's container; remove_data: its volume and network too."""
    c = docker_api.container_or_none(stack.container_name(cfg, SERVICE))
    if c is not None:
        c.remove(force=True)
    if remove_data:
        docker_api.remove_volume(volume_name(cfg))
        docker_api.remove_network(network_name(cfg))
    return _server(cfg, "removed" if remove_data else "stopped")
