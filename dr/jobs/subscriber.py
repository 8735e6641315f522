"""The subscriber's service container (`invoke subscribe`): stages/subscribe.py in the sync image, long-running,
as the stages' user (990), on the instance network (the broker as <instance>-broker:5671, the collectors as the
sync stage reaches them), with what dr/jobs/contract.subscriber_spec gives it: the data root at /data, the
collectors' keys, the broker's Aggregator password and CA, read-only (docs/broker.md).

A stage container's secrets are private copies made for its run and removed after it; this one runs for
good, so its copies (owned by 990, 0400) and its configuration file are kept in <secrets_dir>/.subscriber/,
made again at every start. Their digest is in the container's environment: a changed key, password or
setting replaces the container (stack.start_one), an unchanged one keeps it. The data root is handed to the
stages' user first (dr/jobs/ownership.py), as before every stage container.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

from common import poll
from common.config import Config
from common.errors import ServiceError
from common.records import Record
from dr.engine import containers, docker_api
from dr.jobs import contract, launch
from dr.services import stack

SERVICE = stack.SUBSCRIBER
FOLDER = ".subscriber"  # in the secrets directory: the container's private copies and configuration file
READY = "consuming"  # its log line once it consumes (stages/subscribe.py)


@dataclass
class SubscriberService(Record):
    """The subscriber's container and its state: "started" or "running" after start, "stopped" after stop."""
    state: str
    container: str

    def render(self) -> str:
        if self.state == "stopped":
            return f"subscriber stopped ({self.container} removed)"
        return f"subscriber {self.state}: {self.container} consumes the broker's queue"


def folder(cfg: Config) -> Path:
    return cfg.secrets_path / FOLDER


def spec(cfg: Config) -> stack.ServiceSpec:
    """The service's container, its private copies and configuration file written (the data root handed over)."""
    cs = contract.subscriber_spec(cfg)
    launch.prepare(cs)
    here = folder(cfg)
    shutil.rmtree(here, ignore_errors=True)
    here.mkdir(mode=0o700, parents=True)
    config_file = here / "config.toml"
    config_file.write_text(contract.container_config(cfg, cs))
    config_file.chmod(0o444)
    volumes = launch.volumes(cs, here, config_file)
    digest = hashlib.sha256()
    for source in sorted(volumes):
        if Path(source).is_file():
            digest.update(source.encode() + b"\0" + Path(source).read_bytes())
    return stack.ServiceSpec(SERVICE, cfg.image(cs.component), dict(
        command=list(cs.command), user=cs.user, volumes=volumes,
        environment={"SUBSCRIBER_INPUTS_SHA256": digest.hexdigest()}), network=cs.networks[0])


def start(cfg: Config) -> str:
    """Start (or keep) the subscriber and wait until it consumes the queue; "started" or "running".
    ServiceError with its last log lines when it does not (the broker not running, a setting wrong)."""
    if docker_api.image_or_none(cfg.image("sync")) is None:
        raise ServiceError(f"image {cfg.image('sync')} is missing; run `invoke build` first")
    state = stack.start_one(cfg, spec(cfg))
    name = stack.container_name(cfg, SERVICE)

    def consuming() -> bool:
        c = docker_api.container_or_none(name)
        if c is None or c.status in ("exited", "dead"):
            raise failed(f"{name} exited")
        return READY in c.logs(stdout=False, stderr=True).decode(errors="replace")

    def failed(why: str) -> ServiceError:
        c = docker_api.container_or_none(name)
        logs = "" if c is None else containers.host_paths(c.logs(tail=30).decode(errors="replace"),
                                                          containers.mounts(c))
        return ServiceError(f"{why}; its last log lines:\n{logs}")

    poll.until(consuming, f"{name} to consume the broker's queue", cfg.host.health_timeout, interval=0.25,
               error=lambda message: failed(message))
    return state


def stop(cfg: Config) -> list[str]:
    """Stop and remove the subscriber's container (its unacknowledged messages go back to the queue)."""
    return stack.stop(cfg, (SERVICE,))


def service(cfg: Config, stop_it: bool = False) -> SubscriberService:
    """`invoke subscribe [--stop]`."""
    name = stack.container_name(cfg, SERVICE)
    if stop_it:
        stop(cfg)
        return SubscriberService("stopped", name)
    return SubscriberService(start(cfg), name)
