"""The broker's names and the client connection parameters (common/broker.py): what the collectors' publisher and
the Aggregator's consumer will log in with, from the configuration alone."""

import json
from pathlib import Path

import pytest

from common import broker, config
from common.errors import ConfigError
from common.records import RecordError


def cfg_of(tmp_path, **overrides):
    return config.load(overrides={"instance": "inst", "secrets_dir": str(tmp_path / "secrets"), **overrides})


def test_each_collector_has_its_user_and_its_one_routing_key():
    assert broker.collector_user("probe-eu.1") == "collector-probe-eu.1"
    assert broker.routing_key("probe-eu.1") == "collector.probe-eu.1"
    assert broker.password_name("collector-probe-eu.1") == "broker-collector-probe-eu.1-password"
    assert broker.password_name(broker.AGGREGATOR_USER) == "broker-aggregator-password"
    # The binding takes every collector's key, a name with dots too (a topic `*` is one word only).
    assert broker.BINDING == "collector.#"


def test_on_the_instance_network_clients_reach_the_container(tmp_path):
    cfg = cfg_of(tmp_path)
    assert broker.address(cfg) == ("inst-broker", 5671)
    conn = broker.aggregator_connection(cfg)
    assert conn == broker.Connection("inst-broker", 5671, "aggregator", "aggregator",
                                     tmp_path / "secrets" / "broker-aggregator-password",
                                     tmp_path / "secrets" / "tls" / "ca.crt")


def test_a_collector_elsewhere_reaches_the_configured_host_and_port_with_its_ca(tmp_path):
    cfg = cfg_of(tmp_path, **{"broker.host": "aggregator.example.org", "broker.port": 5771,
                              "broker.ca_file": "/etc/aggregator-dr/broker-ca.crt"})
    conn = broker.collector_connection(cfg, "probe1")
    assert (conn.host, conn.port, conn.vhost, conn.user) == ("aggregator.example.org", 5771, "aggregator",
                                                             "collector-probe1")
    assert conn.password_file == tmp_path / "secrets" / "broker-collector-probe1-password"
    assert conn.ca_file == Path("/etc/aggregator-dr/broker-ca.crt")


def test_the_default_ca_is_the_one_invoke_certs_makes(tmp_path):
    from dr.services import certs

    cfg = cfg_of(tmp_path)
    assert broker.ca_file(cfg) == certs.cert_path(cfg, certs.CA)


def test_the_container_name_is_the_instances(tmp_path):
    from dr.services import instance

    cfg = cfg_of(tmp_path)
    assert broker.address(cfg)[0] == instance.container_name(cfg, broker.SERVICE)


@pytest.mark.parametrize("key, value", [("broker.port", 0), ("broker.bind", "every"), ("broker.host", "a b"),
                                        ("broker.ca_file", "relative/ca.crt"), ("broker.enabled", "yes"),
                                        ("certs.broker_names", ["not a name"])])
def test_bad_broker_keys_are_named(tmp_path, key, value):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        cfg_of(tmp_path, **{key: value})


def test_the_broker_is_off_and_on_loopback_by_default(tmp_path):
    cfg = cfg_of(tmp_path)
    assert (cfg.broker.enabled, cfg.broker.bind, cfg.broker.port, cfg.broker.host) == (False, "127.0.0.1", 5671, "")


GOOD = {"collector": "alpha", "path": "2026-12-08/report-1.yaml", "size": 10, "sha256": "a" * 64,
        "completed": "2026-12-08T03:04:05Z"}


def test_a_claim_check_reads_back_from_its_json():
    claim = broker.read_claim(json.dumps(GOOD).encode())
    assert claim == broker.ClaimCheck(**GOOD) and broker.read_claim(claim.to_json().encode()) == claim
    assert claim.message_id() == "alpha/2026-12-08/report-1.yaml@" + "a" * 64


@pytest.mark.parametrize("change, why", [
    ({"path": "../etc/passwd"}, "not a report's path"), ({"path": "/abs.yaml"}, "not a report's path"),
    ({"path": ".pulled/x.yaml"}, "not a report's path"), ({"path": "a//b"}, "not a report's path"),
    ({"sha256": "A" * 64}, "sha256"), ({"size": -1}, "negative"), ({"completed": "yesterday"}, "UTC time"),
    ({"collector": "a/b"}, "not a name"), ({"size": "10"}, "size"), ({"extra": 1}, "extra")])
def test_a_claim_check_that_cannot_be_right_is_refused_with_its_reason(change, why):
    with pytest.raises(RecordError, match=why):
        broker.read_claim(json.dumps({**GOOD, **change}).encode())


@pytest.mark.parametrize("body", [b"", b"\xff\xfe", b"[]", b'{"collector": "a"}'])
def test_a_body_that_is_no_claim_check_is_refused(body):
    with pytest.raises(RecordError):
        broker.read_claim(body)
