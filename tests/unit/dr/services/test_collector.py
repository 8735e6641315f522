"""The sample collector's publisher settings (dr/services/collector.publisher_settings): where it reaches the
broker, and the password file and CA mounted read-only, never the password itself in a setting."""

import pytest

from common import broker as names
from common import config, secrets
from common.errors import ServiceError
from dr.services import certs, collector


def cfg_of(tmp_path, **overrides):
    return config.load(overrides={"instance": "inst", "secrets_dir": str(tmp_path / "secrets"), **overrides})


def test_the_publisher_reaches_the_broker_with_files_mounted_read_only(tmp_path):
    cfg = cfg_of(tmp_path)
    certs.make(cfg)
    environment, volumes = collector.publisher_settings(cfg)
    assert environment == {"BROKER": "inst-broker:5671", "BROKER_COLLECTOR": collector.NAME}
    password_file = tmp_path / "secrets" / "broker-collector-sample-password"
    assert volumes == {str(password_file): {"bind": collector.BROKER_PASSWORD, "mode": "ro"},
                       str(certs.cert_path(cfg, certs.CA)): {"bind": collector.BROKER_CA, "mode": "ro"}}
    password = secrets.read(cfg.secrets_dir, names.password_name(names.collector_user(collector.NAME)))
    assert password and password not in repr((environment, volumes))  # made when missing, in no setting
    named = collector.publisher_settings(config.derive(cfg, {"broker.host": "aggregator.example",
                                                             "broker.port": 15671}), name="probe.eu")[0]
    assert named == {"BROKER": "aggregator.example:15671", "BROKER_COLLECTOR": "probe.eu"}


def test_no_ca_no_publisher(tmp_path):
    with pytest.raises(ServiceError, match="invoke certs"):
        collector.publisher_settings(cfg_of(tmp_path))


def test_the_entry_of_a_collector_names_how_sync_reaches_it(tmp_path):
    cfg = config.load(overrides={"instance": "inst", "secrets_dir": str(tmp_path / "s")})
    on_network, on_loopback = collector.entry(cfg), collector.entry(cfg, port=2222, name="other")
    assert (on_network["name"], on_network["host"], on_network["port"]) == ("sample", "inst-collector", 22)
    assert (on_loopback["name"], on_loopback["host"], on_loopback["port"]) == ("other", "127.0.0.1", 2222)
    assert on_network["archive_path"] == collector.ARCHIVE and on_network["host_key"].startswith("ssh-ed25519 ")
    config.derive(cfg, {"collectors": [on_network, on_loopback]})  # a valid [[collectors]] table
