"""The drill sandbox's pure parts (dr/drills/sandbox.py): testcontainers configured explicitly and put back, never
through the environment; the secrets a sandbox gets; its database container and configuration."""

import os

import pytest
from testcontainers.core.config import ConnectionMode, testcontainers_config

from common import config, secrets
from database import db
from dr.drills import sandbox
from dr.services import stack

NAMES = ("ryuk_disabled", "hub_image_name_prefix", "connection_mode_override", "tc_host_override")


def current():
    return {name: getattr(testcontainers_config, name) for name in NAMES}


def test_testcontainers_is_configured_inside_and_put_back_after():
    before, env = current(), dict(os.environ)
    with sandbox.testcontainers_settings() as c:
        assert c is testcontainers_config
        assert current() == {"ryuk_disabled": True, "hub_image_name_prefix": "",
                             "connection_mode_override": ConnectionMode.docker_host, "tc_host_override": "127.0.0.1"}
        assert dict(os.environ) == env  # nothing through the process's environment
    assert current() == before
    assert dict(os.environ) == env


def test_the_settings_are_put_back_after_an_error_too():
    before = current()
    with pytest.raises(RuntimeError), sandbox.testcontainers_settings({"tc_host_override": "192.0.2.1",
                                                                       "ryuk_disabled": False}):
        assert testcontainers_config.tc_host_override == "192.0.2.1"
        assert testcontainers_config.ryuk_disabled is False
        raise RuntimeError("boom")
    assert current() == before


def test_the_sandbox_gets_the_repository_passwords_and_fresh_database_passwords(tmp_path):
    live = tmp_path / "live"
    secrets.put(live, secrets.RESTIC_PASSWORD, "repo-pw")
    for role in db.ROLES:
        secrets.put(live, db.password_name(role), f"live-{role}-pw")
    sandbox.copy_secrets(live, tmp_path / "sandbox")
    assert sorted(p.name for p in (tmp_path / "sandbox").iterdir()) == [secrets.RESTIC_PASSWORD]
    assert secrets.read(tmp_path / "sandbox", secrets.RESTIC_PASSWORD) == "repo-pw"
    cfg = config.load(overrides={"instance": "live", "secrets_dir": str(live)})
    sb_cfg = sandbox.sandbox_config(cfg, "live-drill", tmp_path / "w", tmp_path / "sandbox")
    stack.postgres_spec(sb_cfg)  # the database's spec makes the role passwords it mounts
    for role in db.ROLES:
        assert secrets.read(tmp_path / "sandbox", db.password_name(role)) != f"live-{role}-pw"


def test_the_database_containers_and_the_configuration_are_the_sandbox_own(tmp_path):
    cfg = config.load(overrides={"instance": "live", "data_root": str(tmp_path / "live-data")})
    derived = sandbox.sandbox_config(cfg, "live-drill", tmp_path / "w", tmp_path / "w" / "secrets", 41234)
    pg = sandbox.container_for(derived, stack.postgres_spec(derived))
    ferret = sandbox.container_for(derived, stack.db_spec(derived))
    assert pg.image == cfg.image("postgres") and ferret.image == cfg.image("db")
    assert (pg._name, ferret._name) == ("live-drill-postgres", "live-drill-db")
    assert ferret.ports == {"27017/tcp": ("127.0.0.1", None)} and pg.ports == {}  # loopback only, a free port
    assert pg._kwargs["network"] == ferret._kwargs["network"] == "live-drill"
    assert ferret.env == {"PG_HOST": "live-drill-postgres"}
    assert pg.volumes["live-drill-pgdata"] == {"bind": "/var/lib/postgresql/volume", "mode": "rw"}
    assert all(str(tmp_path / "w" / "secrets") in v for v in pg.volumes if v != "live-drill-pgdata")
    assert derived.instance == "live-drill" and derived.data_root == str(tmp_path / "w" / "data")
    assert (derived.db.host, derived.db.port) == ("127.0.0.1", 41234)
    assert derived.secrets_dir == str(tmp_path / "w" / "secrets") and not derived.collectors
    assert cfg.instance == "live"  # the live configuration is untouched
