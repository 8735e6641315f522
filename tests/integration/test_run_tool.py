"""containers.run_tool on the real Docker Engine: the tool runs as the user it is given, on no network when
told, what it says names host paths, and exited containers a killed host process left are removed. And
launch.run_spec: the container gets a private copy of its secret, its own user's and read-only, removed once
it ran."""

import dataclasses
import hashlib
import logging
import os
import stat
import tempfile
from pathlib import Path

from common import config, secrets
from database import db
from dr.engine import containers, docker_api
from dr.jobs import contract, launch


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


def test_a_spec_hands_its_container_a_private_read_only_copy_of_its_secret(built, tmp_path):
    """The importer's spec (user 990, the database password) with a probe for its command: what the container
    sees at the secret's path is a copy owned by 990 with mode 0400, on a read-only mount, with the password's
    content; the original stays root's 0600; the copy is gone afterwards; the output names the host's file."""
    cfg = config.derive(built, {"instance": "aggr-launch", "data_root": str(tmp_path / "data"),
                                "secrets_dir": str(tmp_path / "secrets")})
    (tmp_path / "data").mkdir()
    secrets.put(cfg.secrets_dir, db.password_name("importer"), "pw-xyzzy")
    original = secrets.path(cfg.secrets_dir, db.password_name("importer"))
    secret = f"{contract.SECRETS}/{db.password_name('importer')}"
    script = (f"id -u; stat -c '%u %g %a' {secret}; sha256sum < {secret} | cut -d' ' -f1; "
              f"if chmod 600 {secret} 2>/dev/null; then echo writable; else echo read-only; fi; echo {secret}; "
              f"grep -c xyzzy {contract.CONFIG_PATH} || true")
    spec = dataclasses.replace(contract.stage_spec(cfg, "importer"), label="launch-probe", command=("sh", "-c", script),
                               networks=(), isolated=True)  # the instance's network is not there: no network
    runs = Path(tempfile.gettempdir())
    before = set(runs.glob("aggregator-dr-launch-probe-*"))
    code, out = launch.run_spec(cfg, spec)
    assert code == 0, out
    assert out.split("\n")[:6] == ["990", "990 990 400", hashlib.sha256(b"pw-xyzzy\n").hexdigest(), "read-only",
                                    str(original), "0"]
    st = os.stat(original)
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o600)
    assert set(runs.glob("aggregator-dr-launch-probe-*")) == before  # the run's folder, copy and all, is gone
    assert (tmp_path / "data").stat().st_uid == contract.STAGE_UID  # the data root was handed over
