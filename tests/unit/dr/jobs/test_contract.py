"""What each container gets (dr/jobs/contract.py), without Docker: mounts, secrets, networks, user, and the one
configuration file each container reads."""

from __future__ import annotations

import pytest

from common import config
from common.errors import ConfigError, DrError
from database import db as dbconn
from dr.jobs import contract

COLLECTOR = {"name": "c1", "host": "collector.example", "port": 22, "user": "collector",
             "key_file": "/etc/aggregator-dr/keys/c1", "host_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5",
             "archive_path": "/srv/archive"}


@pytest.fixture
def cfg(tmp_path):
    return config.load(overrides={
        "instance": "inst", "data_root": str(tmp_path / "data"), "secrets_dir": str(tmp_path / "secrets"),
        "cache_dir": str(tmp_path / "cache"), "backup.repository": str(tmp_path / "repo"),
        "offsite.repository": "rest:http://offsite:8000/aggr", "offsite.network": "inst-offsite",
        "collectors": [COLLECTOR], "pipeline.workers": 3, "db.database": "aggr"})


def mounts(spec):
    return {m.target: (m.source, m.mode) for m in spec.mounts}


def secret_targets(spec):
    return sorted(s.target for s in spec.secrets)


def loaded(spec, cfg, tmp_path):
    path = tmp_path / f"{spec.label}.toml"
    path.write_text(contract.container_config(cfg, spec))
    return config.load(path), path.read_text()


def test_importer_gets_the_importer_role_password_and_the_instance_network(cfg):
    spec = contract.stage_spec(cfg, "importer")
    assert spec.component == "importer" and spec.user == "990:990" and not spec.runs_as_root
    assert secret_targets(spec) == ["/run/secrets/db-importer-password"]
    assert spec.secrets[0].source == f"{cfg.secrets_dir}/db-importer-password"
    assert spec.networks == ("inst",) and not spec.isolated
    assert mounts(spec) == {"/data": (cfg.data_root, "rw")}
    assert spec.command == ("python3", "-m", "stages.importer", "--json", "--config", contract.CONFIG_PATH)


def test_sanitize_gets_no_secret_and_no_network(cfg):
    spec = contract.stage_spec(cfg, "sanitize")
    assert spec.component == "sanitizer" and spec.user == "990:990"
    assert spec.secrets == () and spec.networks == () and spec.isolated
    assert mounts(spec) == {"/data": (cfg.data_root, "rw")}


def test_sanitize_gets_the_bridge_database_as_a_private_file(tmp_path):
    cfg = config.load(overrides={"data_root": str(tmp_path / "d"), "pipeline.bridge_db": "/srv/bridges.json"})
    spec = contract.stage_spec(cfg, "sanitize")
    assert [(s.source, s.target) for s in spec.secrets] == [("/srv/bridges.json", "/run/bridge_db.json")]
    derived, _ = loaded(spec, cfg, tmp_path)
    assert derived.pipeline.bridge_db == "/run/bridge_db.json"


def test_sync_gets_its_collectors_keys_and_the_instance_network(cfg, tmp_path):
    spec = contract.stage_spec(cfg, "sync")
    assert spec.user == "990:990" and spec.networks == ("inst",)
    assert [(s.source, s.target) for s in spec.secrets] == [(COLLECTOR["key_file"], "/run/secrets/collector-c1")]
    derived, text = loaded(spec, cfg, tmp_path)
    assert derived.collectors[0].key_file == "/run/secrets/collector-c1"
    assert derived.collectors[0].host == "collector.example" and derived.data_root == "/data"
    assert "[db]" not in text and "[backup]" not in text


def test_the_subscriber_gets_syncs_view_and_the_brokers_password_and_ca_on_the_instance_network(cfg, tmp_path):
    cfg = config.derive(cfg, {"broker.host": "aggregator.example", "broker.port": 15671})  # for the collectors
    with pytest.raises(DrError, match="invoke certs"):
        contract.subscriber_spec(cfg)
    ca = tmp_path / "secrets" / "tls" / "ca.crt"
    ca.parent.mkdir(parents=True)
    ca.write_text("ca")
    spec = contract.subscriber_spec(cfg)
    assert spec.component == "sync" and spec.user == "990:990" and spec.networks == ("inst",)
    assert spec.command == ("python3", "-m", "stages.subscribe", "--config", contract.CONFIG_PATH)
    assert mounts(spec) == {"/data": (cfg.data_root, "rw")}
    assert [(s.source, s.target) for s in spec.secrets] == [
        (COLLECTOR["key_file"], "/run/secrets/collector-c1"),
        (f"{cfg.secrets_dir}/broker-aggregator-password", "/run/secrets/broker-aggregator-password"),
        (str(ca), contract.BROKER_CA)]
    derived, text = loaded(spec, cfg, tmp_path)
    assert (derived.broker.host, derived.broker.port, derived.broker.ca_file) == ("inst-broker", 5671,
                                                                                  contract.BROKER_CA)
    assert derived.secrets_dir == "/run/secrets" and derived.collectors[0].key_file == "/run/secrets/collector-c1"
    assert derived.instance == "inst" and "[db]" not in text


def test_sync_without_collectors_is_refused(tmp_path):
    with pytest.raises(DrError, match="no collectors"):
        contract.stage_spec(config.load(overrides={"data_root": str(tmp_path)}), "sync")


def test_unknown_stage_and_action_are_refused(cfg):
    with pytest.raises(DrError, match="unknown stage"):
        contract.stage_spec(cfg, "nope")
    with pytest.raises(DrError, match="unknown snapshot action"):
        contract.backup_spec(cfg, "nope", "h")


def test_stage_configs_hold_only_what_the_stage_needs(cfg, tmp_path):
    sanitize, text = loaded(contract.stage_spec(cfg, "sanitize"), cfg, tmp_path)
    assert sanitize.data_root == "/data" and sanitize.pipeline.workers == 3
    for section in ("[db]", "[backup]", "[offsite]", "[[collectors]]", "secrets_dir", "[sync]"):
        assert section not in text
    importer, text = loaded(contract.stage_spec(cfg, "importer"), cfg, tmp_path)
    assert (importer.db.host, importer.db.port, importer.db.database) == ("inst-db", 27017, "aggr")
    assert importer.secrets_dir == "/run/secrets" and importer.pipeline.workers == 3
    assert "[[collectors]]" not in text and "[backup]" not in text


def test_take_mounts_the_cut_where_the_data_root_was_and_artifacts_ro_when_they_exist(cfg):
    spec = contract.backup_spec(cfg, "take", "host1", artifacts=True)
    assert spec.user == "0:0" and spec.runs_as_root and spec.hostname == "aggregator-dr-backup"
    assert mounts(spec) == {"/data": (f"{cfg.data_root}/.cut/tree", "rw"), "/data-live": (cfg.data_root, "rw"),
                            "/artifacts": (f"{cfg.cache_dir}/go", "ro"),
                            "/cache/restic": (f"{cfg.cache_dir}/restic", "rw"), "/repo": (cfg.backup.repository, "rw")}
    assert dict(spec.config_values)["data_root"] == "/data-live"
    assert secret_targets(spec) == ["/run/secrets/db-backup-password", "/run/secrets/restic-password"]
    assert spec.networks == ("inst",)
    assert "/artifacts" not in mounts(contract.backup_spec(cfg, "take", "host1", artifacts=False))
    assert spec.command[:6] == ("python3", "-m", "snapshots.cli", "take", "--host", "host1")
    assert spec.command[-4:] == ("--cut-view", "/data", "--config", contract.CONFIG_PATH)
    assert "--set" not in spec.command


def test_take_without_the_cut_mounts_the_data_root_at_data(cfg):
    cfg = config.derive(cfg, {"backup.cut": False})
    spec = contract.backup_spec(cfg, "take", "host1", artifacts=False)
    assert mounts(spec)["/data"] == (cfg.data_root, "rw") and "/data-live" not in mounts(spec)
    assert dict(spec.config_values)["data_root"] == "/data" and "--cut-view" not in spec.command


def test_take_asks_the_host_whether_artifacts_exist(cfg):
    assert "/artifacts" not in mounts(contract.backup_spec(cfg, "take", "h"))
    (cfg.cache_path / "go").mkdir(parents=True)
    assert "/artifacts" in mounts(contract.backup_spec(cfg, "take", "h"))


@pytest.mark.parametrize("action", ["init", "list", "forget", "check"])
def test_repository_actions_get_no_data_no_db_and_the_default_bridge(cfg, action):
    spec = contract.backup_spec(cfg, action, "h")
    assert set(mounts(spec)) == {"/cache/restic", "/repo"}
    assert secret_targets(spec) == ["/run/secrets/restic-password"]
    assert spec.networks == () and not spec.isolated


@pytest.mark.parametrize("action", ["init", "list", "forget", "check", "restore"])
def test_offsite_actions_get_the_offsite_network_and_both_offsite_secrets(cfg, action, tmp_path):
    spec = contract.backup_spec(cfg, action, "h", offsite=True, files=False, db=False)
    assert spec.networks == ("inst-offsite",)
    assert secret_targets(spec) == ["/run/secrets/offsite-http-password", "/run/secrets/offsite-restic-password"]
    assert "/repo" not in mounts(spec) and "--offsite" in spec.command
    derived, _ = loaded(spec, cfg, tmp_path)
    assert derived.offsite.repository == "rest:http://offsite:8000/aggr" and derived.offsite.user == "aggregator"


def test_copy_uses_both_repositories(cfg):
    spec = contract.backup_spec(cfg, "copy", "h")
    assert secret_targets(spec) == ["/run/secrets/offsite-http-password", "/run/secrets/offsite-restic-password",
                                    "/run/secrets/restic-password"]
    assert "/repo" in mounts(spec) and spec.networks == ("inst-offsite",) and "--offsite" not in spec.command
    assert mounts(spec)["/data"] == (str(cfg.data_root_path), "rw")  # the journal, and releases/ to write


def test_a_release_list_is_asked_for_as_an_extra_argument(cfg):
    spec = contract.backup_spec(cfg, "take", "h", extra=("--release-list",))
    assert spec.command[-3:] == ("--release-list", "--config", contract.CONFIG_PATH)


def test_offsite_actions_need_an_offsite_repository(tmp_path):
    cfg = config.load(overrides={"data_root": str(tmp_path)})
    with pytest.raises(DrError, match="no off-site repository"):
        contract.backup_spec(cfg, "copy", "h")
    assert contract.backup_spec(cfg, "list", "h").networks == ()


def test_a_local_repository_is_mounted_at_repo_a_rest_url_is_not(cfg, tmp_path):
    local = contract.backup_spec(cfg, "list", "h")
    assert mounts(local)["/repo"] == (cfg.backup.repository, "rw")
    assert next(m for m in local.mounts if m.target == "/repo").create == 0o700
    derived, _ = loaded(local, cfg, tmp_path)
    assert derived.backup.repository == "/repo"
    remote_cfg = config.derive(cfg, {"backup.repository": "rest:http://u:p@rs:8000/x"})
    remote = contract.backup_spec(remote_cfg, "list", "h")
    assert "/repo" not in mounts(remote)
    derived, _ = loaded(remote, remote_cfg, tmp_path)
    assert derived.backup.repository == "rest:http://u:p@rs:8000/x"


@pytest.mark.parametrize("files, db", [(True, True), (True, False), (False, True)])
def test_restore_mounts_and_reaches_only_what_it_restores(cfg, files, db, tmp_path):
    spec = contract.backup_spec(cfg, "restore", "h", files=files, db=db, extra=("--snapshot-set", "latest"))
    assert ("/data" in mounts(spec)) == files
    # the owner: a restore creates collections; nothing else of the database
    assert [t for t in secret_targets(spec) if "/db-" in t] == (["/run/secrets/db-owner-password"] if db else [])
    assert spec.networks == (("inst",) if db else ())
    assert ("--no-files" in spec.command) == (not files) and ("--no-db" in spec.command) == (not db)
    assert "--snapshot-set" in spec.command
    derived, text = loaded(spec, cfg, tmp_path)
    assert ("[db]" in text) == db
    if db:
        assert (derived.db.host, derived.db.port, derived.db.database) == ("inst-db", 27017, "aggr")


def test_artifacts_restore_mounts_the_artifacts_folder_rw(cfg):
    spec = contract.backup_spec(cfg, "artifacts-restore", "h")
    assert mounts(spec)["/artifacts"] == (f"{cfg.cache_dir}/go", "rw") and "/data" not in mounts(spec)


def test_backup_config_has_container_paths_and_the_host_settings(cfg, tmp_path):
    cfg = config.derive(cfg, {"backup.lock_timeout": 77, "backup.dump_under_lock": True, "retention.keep_last": 5})
    derived, text = loaded(contract.backup_spec(cfg, "take", "h"), cfg, tmp_path)
    assert (derived.data_root, derived.cache_dir, derived.secrets_dir) == ("/data-live", "/cache", "/run/secrets")
    assert derived.backup.lock_timeout == 77 and derived.backup.dump_under_lock is True
    assert derived.retention.keep_last == 5
    assert "[[collectors]]" not in text and "[pipeline]" not in text


def test_configs_hold_secret_paths_never_secret_values(cfg, tmp_path):
    from common import secrets
    from database import db
    for name in (*map(db.password_name, db.ROLES), secrets.RESTIC_PASSWORD, secrets.OFFSITE_RESTIC_PASSWORD,
                 secrets.OFFSITE_HTTP_PASSWORD):
        secrets.put(cfg.secrets_dir, name, f"value-of-{name}-xyzzy")
    specs = [contract.stage_spec(cfg, s) for s in contract.STAGES]
    specs += [contract.backup_spec(cfg, a, "h", role=r) for a in contract.ACTIONS for r in contract.roles_to_name(a)]
    for spec in specs:
        text = contract.container_config(cfg, spec)
        assert "xyzzy" not in text and cfg.secrets_dir not in text, spec.label


def test_binds_name_the_host_paths_of_mounts_and_secrets(cfg):
    binds = contract.backup_spec(cfg, "take", "h").binds()
    assert binds["/data-live"] == cfg.data_root and binds["/repo"] == cfg.backup.repository
    assert binds["/run/secrets/db-backup-password"] == f"{cfg.secrets_dir}/db-backup-password"
    assert contract.CONFIG_PATH not in binds


@pytest.mark.parametrize("action, role", [("db-counts", "reader"), ("db-indexes", "owner")])
def test_database_actions_get_their_role_and_postgresql_but_no_repository(cfg, action, role, tmp_path):
    spec = contract.backup_spec(cfg, action, "h")
    assert secret_targets(spec) == [f"/run/secrets/db-{role}-password"]
    assert mounts(spec) == {} and spec.networks == ("inst",)
    derived, text = loaded(spec, cfg, tmp_path)
    assert (derived.db.postgres_host, derived.db.postgres_port) == ("inst-postgres", 5432)
    assert "[backup]" not in text and "[retention]" not in text and cfg.backup.repository not in text


@pytest.mark.parametrize("kind, name, role", [
    ("stage", "importer", "importer"), ("backup", "take", "backup"), ("backup", "restore", "owner"),
    ("backup", "db-counts", "reader"), ("backup", "db-indexes", "owner")])
def test_the_contract_hands_a_container_its_database_role_and_only_that_password(cfg, kind, name, role, tmp_path):
    """The container's code never names a role: it logs in as its configuration's db.role, and the one
    password it gets is that role's."""
    spec = contract.stage_spec(cfg, name) if kind == "stage" else contract.backup_spec(cfg, name, "h")
    derived, _ = loaded(spec, cfg, tmp_path)
    assert derived.db.role == role
    assert [t for t in secret_targets(spec) if t.startswith("/run/secrets/db-")] == [f"/run/secrets/db-{role}-password"]


@pytest.mark.parametrize("role", dbconn.ROLES)
def test_db_password_works_as_the_role_named_with_its_password_and_its_new_one_only(cfg, role, tmp_path):
    spec = contract.backup_spec(cfg, "db-password", "h", role=role)
    derived, text = loaded(spec, cfg, tmp_path)
    assert derived.db.role == role and mounts(spec) == {} and spec.networks == ("inst",)
    assert [t for t in secret_targets(spec) if t.startswith("/run/secrets/db-")] == [
        f"/run/secrets/db-{role}-password", f"/run/secrets/db-{role}-password.rotating"]
    assert "[backup]" not in text and spec.command[3] == "db-password"


def test_db_password_needs_one_of_the_roles_and_the_other_actions_take_none(cfg):
    for role in ("", "postgres", "owner,reader"):
        with pytest.raises(DrError, match="works as one of the roles"):
            contract.backup_spec(cfg, "db-password", "h", role=role)
    with pytest.raises(DrError, match="has its own role"):
        contract.backup_spec(cfg, "db-counts", "h", role="owner")


@pytest.mark.parametrize("kind, name", [("stage", "sanitize"), ("backup", "list"), ("backup", "pg-restore")])
def test_a_container_without_the_database_gets_no_role(cfg, kind, name, tmp_path):
    spec = contract.stage_spec(cfg, name) if kind == "stage" else contract.backup_spec(cfg, name, "h")
    derived, _ = loaded(spec, cfg, tmp_path)
    assert derived.db.role == ""
    with pytest.raises(ConfigError, match="db.role is empty"):
        dbconn.role_of(derived.db)


def test_pg_restore_gets_postgresqls_volume_and_the_repository_but_no_database_role(cfg):
    spec = contract.backup_spec(cfg, "pg-restore", "h", extra=("--snapshot-set", "S"))
    assert mounts(spec) == {"/pgvolume": ("inst-pgdata", "rw"), "/repo": (cfg.backup.repository, "rw"),
                            "/cache/restic": (str(cfg.cache_path / "restic"), "rw")}
    assert secret_targets(spec) == ["/run/secrets/restic-password"]
    assert spec.networks == () and spec.runs_as_root  # PostgreSQL is stopped: nothing to reach
    assert spec.command[:4] == ("python3", "-m", "snapshots.cli", "pg-restore")


def test_a_drills_restore_puts_the_copy_beside_the_files_in_one_container(cfg):
    spec = contract.backup_spec(cfg, "restore", "h", db=False, copy=True, extra=("--snapshot-set", "S"))
    assert mounts(spec)["/pgvolume"] == ("inst-pgdata", "rw") and mounts(spec)["/data"] == (cfg.data_root, "rw")
    assert "--with-copy" in spec.command and "--no-db" in spec.command
    assert not any("db-" in t for t in secret_targets(spec)) and spec.networks == ()
    with pytest.raises(DrError, match="without the portable dump"):
        contract.backup_spec(cfg, "restore", "h", copy=True)  # the dump and the copy are two ways, not both
    with pytest.raises(DrError, match="not take"):
        contract.backup_spec(cfg, "take", "h", db=False, copy=True)


def test_pg_undo_gets_only_postgresqls_volume(cfg):
    spec = contract.backup_spec(cfg, "pg-undo", "h")
    assert mounts(spec) == {"/pgvolume": ("inst-pgdata", "rw")} and spec.secrets == () and spec.networks == ()


def test_with_tls_the_database_clients_get_the_ca_and_the_tls_port(cfg, tmp_path):
    """db.tls: the importer and the backup's database actions get the CA certificate (read-only, as a
    private file) and the TLS port in their [db]; the sanitizer and sync get neither; without the CA file
    the contract says what to do."""
    tls = config.derive(cfg, {"db.tls": True})
    with pytest.raises(DrError, match=r"CA certificate .*tls/ca\.crt is missing: `invoke certs`"):
        contract.stage_spec(tls, "importer")
    ca = tmp_path / "secrets" / "tls" / "ca.crt"
    ca.parent.mkdir(parents=True)
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    for spec in (contract.stage_spec(tls, "importer"), contract.backup_spec(tls, "take", "h")):
        assert contract.DB_CA in secret_targets(spec)
        assert next(s.source for s in spec.secrets if s.target == contract.DB_CA) == str(ca)
        derived, _ = loaded(spec, tls, tmp_path)
        assert derived.db.tls is True and derived.db.ca_file == contract.DB_CA and derived.db.port == 27018
        assert dbconn.ca_file_of(derived.db, derived.secrets_dir) == contract.DB_CA
    for stage in ("sanitize", "sync"):
        assert not any("db-" in t for t in secret_targets(contract.stage_spec(tls, stage)))
    plain, _ = loaded(contract.stage_spec(cfg, "importer"), cfg, tmp_path)
    assert plain.db.tls is False and plain.db.port == 27017 and contract.DB_CA not in secret_targets(
        contract.stage_spec(cfg, "importer"))


def test_with_the_database_on_its_own_host_its_clients_get_its_address(cfg, tmp_path):
    """host.role aggregator: the importer and the backup's database actions reach the database's host at its
    published ports (FerretDB's and PostgreSQL's), over TLS; no other container gets a database secret."""
    ca = tmp_path / "secrets" / "tls" / "ca.crt"
    ca.parent.mkdir(parents=True)
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    app = config.derive(cfg, {"host.role": "aggregator", "db.host": "db.example.org", "db.port": 27117,
                              "db.postgres_port": 5433, "db.tls": True})
    for spec in (contract.stage_spec(app, "importer"), contract.backup_spec(app, "take", "h")):
        derived, _ = loaded(spec, app, tmp_path)
        assert (derived.db.host, derived.db.port, derived.db.postgres_host, derived.db.postgres_port) == (
            "db.example.org", 27117, "db.example.org", 5433)
        assert derived.db.tls is True and contract.DB_CA in secret_targets(spec)
    for stage in ("sanitize", "sync"):
        assert not any("db-" in t for t in secret_targets(contract.stage_spec(app, stage)))


def test_with_tls_the_db_service_publishes_only_its_tls_listener(cfg, tmp_path):
    """db.tls: FerretDB gets its certificate, key and the CA (it verifies PostgreSQL), PostgreSQL its own
    certificate and key, all read-only; a missing one is named with what makes it."""
    from common.errors import ServiceError
    from dr.services import stack

    tls = config.derive(cfg, {"db.tls": True})
    with pytest.raises(ServiceError, match=r"TLS certificate .*tls/db\.crt is missing: `invoke certs`"):
        stack.db_spec(tls)
    folder = tmp_path / "secrets" / "tls"
    folder.mkdir(parents=True)
    for name in ("db.crt", "db.key", "ca.crt", "postgres.crt", "postgres.key"):
        (folder / name).write_text("x")
    spec = stack.db_spec(tls).kwargs
    assert spec["ports"] == {"27018/tcp": (cfg.db.bind, cfg.db.port)} and spec["environment"]["DB_TLS"] == "1"
    assert spec["volumes"] == {str(folder / "db.crt"): {"bind": stack.DB_TLS_CERT, "mode": "ro"},
                               str(folder / "db.key"): {"bind": stack.DB_TLS_KEY, "mode": "ro"},
                               str(folder / "ca.crt"): {"bind": stack.TLS_CA, "mode": "ro"}}
    pg = stack.postgres_spec(tls).kwargs
    assert pg["environment"]["PG_TLS"] == "1"
    assert pg["volumes"][str(folder / "postgres.key")] == {"bind": "/run/tls/postgres.key", "mode": "ro"}
    assert not any("/ca/" in path for path in (*spec["volumes"], *pg["volumes"]))  # never the CA's key
    plain = stack.db_spec(cfg).kwargs
    assert plain["ports"] == {"27017/tcp": (cfg.db.bind, cfg.db.port)} and "volumes" not in plain
    assert "PG_TLS" not in stack.postgres_spec(cfg).kwargs["environment"]


def test_an_https_offsite_repository_hands_restic_the_ca(cfg, tmp_path):
    https = config.derive(cfg, {"offsite.repository": "rest:https://offsite.example.org:8000/aggr"})
    with pytest.raises(DrError, match=r"off-site repository is https but the CA certificate .*ca\.crt is missing"):
        contract.backup_spec(https, "copy", "h")
    ca = tmp_path / "secrets" / "tls" / "ca.crt"
    ca.parent.mkdir(parents=True)
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    spec = contract.backup_spec(https, "copy", "h")
    assert next(s.source for s in spec.secrets if s.target == contract.OFFSITE_CA) == str(ca)
    derived, _ = loaded(spec, https, tmp_path)
    assert derived.offsite.ca_file == contract.OFFSITE_CA
    assert contract.OFFSITE_CA not in secret_targets(contract.backup_spec(cfg, "copy", "h"))  # plain http: none
