"""Running a spec (dr/jobs/launch.py) up to the container: what it prepares on the host (folders, secrets checked,
the data root handed over), the volumes it gives (private copies of the secrets for a container not run as
root), its network. No Docker here: launch.run_spec on the real Engine, with what the container then sees, is
in tests/integration/test_run_tool.py."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from common import config, secrets
from common.errors import SecretError
from database import db
from dr.engine import containers
from dr.jobs import contract, launch

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


def given(spec, workdir: Path) -> dict[str, tuple]:
    """The files among spec's volumes, by the path the container sees: (content, uid, gid, mode, bind mode,
    host path)."""
    workdir.mkdir()
    config_file = workdir / "config.toml"
    config_file.write_text("")
    files = {}
    for host, v in launch.volumes(spec, workdir, config_file).items():
        p = Path(host)
        if p.is_file():
            st = p.stat()
            files[v["bind"]] = (p.read_text(), st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), v["mode"], host)
    return files


def test_the_importer_gets_a_private_copy_of_the_password_and_its_config(cfg, tmp_path):
    (tmp_path / "data" / "raw").mkdir(parents=True)
    spec = contract.stage_spec(cfg, "importer")
    assert spec.user == "990:990" and launch.network(spec) == ["inst"]
    launch.prepare(spec)
    assert os.stat(tmp_path / "data" / "raw").st_uid == 990  # the data root was handed over
    files = given(spec, tmp_path / "work")
    text, uid, gid, mode, bind_mode, host = files["/run/secrets/db-importer-password"]
    assert (text, uid, gid, mode, bind_mode) == ("pw-xyzzy\n", 990, 990, 0o400, "ro")
    assert Path(host).parent.parent == tmp_path / "work"  # a copy in the run's folder, not the original
    original = os.stat(secrets.path(cfg.secrets_dir, IMPORTER_PW))
    assert (original.st_uid, stat.S_IMODE(original.st_mode)) == (0, 0o600)
    assert files[contract.CONFIG_PATH][4] == "ro"
    toml = contract.container_config(cfg, spec)
    assert "pw-xyzzy" not in toml and 'host = "inst-db"' in toml
    assert spec.binds()["/run/secrets/db-importer-password"] == str(secrets.path(cfg.secrets_dir, IMPORTER_PW))


def test_sanitize_runs_without_network_and_gets_no_secret(cfg, tmp_path):
    spec = contract.stage_spec(cfg, "sanitize")
    assert launch.network(spec) == containers.NO_NETWORK and spec.component == "sanitizer"
    assert set(given(spec, tmp_path / "work")) == {contract.CONFIG_PATH}


def test_backup_runs_as_root_with_the_secret_files_themselves(cfg, tmp_path):
    spec = contract.backup_spec(cfg, "list", "h")
    assert spec.user == "0:0" and launch.network(spec) == []
    launch.prepare(spec)
    files = given(spec, tmp_path / "work")
    assert files["/run/secrets/restic-password"][5] == str(secrets.path(cfg.secrets_dir, "restic-password"))
    assert stat.S_IMODE(os.stat(tmp_path / "repo").st_mode) == 0o700  # a local repository is made private
    assert (tmp_path / "cache" / "restic").is_dir()
    assert not (tmp_path / "data").exists()  # list does not touch the data root


def test_a_missing_secret_stops_before_anything_runs(cfg):
    os.unlink(secrets.path(cfg.secrets_dir, IMPORTER_PW))
    with pytest.raises(SecretError, match="db-importer-password"):
        launch.run_spec(cfg, contract.stage_spec(cfg, "importer"))  # raised by prepare, before Docker is asked
