"""Running one of our tools in its image: `docker run` with the given mounts and network, stderr streamed
as progress, stdout returned (a JSON summary by convention), the container removed afterwards.

The tool only knows the paths it sees inside its container (/repo, /data, /run/secrets/..., /cache); what it
says goes to an operator on the host. So everything it hands back (its log lines and its stdout) names the
host's paths instead: each bind path is replaced by the host path mounted there (host_paths), and a URL never
shows credentials. Service containers' log lines quoted in errors get the same (mounts gives their binds).
"""

from __future__ import annotations

import json
import re

import docker.errors

from common import log
from common.config import Config
from common.errors import DrError
from dr.engine import docker_api

_log = log.get("containers")
# user[:password]@ right after a URL's scheme
_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")


def host_paths(text: str, binds: dict[str, str]) -> str:
    """text with every container path in binds ({bind path: host path}) replaced by its host path, and
    credentials removed from URLs. A bind path is replaced only as a whole path or a path's beginning:
    /data in "/data", "/data/raw/x" or "at /data." but not in "/database" or "/srv/data"; the longest bind
    path wins (/run/secrets/db-password before /run/secrets), and a replacement is never replaced again."""
    text = _CREDENTIALS.sub("", text)
    if not binds:
        return text
    alternatives = "|".join(re.escape(b) for b in sorted(binds, key=len, reverse=True))
    pattern = re.compile(rf"(?<![\w.~/-])(?:{alternatives})(?![\w-]|\.[\w-])")
    return pattern.sub(lambda m: binds[m.group(0)], text)


def bind_map(volumes: dict) -> dict[str, str]:
    """{bind path: host path} of a docker volumes argument, leaving out paths mounted where they are."""
    return {spec["bind"]: host for host, spec in volumes.items() if spec["bind"] != host}


def mounts(container) -> dict[str, str]:
    """{bind path: host path} of a container's bind mounts, as Docker reports them (for its log lines)."""
    return {m["Destination"]: m["Source"] for m in container.attrs.get("Mounts", [])
            if m.get("Type") == "bind" and m["Destination"] != m["Source"]}


def host_output(out: str, binds: dict[str, str]) -> str:
    """The tool's stdout with host paths: in every string of a JSON result (so the result stays valid JSON
    whatever the host paths hold), else in the text."""
    try:
        result = json.loads(out)
    except ValueError:
        return host_paths(out, binds)

    def walk(value):
        if isinstance(value, str):
            return host_paths(value, binds)
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, dict):
            return {walk(k): walk(v) for k, v in value.items()}
        return value

    return json.dumps(walk(result), indent=2)


NO_NETWORK = "none"
TOOL_LABEL = "org.aggregator-dr.tool"


def _remove_exited(cfg: Config, label: str) -> None:
    """Remove the exited containers of this tool and instance: a host process killed while its tool ran
    never reached its own removal, and the container stayed behind once it ended."""
    docker_api.remove_containers([f"{docker_api.INSTANCE_LABEL}={cfg.instance}", f"{TOOL_LABEL}={label}"],
                                 exited_only=True)


def create_args(cfg: Config, component: str, cmd: list[str], volumes: dict, network: str | list[str] | None,
                label: str, environment: dict | None = None, hostname: str | None = None,
                user: str | None = None) -> tuple[dict, list[str]]:
    """(the keyword arguments of containers.create, the networks to connect it to before it starts) for
    run_tool's arguments (see there); pure, so that it is tested apart from Docker."""
    networks = [network] if isinstance(network, str) else list(network or [])
    if networks == [NO_NETWORK]:
        where, extra = {"network_mode": NO_NETWORK}, []
    else:
        where, extra = {"network": networks[0] if networks else None}, networks[1:]
    if user:
        where["user"] = user
    kwargs = dict(image=cfg.image(component), command=cmd, volumes=volumes, environment=environment or {},
                  hostname=hostname, labels={docker_api.INSTANCE_LABEL: cfg.instance, TOOL_LABEL: label}, **where)
    return kwargs, extra


def run_tool(cfg: Config, component: str, cmd: list[str], volumes: dict, network: str | list[str] | None,
             label: str, environment: dict | None = None, hostname: str | None = None, user: str | None = None,
             binds: dict[str, str] | None = None) -> tuple[int, str]:
    """(exit code, stdout) of cmd run in the component's image; network: one name, or several (the container
    joins all of them before it starts), None for Docker's default bridge, or NO_NETWORK for none at all;
    user: uid:gid to run as (None: the image's user). Its log lines and stdout name host paths (host_paths):
    binds ({container path: host path}) when given, else the volumes' own (bind_map)."""
    kwargs, extra = create_args(cfg, component, cmd, volumes, network, label, environment, hostname, user)
    if docker_api.image_or_none(kwargs["image"]) is None:
        raise DrError(f"image {kwargs['image']} is missing; run `invoke build` first")
    binds = bind_map(volumes) if binds is None else binds
    _remove_exited(cfg, label)
    container = docker_api.client().containers.create(**kwargs)
    try:
        for name in extra:
            docker_api.client().networks.get(name).connect(container)
        container.start()
        for line in container.logs(stream=True, follow=True, stdout=False, stderr=True):
            _log.info("  [%s] %s", label, host_paths(line.decode(errors="replace").rstrip(), binds))
        code = container.wait()["StatusCode"]
        out = container.logs(stdout=True, stderr=False).decode(errors="replace")
    finally:
        try:
            container.remove(force=True)
        except docker.errors.APIError:
            pass
    return code, host_output(out, binds)
