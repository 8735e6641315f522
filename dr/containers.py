"""Running one of our tools in its image: `docker run` with the given mounts and network, stderr streamed
as progress, stdout returned (a JSON summary by convention), the container removed afterwards."""

from __future__ import annotations

import docker.errors

from dr import docker_api, log
from dr.config import Config
from dr.errors import DrError

_log = log.get("containers")


def run_tool(cfg: Config, component: str, cmd: list[str], volumes: dict, network: str | list[str] | None,
             label: str, environment: dict | None = None, hostname: str | None = None) -> tuple[int, str]:
    """(exit code, stdout) of cmd run in the component's image; network: one name, or several (the container
    joins all of them before it starts), or None for Docker's default bridge."""
    image = cfg.image(component)
    if docker_api.image_or_none(image) is None:
        raise DrError(f"image {image} is missing; run `invoke build` first")
    networks = [network] if isinstance(network, str) else list(network or [])
    container = docker_api.client().containers.create(
        image, cmd, volumes=volumes, network=networks[0] if networks else None, environment=environment or {},
        hostname=hostname,
        labels={"org.aggregator-dr.instance": cfg.instance, "org.aggregator-dr.tool": label},
    )
    try:
        for extra in networks[1:]:
            docker_api.client().networks.get(extra).connect(container)
        container.start()
        for line in container.logs(stream=True, follow=True, stdout=False, stderr=True):
            _log.info("  [%s] %s", label, line.decode(errors="replace").rstrip())
        code = container.wait()["StatusCode"]
        out = container.logs(stdout=True, stderr=False).decode(errors="replace")
    finally:
        try:
            container.remove(force=True)
        except docker.errors.APIError:
            pass
    return code, out
