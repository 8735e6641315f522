"""Running a spec (dr/launch.py) without Docker: run_tool is replaced by a recorder that looks at what the
container would get while it runs."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from common import config, db, secrets
from common.errors import SecretError
from dr import containers, contract, launch

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="private copies are handed over with chown: root")

IMPORTER_PW = db.password_name("importer")


@pytest.fixture
def cfg(tmp_path):
    c = config.load(overrides={"instance": "inst", "data_root": str(tmp_path / "data"),
                               "secrets_dir": str(tmp_path / "secrets"), "cache_dir": str(tmp_path / "cache"),
                               "backup.repository": str(tmp_path / "repo")})
    secrets.put(c.secrets_dir, IMPORTER_PW, "pw-xyzzy")
    secrets.put(c.secrets_dir, secrets.RESTIC_PASSWORD, "restic-xyzzy")
    return c


@pytest.fixture
def recorder(monkeypatch):
    seen = {}

    def run_tool(cfg, component, cmd, volumes, network, label, environment=None, hostname=None, user=None,
                 binds=None):
        files = {}
        for host, v in volumes.items():
            p = Path(host)
            if p.is_file():
                st = p.stat()
                files[v["bind"]] = (p.read_text(), st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), v["mode"], host)
        seen.update(component=component, cmd=cmd, volumes=volumes, network=network, user=user, binds=binds,
                    files=files, hostname=hostname)
        return 0, '{"ok": true}'
    monkeypatch.setattr(containers, "run_tool", run_tool)
    return seen


def test_the_importer_gets_a_private_copy_of_the_password_and_its_config(cfg, recorder, tmp_path):
    (tmp_path / "data" / "raw").mkdir(parents=True)
    assert launch.run_spec(cfg, contract.stage_spec(cfg, "importer")) == (0, '{"ok": true}')
    assert recorder["user"] == "990:990" and recorder["network"] == ["inst"]
    text, uid, gid, mode, bind_mode, host = recorder["files"]["/run/secrets/db-importer-password"]
    assert (text, uid, gid, mode, bind_mode) == ("pw-xyzzy\n", 990, 990, 0o400, "ro")
    assert host != str(secrets.path(cfg.secrets_dir, IMPORTER_PW)) and not Path(host).exists()  # removed
    original = os.stat(secrets.path(cfg.secrets_dir, IMPORTER_PW))
    assert (original.st_uid, stat.S_IMODE(original.st_mode)) == (0, 0o600)
    toml, *_ = recorder["files"][contract.CONFIG_PATH]
    assert "pw-xyzzy" not in toml and 'host = "inst-db"' in toml
    assert recorder["binds"]["/run/secrets/db-importer-password"] == str(secrets.path(cfg.secrets_dir, IMPORTER_PW))
    assert os.stat(tmp_path / "data" / "raw").st_uid == 990  # the data root was handed over


def test_sanitize_runs_without_network(cfg, recorder):
    launch.run_spec(cfg, contract.stage_spec(cfg, "sanitize"))
    assert recorder["network"] == containers.NO_NETWORK and recorder["component"] == "sanitizer"
    assert set(recorder["files"]) == {contract.CONFIG_PATH}


def test_backup_runs_as_root_with_the_secret_files_themselves(cfg, recorder, tmp_path):
    launch.run_spec(cfg, contract.backup_spec(cfg, "list", "h"))
    assert recorder["user"] == "0:0" and recorder["network"] == []
    assert recorder["files"]["/run/secrets/restic-password"][5] == str(secrets.path(cfg.secrets_dir,
                                                                                   "restic-password"))
    assert stat.S_IMODE(os.stat(tmp_path / "repo").st_mode) == 0o700  # a local repository is made private
    assert (tmp_path / "cache" / "restic").is_dir()
    assert not (tmp_path / "data").exists()  # list does not touch the data root


def test_a_missing_secret_stops_before_anything_runs(cfg, recorder):
    os.unlink(secrets.path(cfg.secrets_dir, IMPORTER_PW))
    with pytest.raises(SecretError, match="db-importer-password"):
        launch.run_spec(cfg, contract.stage_spec(cfg, "importer"))
    assert recorder == {}
