import re

import pytest

from common import config
from common.errors import ConfigError


def write(tmp_path, text):
    p = tmp_path / "config.toml"
    p.write_text(text)
    return p


def test_defaults_work_for_one_machine(monkeypatch):
    monkeypatch.delenv(config.ENV_VAR, raising=False)
    monkeypatch.setattr(config, "DEFAULT_FILE", config.Path("/nonexistent/config.toml"))
    cfg = config.load()
    assert cfg.source == "built-in defaults"
    assert cfg.data_root == "/data"
    assert cfg.db.bind == "127.0.0.1" and cfg.db.port == 27017
    assert cfg.image("db") == "aggregator-dr/db:latest"
    assert cfg.base_image == "aggregator-dr/base:trixie"


def test_tls_is_off_by_default_and_names_are_read_as_a_tuple(tmp_path):
    cfg = config.load(overrides={"data_root": str(tmp_path)})
    assert cfg.db.tls is False and (cfg.db.ca_file, cfg.db.cert_file, cfg.db.key_file) == ("", "", "")
    assert cfg.certs.warn_days == 30 and cfg.certs.leaf_days < cfg.certs.ca_days and cfg.certs.db_names == ()
    cfg = config.load(write(tmp_path, '[db]\ntls = true\n[certs]\ndb_names = ["db.example.org", "192.0.2.7", "::1"]\n'))
    assert cfg.db.tls and cfg.certs.db_names == ("db.example.org", "192.0.2.7", "::1")
    assert config.derive(cfg, {"db.port": 27018}).certs.db_names == cfg.certs.db_names


def test_file_values_override_defaults(tmp_path):
    cfg = config.load(write(tmp_path, 'data_root = "/srv/aggr"\n[db]\nport = 27018\n'))
    assert cfg.data_root == "/srv/aggr" and cfg.db.port == 27018


@pytest.mark.parametrize("text, key", [
    ('[images]\ntagg = "x"\n', "images.tagg"),
    ('colour = "blue"\n', "colour"),
    ('[db]\nport = "27017"\n', "db.port"),
    ('[db]\nport = 70000\n', "db.port"),
    ('[db]\nbind = "localhost"\n', "db.bind"),
    ('[db]\nrole = "admin"\n', "db.role"),
    ('data_root = "relative/path"\n', "data_root"),
    ('[host]\nmin_free_gb = true\n', "host.min_free_gb"),
    ('db = 3\n', "db"),
    ('[db]\ntls = "yes"\n', "db.tls"),
    ('[db]\nca_file = "tls/ca.crt"\n', "db.ca_file"),
    ('[db]\nkey_file = "db.key"\n', "db.key_file"),
    ('[certs]\nwarn_days = 0\n', "certs.warn_days"),
    ('[certs]\nleaf_days = -1\n', "certs.leaf_days"),
    ('[certs]\ndb_names = "db.example.org"\n', "certs.db_names"),
    ('[certs]\ndb_names = ["db example"]\n', "certs.db_names"),
    ('[certs]\noffsite_names = [7]\n', "certs.offsite_names"),
    ('[webmirror]\nstatus = "private"\n', "webmirror.status"),
    ('[webmirror]\nstatus_port = 0\n', "webmirror.status_port"),
    ('[webmirror]\nbind = "0.0.0.0"\nstatus_port = 8080\n', "webmirror.status_port"),
])
def test_bad_key_is_named(tmp_path, text, key):
    with pytest.raises(ConfigError) as err:
        config.load(write(tmp_path, text))
    assert str(err.value).startswith(key + ":")


def test_invalid_toml_says_so(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(write(tmp_path, "data_root = \n"))


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        config.load(tmp_path / "nope.toml")


def test_env_var_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv(config.ENV_VAR, str(write(tmp_path, '[webmirror]\nport = 8081\n')))
    assert config.load().webmirror.port == 8081


def test_overrides_are_validated_too():
    assert config.load(overrides={"db.port": 12345}).db.port == 12345
    with pytest.raises(ConfigError, match="^db.port:"):
        config.load(overrides={"db.port": 0})


COLLECTOR = '''
[[collectors]]
name = "c1"
host = "collector.example.org"
user = "aggregator"
key_file = "/etc/aggregator-dr/secrets/c1.key"
host_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOm2"
archive_path = "/var/lib/collector/archive"
'''


def test_collectors_are_a_validated_list(tmp_path):
    cfg = config.load(write(tmp_path, COLLECTOR))
    [c] = cfg.collectors
    assert c.name == "c1" and c.port == 22 and c.host == "collector.example.org"


@pytest.mark.parametrize("change, key", [
    (('port = 22', 'port = 0'), "collectors[0].port"),
    (('host_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOm2"', 'host_key = "nope"'), "collectors[0].host_key"),
    (('user = "aggregator"\n', ''), "collectors[0].user"),
    (('name = "c1"', 'name = "c1"\nkeyfile = "x"'), "collectors[0].keyfile"),
])
def test_bad_collector_key_is_named(tmp_path, change, key):
    text = COLLECTOR.replace('user = "aggregator"', 'user = "aggregator"\nport = 22') if "port" in change[0] \
        else COLLECTOR
    with pytest.raises(ConfigError) as err:
        config.load(write(tmp_path, text.replace(*change)))
    assert str(err.value).startswith(key + ":")


def test_duplicate_collector_names_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="names must be unique"):
        config.load(write(tmp_path, COLLECTOR + COLLECTOR))


def test_derive_changes_only_the_named_keys(tmp_path):
    cfg = config.load(write(tmp_path, COLLECTOR + '\n[db]\nport = 27018\n'))
    derived = config.derive(cfg, {"webmirror.port": 8081})
    assert derived.webmirror.port == 8081 and derived.db.port == 27018 and derived.collectors == cfg.collectors
    with pytest.raises(ConfigError, match="^db.port:"):
        config.derive(cfg, {"db.port": 0})


def test_command_line_overrides_parse_integers_and_booleans():
    from common.config import parse_overrides

    assert parse_overrides(["db.port=27018", "backup.dump_under_lock=true", "offsite.repository=rest:http://h:8000/a"]) \
        == {"db.port": 27018, "backup.dump_under_lock": True, "offsite.repository": "rest:http://h:8000/a"}
    assert config.load(overrides=parse_overrides(["backup.dump_under_lock=false"])).backup.dump_under_lock is False


def test_a_repository_is_local_when_it_is_an_absolute_path():
    assert config.is_local_repository("/var/lib/aggregator-dr/restic")
    for url in ("rest:http://127.0.0.1:8000/aggregator", "sftp:user@host:/srv/restic", "s3:s3.example.org/b", "repo"):
        assert not config.is_local_repository(url), url


def test_a_former_db_user_key_is_named(tmp_path):
    """The database's users are its fixed roles now (database/db.py ROLES): an old [db] user is refused by
    name, so an operator finds it."""
    with pytest.raises(ConfigError, match="db.user"):
        config.load(write(tmp_path, '[db]\nuser = "aggregator"\n'))


@pytest.mark.parametrize("overrides, message", [
    ({"host.role": "aggregator", "db.tls": True}, "db.host: host.role is aggregator"),
    ({"host.role": "aggregator", "db.host": "db.example.org"}, "db.tls: host.role is aggregator"),
    ({"db.host": "db.example.org", "db.tls": True}, 'host.role: db.host \'db.example.org\' is another host'),
    ({"host.role": "database", "db.bind": "0.0.0.0"}, "db.tls: host.role is database"),
    ({"host.role": "dbhost"}, "host.role: must be one of all, aggregator, database"),
])
def test_a_host_role_that_does_not_fit_the_database_keys_is_refused(overrides, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        config.load(overrides=overrides)


def test_host_roles_that_fit_load():
    assert config.load(overrides={"host.role": "aggregator", "db.host": "10.0.0.5", "db.tls": True}).host.role == \
        "aggregator"
    assert config.load(overrides={"host.role": "database"}).db.bind == "127.0.0.1"  # loopback: TLS optional
    # A container's configuration names its role and the database's container: no host role applies.
    assert config.load(overrides={"db.role": "importer", "db.host": "inst-db"}).db.host == "inst-db"


def test_the_status_page_is_for_this_host_alone_by_default():
    mirror = config.load(overrides={}).webmirror
    assert (mirror.status, mirror.status_port) == ("loopback", 8081)
    # One port for both is refused only where the loopback-only listener is used.
    for overrides in ({"webmirror.status_port": 8080}, {"webmirror.status": "public", "webmirror.bind": "0.0.0.0",
                                                        "webmirror.status_port": 8080}):
        assert config.load(overrides=overrides).webmirror.status_port == 8080


def test_loopback_addresses():
    assert all(config.is_loopback(a) for a in ("127.0.0.1", "127.0.0.2", "::1"))
    assert not any(config.is_loopback(a) for a in ("0.0.0.0", "::", "10.0.0.5", "localhost"))
