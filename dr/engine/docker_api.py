"""Small helpers over the Docker SDK (the only way this project talks to the daemon)."""

from __future__ import annotations

import functools

import docker
import docker.errors

from common.errors import PreflightError

INSTANCE_LABEL = "org.aggregator-dr.instance"  # on every container of ours: whose it is


@functools.lru_cache(maxsize=1)
def client() -> docker.DockerClient:
    try:
        c = docker.from_env(timeout=600)
        c.ping()
        return c
    except docker.errors.DockerException as exc:
        raise PreflightError(f"the Docker daemon does not answer ({exc}); run `invoke bootstrap` first") from None


def image_or_none(name: str):
    try:
        return client().images.get(name)
    except docker.errors.ImageNotFound:
        return None


def container_or_none(name: str):
    try:
        return client().containers.get(name)
    except docker.errors.NotFound:
        return None


def health_check_passes(name: str) -> bool:
    """Whether the container's own HEALTHCHECK command succeeds when run now (docker exec); False for a
    container without one, or one that is gone."""
    c = container_or_none(name)
    if c is None:
        return False
    test = ((c.attrs.get("Config") or {}).get("Healthcheck") or {}).get("Test") or []
    if not test or test[0] not in ("CMD", "CMD-SHELL"):
        return False
    argv = list(test[1:]) if test[0] == "CMD" else ["/bin/sh", "-c", test[1]]
    try:
        code, _ = c.exec_run(argv)
    except docker.errors.APIError:  # not running (yet, or any more): not healthy now
        return False
    return code == 0


def ensure_network(name: str):
    nets = client().networks.list(names=[name])
    for n in nets:
        if n.name == name:
            return n
    return client().networks.create(name, driver="bridge", labels={"org.aggregator-dr.network": name})


def remove_network(name: str, leftovers_of: str | None = None) -> None:
    """Remove the network of exactly this name, if there is one (Docker's name filter matches parts).
    With leftovers_of (an instance), the containers of that instance still attached to it go first (what a
    run killed before its teardown left on a network of its own: Docker refuses to remove a network with
    endpoints); anything else attached is disconnected, not removed."""
    for n in client().networks.list(names=[name]):
        if n.name != name:
            continue
        if leftovers_of is not None:
            clear_endpoints(n, leftovers_of)
        n.remove()


def clear_endpoints(network, instance: str) -> None:
    """The containers on network labelled as instance's removed, stopped or not; the others disconnected."""
    remove_containers([f"{INSTANCE_LABEL}={instance}"], network=network.name)
    network.reload()
    for c in network.containers:
        try:
            network.disconnect(c, force=True)
        except docker.errors.NotFound:  # gone meanwhile
            pass


def remove_volume(name: str) -> None:
    try:
        client().volumes.get(name).remove(force=True)
    except docker.errors.NotFound:
        pass


def ensure_volume(name: str):
    try:
        return client().volumes.get(name)
    except docker.errors.NotFound:
        return client().volumes.create(name, labels={"org.aggregator-dr.volume": name})



def remove_containers(labels: list[str], exited_only: bool = False, network: str | None = None) -> list[str]:
    """Remove (forcibly, with their anonymous volumes) the containers carrying all these label=value
    filters, running or not unless exited_only, on network when given; returns their names. What a process
    killed before its teardown leaves behind: names that would block the next start, exited tools."""
    filters: dict = {"label": labels, **({"status": "exited"} if exited_only else {}),
                     **({"network": network} if network else {})}
    removed = []
    for c in client().containers.list(all=True, filters=filters):
        try:
            c.remove(force=True, v=True)
            removed.append(c.name)
        except docker.errors.APIError:  # removed meanwhile
            pass
    return removed


def remove_instance_containers(instance: str) -> list[str]:
    """Every container labelled as instance's, removed (remove_containers); returns their names."""
    return remove_containers([f"{INSTANCE_LABEL}={instance}"])
