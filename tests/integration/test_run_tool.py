"""containers.run_tool on the real Docker Engine: the tool runs as the user it is given, on no network when
told, what it says names host paths, and exited containers a killed host process left are removed."""

import logging

from common import config
from dr import containers, docker_api


def _tool_containers(cfg, label):
    return docker_api.client().containers.list(all=True, filters={"label": [
        f"{docker_api.INSTANCE_LABEL}={cfg.instance}", f"{containers.TOOL_LABEL}={label}"]})


def test_a_tool_runs_as_its_user_speaks_host_paths_and_leaves_nothing(built, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="aggregator-dr")
    cfg = config.derive(built, {"instance": "aggr-runtool"})
    data = tmp_path / "data"
    data.mkdir(mode=0o777)
    data.chmod(0o777)
    # What a host process killed while its tool ran leaves: an exited container of that tool.
    kwargs, _ = containers.create_args(cfg, "backup", ["true"], {}, containers.NO_NETWORK, "probe")
    docker_api.client().containers.run(detach=False, remove=False, **kwargs)
    assert len(_tool_containers(cfg, "probe")) == 1

    script = "id -u; echo writing /data/out >&2; echo x > /data/out; echo /data/out; cat /sys/class/net/*/address"
    code, out = containers.run_tool(cfg, "backup", ["sh", "-c", script], {str(data): {"bind": "/data", "mode": "rw"}},
                                    containers.NO_NETWORK, "probe", user="4321:4321")
    lines = out.split()
    assert code == 0 and lines[:2] == ["4321", f"{data}/out"]
    assert lines[2:] == ["00:00:00:00:00:00"]  # the loopback only: no network
    assert (data / "out").stat().st_uid == 4321
    assert f"[probe] writing {data}/out" in caplog.text
    assert _tool_containers(cfg, "probe") == []
