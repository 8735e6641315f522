"""`invoke subscribe`: the services that take a report as it arrives, each a stage's container run for good
(docs/broker.md): the subscriber (stages/subscribe.py in the sync image: pulls what each claim check announces,
dr/jobs/contract.subscriber_spec) and sanitize and the importer in follow mode (stages/follow.py: a run whenever
inputs wait, contract.follower_spec), so that an announced report reaches the archive and the database within
seconds. The scheduled pipeline stays as the safety net: its stage runs wait for the followers' and find what
they left.

A stage container's secrets are private copies made for its run and removed after it; these run for good, so
their copies (owned by 990, 0400) and their configuration files are kept in <secrets_dir>/.<service>/, made
again at every start. Their digest is in the container's environment: a changed key, password or setting
replaces the container (stack.start_one), an unchanged one keeps it. The data root is handed to the stages'
user first (dr/jobs/ownership.py), as before every stage container.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from common import poll
from common.config import Config
from common.errors import ServiceError
from common.records import Record
from dr.engine import containers, docker_api
from dr.jobs import contract, launch
from dr.services import stack

SERVICE = stack.SUBSCRIBER
READY = {SERVICE: "consuming", **{f"follow-{st}": "following" for st in contract.FOLLOWERS}}  # their log lines


@dataclass
class SubscriberService(Record):
    """The arrival services' containers and their state: "started" or "running" after start (the subscriber's
    first), "stopped" after stop."""
    state: str
    container: str
    followers: list[str] = field(default_factory=list)

    def render(self) -> str:
        if self.state == "stopped":
            return f"subscriber stopped ({', '.join([self.container, *self.followers])} removed)"
        return (f"subscriber {self.state}: {self.container} consumes the broker's queue; "
                f"{', '.join(self.followers)} sanitize and import what arrives")


def services() -> tuple[str, ...]:
    """The followers, then the subscriber (which feeds them)."""
    return (*(f"follow-{st}" for st in contract.FOLLOWERS), SERVICE)


def container_spec(cfg: Config, service: str) -> contract.ContainerSpec:
    if service == SERVICE:
        return contract.subscriber_spec(cfg)
    return contract.follower_spec(cfg, service.removeprefix("follow-"))


def folder(cfg: Config, service: str = SERVICE) -> Path:
    return cfg.secrets_path / f".{service}"


def spec(cfg: Config, service: str = SERVICE) -> stack.ServiceSpec:
    """The service's container, its private copies and configuration file written (the data root handed over)."""
    cs = container_spec(cfg, service)
    launch.prepare(cs)
    here = folder(cfg, service)
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
    return stack.ServiceSpec(service, cfg.image(cs.component), dict(
        command=list(cs.command), user=cs.user, volumes=volumes,
        environment={"SERVICE_INPUTS_SHA256": digest.hexdigest()}),
        network=cs.networks[0] if cs.networks else stack.NO_NETWORK)


def start_one(cfg: Config, service: str) -> str:
    """Start (or keep) one of the services and wait until its log says it works; "started" or "running".
    ServiceError with its last log lines when it does not (the broker not running, a setting wrong)."""
    cs = container_spec(cfg, service)
    if docker_api.image_or_none(cfg.image(cs.component)) is None:
        raise ServiceError(f"image {cfg.image(cs.component)} is missing; run `invoke build` first")
    state = stack.start_one(cfg, spec(cfg, service))
    name = stack.container_name(cfg, service)

    def ready() -> bool:
        c = docker_api.container_or_none(name)
        if c is None or c.status in ("exited", "dead"):
            raise failed(f"{name} exited")
        return READY[service] in c.logs(stdout=False, stderr=True).decode(errors="replace")

    def failed(why: str) -> ServiceError:
        c = docker_api.container_or_none(name)
        logs = "" if c is None else containers.host_paths(c.logs(tail=30).decode(errors="replace"),
                                                          containers.mounts(c))
        return ServiceError(f"{why}; its last log lines:\n{logs}")

    poll.until(ready, f"{name} to start its work", cfg.host.health_timeout, interval=0.25,
               error=lambda message: failed(message))
    return state


def start(cfg: Config) -> str:
    """The followers, then the subscriber; the subscriber's state."""
    for service in services():
        state = start_one(cfg, service)
    return state


def stop(cfg: Config) -> list[str]:
    """Stop and remove the subscriber (its unacknowledged messages go back to the queue), then the followers
    (each between two runs: SIGTERM)."""
    return stack.stop(cfg, tuple(reversed(services())))


def service(cfg: Config, stop_it: bool = False) -> SubscriberService:
    """`invoke subscribe [--stop]`."""
    name = stack.container_name(cfg, SERVICE)
    followers = [stack.container_name(cfg, s) for s in services() if s != SERVICE]
    if stop_it:
        stop(cfg)
        return SubscriberService("stopped", name, followers)
    return SubscriberService(start(cfg), name, followers)
