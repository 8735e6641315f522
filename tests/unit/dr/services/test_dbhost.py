"""`invoke db-host-kit` (dr/services/dbhost.py) and what `rebuild` does by host.role (dr/jobs/rebuild.py), without
Docker: the kit carries exactly what the database's host needs and never the CA's key."""

from __future__ import annotations

import stat

import pytest

from common import config, secrets
from common.errors import DrError
from database import db as dbconn
from database import pgroles
from dr.jobs import rebuild
from dr.services import certs, dbhost


@pytest.fixture
def cfg(tmp_path):
    c = config.load(overrides={"instance": "inst", "secrets_dir": str(tmp_path / "secrets"), "db.tls": True})
    for role in dbconn.ROLES:
        secrets.ensure(c.secrets_dir, dbconn.password_name(role))
    secrets.ensure(c.secrets_dir, secrets.RESTIC_PASSWORD)
    certs.make(c)  # the real openssl
    return c


def test_the_kit_holds_what_the_database_host_needs_and_never_the_ca_key(cfg, tmp_path):
    kit = tmp_path / "kit"
    written = dbhost.write_kit(cfg, kit)
    names = written.files
    assert dbhost.KitWritten.from_json(written.to_json()) == written
    assert written.folder == str(kit) and written.render().startswith(f"10 files in {kit}: ")
    found = sorted(str(p.relative_to(kit)) for p in kit.rglob("*") if p.is_file())
    assert found == sorted(names) == sorted(
        [dbconn.password_name(r) for r in dbconn.ROLES] + ["restic-password", "tls/ca.crt", "tls/db.crt", "tls/db.key",
                                                           "tls/postgres.crt", "tls/postgres.key"])
    assert not any("ca.key" in n for n in names) and not (kit / "tls" / "ca").exists()
    assert stat.S_IMODE(kit.stat().st_mode) == 0o700
    for p in kit.rglob("*"):
        if p.is_file():
            assert stat.S_IMODE(p.stat().st_mode) == (0o644 if p.suffix == ".crt" else 0o600), p
    assert (kit / "tls" / "db.key").read_bytes() == certs.key_path(cfg, "db").read_bytes()
    kit_cfg = config.derive(cfg, {"secrets_dir": str(kit), "host.role": "database"})
    assert "present and valid" in certs.check_present(kit_cfg)  # what the database host's rebuild checks


def test_no_kit_over_an_existing_folder_and_none_half_made(cfg, tmp_path):
    (tmp_path / "kit").mkdir()
    with pytest.raises(DrError, match="exists already"):
        dbhost.write_kit(cfg, tmp_path / "kit")
    certs.key_path(cfg, "postgres").unlink()
    with pytest.raises(DrError, match=r"missing: .*postgres\.key"):
        dbhost.write_kit(cfg, tmp_path / "other")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kit", "secrets"]  # nothing half-written


def test_a_database_host_without_its_certificates_says_so(cfg, tmp_path):
    kit_cfg = config.derive(cfg, {"secrets_dir": str(tmp_path / "empty"), "host.role": "database"})
    with pytest.raises(DrError, match=r"(?s)not usable on this host .*db\.crt is missing"):
        certs.check_present(kit_cfg)


def test_rebuild_role_must_agree_with_the_configuration(cfg):
    rebuild.check_role(cfg, None)
    rebuild.check_role(cfg, "all")
    with pytest.raises(DrError, match='says host.role = "all": set host.role = "database"'):
        rebuild.check_role(cfg, "database")
    with pytest.raises(DrError, match="must be one of"):
        rebuild.check_role(cfg, "db")


def test_each_role_restores_its_part_of_a_set(cfg):
    assert rebuild.parts_of(cfg) == (True, True)
    assert rebuild.parts_of(config.derive(cfg, {"host.role": "database"})) == (False, True)
    assert rebuild.parts_of(config.derive(cfg, {"host.role": "aggregator", "db.host": "db.example.org"})) == \
        (True, False)


def test_rotate_secrets_writes_a_kit_only_on_the_aggregators_host_and_only_into_a_new_folder(cfg, tmp_path):
    """Refused before anything is rotated (no Docker is reached): --kit on a host that is not the
    Aggregator's, or naming a folder that exists."""
    from dr.jobs import rotate

    app = config.derive(cfg, {"host.role": "aggregator", "db.host": "db.example.org"})
    (tmp_path / "there").mkdir()
    with pytest.raises(DrError, match="exists already: name a new folder for the kit .nothing was rotated"):
        rotate.rotate(app, kit=str(tmp_path / "there"))
    for other in (cfg, config.derive(cfg, {"host.role": "database"})):
        with pytest.raises(DrError, match="--kit is for the Aggregator's host"):
            rotate.rotate(other, kit=str(tmp_path / "new"))
    assert not (tmp_path / "new").exists()
    assert not list(app.secrets_path.glob("*" + pgroles.PENDING))
