"""The broker's pure parts (dr/services/broker.py): RabbitMQ's password hash, the definitions built from the
collectors, the file written from the password files, and the container's spec. The integration test
(tests/integration/test_broker.py) runs the real broker with them."""

import base64
import json
import re
import stat

import pytest

from common import broker as names
from common import config, secrets
from common.errors import ServiceError
from dr.services import broker, certs

COLLECTOR = {"host": "collector.example", "port": 22, "user": "collector", "key_file": "/etc/keys/c",
             "host_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5", "archive_path": "/srv/archive"}


def cfg_of(tmp_path, collectors=("c1", "c2"), **overrides):
    return config.load(overrides={"instance": "inst", "secrets_dir": str(tmp_path / "secrets"),
                                  "collectors": [{"name": n, **COLLECTOR} for n in collectors], **overrides})


# --- the password hash --------------------------------------------------------------------------------------------

# rabbitmqctl hash_password 'aggregator-dr broker test', run in our broker image (RabbitMQ 4.0.5): a value RabbitMQ
# itself made. (The integration test logs in with hashes of ours: RabbitMQ accepts them too.)
RABBITMQ_MADE = ("aggregator-dr broker test", "ARGncNT3ug7CaKSzUs1wmIzcItA3oS2FWIPWdq/dP9jRb/AO")
# RabbitMQ's documentation's example (docs/passwords, "Computing a password hash"): salt 908DC60A, password test12.
DOCUMENTED = ("test12", bytes.fromhex("908DC60A"), "kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR")


def test_the_hash_is_rabbitmqs_sha256_scheme():
    password, salt, hashed = DOCUMENTED
    assert broker.password_hash(password, salt) == hashed
    password, hashed = RABBITMQ_MADE
    assert broker.password_hash(password, base64.b64decode(hashed)[:4]) == hashed
    assert broker.hash_matches(hashed, password)


def test_a_hash_matches_only_its_password():
    hashed = broker.password_hash("s3cret")
    assert len(base64.b64decode(hashed)) == 4 + 32
    assert broker.hash_matches(hashed, "s3cret")
    assert not broker.hash_matches(hashed, "s3cret ")
    assert not broker.hash_matches("", "s3cret") and not broker.hash_matches("not base64!", "s3cret")
    assert not broker.hash_matches(base64.b64encode(b"short").decode(), "s3cret")
    assert broker.password_hash("s3cret") != broker.password_hash("s3cret")  # a random salt each time
    with pytest.raises(ValueError, match="4 bytes"):
        broker.password_hash("s3cret", b"12345")


# --- the definitions ----------------------------------------------------------------------------------------------

def defs_of(collectors):
    return broker.definitions(collectors, {u: f"hash-of-{u}" for u in broker.users(collectors)})


def test_one_user_per_collector_and_the_aggregators_with_their_hashes():
    defs = defs_of(["c1", "probe.eu"])
    assert [(u["name"], u["password_hash"], u["hashing_algorithm"], u["tags"]) for u in defs["users"]] == [
        ("aggregator", "hash-of-aggregator", "rabbit_password_hashing_sha256", []),
        ("collector-c1", "hash-of-collector-c1", "rabbit_password_hashing_sha256", []),
        ("collector-probe.eu", "hash-of-collector-probe.eu", "rabbit_password_hashing_sha256", [])]
    assert "guest" not in json.dumps(defs)
    assert defs["vhosts"] == [{"name": "aggregator"}]
    with pytest.raises(ValueError, match="collector-c2"):
        broker.definitions(["c1", "c2"], {"aggregator": "h", "collector-c1": "h"})


def pcre_match(pattern: str, text: str) -> bool:
    return re.search(pattern, text) is not None


def test_a_collector_may_publish_only_with_its_own_key_and_nothing_else():
    defs = defs_of(["c1", "probe.eu"])
    perms = {p["user"]: p for p in defs["permissions"]}
    topics = {p["user"]: p for p in defs["topic_permissions"]}
    for name in ("c1", "probe.eu"):
        user = f"collector-{name}"
        assert perms[user]["vhost"] == "aggregator" and perms[user]["configure"] == "^$"
        assert perms[user]["read"] == "^$"
        assert pcre_match(perms[user]["write"], "reports")
        assert not pcre_match(perms[user]["write"], "reports.dead") and not pcre_match(perms[user]["write"], "")
        assert topics[user]["exchange"] == "reports" and topics[user]["read"] == "^$"
        assert pcre_match(topics[user]["write"], f"collector.{name}")
    # A dot in a name is no wildcard: probe.eu's key is not probeXeu's, nor c1's.
    assert not pcre_match(topics["collector-probe.eu"]["write"], "collector.probeXeu")
    assert not pcre_match(topics["collector-c1"]["write"], "collector.probe.eu")
    assert not pcre_match(topics["collector-c1"]["write"], "collector.c1.more")


def test_the_aggregator_may_only_consume_the_queue():
    perms = {p["user"]: p for p in defs_of(["c1"])["permissions"]}
    agg = perms["aggregator"]
    assert (agg["configure"], agg["write"]) == ("^$", "^$")
    assert pcre_match(agg["read"], "reports") and not pcre_match(agg["read"], "reports.dead")
    assert "aggregator" not in {p["user"] for p in defs_of(["c1"])["topic_permissions"]}


def test_the_topology_a_quorum_queue_dead_lettering_into_another():
    defs = defs_of(["c1"])
    exchanges = {e["name"]: e for e in defs["exchanges"]}
    assert exchanges["reports"]["type"] == "topic" and exchanges["reports.dead"]["type"] == "fanout"
    assert all(e["durable"] and not e["auto_delete"] for e in exchanges.values())
    queues = {q["name"]: q for q in defs["queues"]}
    assert queues["reports"]["arguments"] == {
        "x-queue-type": "quorum", "x-dead-letter-exchange": "reports.dead", "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish", "x-delivery-limit": 20}
    assert queues["reports.dead"]["arguments"] == {"x-queue-type": "quorum"}
    assert all(q["durable"] and q["vhost"] == "aggregator" for q in queues.values())
    bindings = {(b["source"], b["destination"], b["routing_key"]) for b in defs["bindings"]}
    assert bindings == {("reports", "reports", "collector.#"), ("reports.dead", "reports.dead", "")}


def test_no_collector_no_collector_user():
    defs = defs_of([])
    assert [u["name"] for u in defs["users"]] == ["aggregator"] and defs["topic_permissions"] == []


# --- the file, from the password files ----------------------------------------------------------------------------

def test_the_file_is_private_and_holds_hashes_of_the_password_files_never_a_password(tmp_path):
    cfg = cfg_of(tmp_path)
    path = broker.write_definitions(cfg)
    assert path == tmp_path / "secrets" / "broker-definitions.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    defs = json.loads(text)
    for user in ("aggregator", "collector-c1", "collector-c2"):
        password = secrets.read(cfg.secrets_dir, names.password_name(user))
        assert password not in text
        (hashed,) = [u["password_hash"] for u in defs["users"] if u["name"] == user]
        assert broker.hash_matches(hashed, password)


def test_an_unchanged_configuration_writes_the_same_file(tmp_path):
    cfg = cfg_of(tmp_path)
    first = broker.write_definitions(cfg).read_bytes()
    mtime = broker.definitions_path(cfg).stat().st_mtime_ns
    assert broker.write_definitions(cfg).read_bytes() == first
    assert broker.definitions_path(cfg).stat().st_mtime_ns == mtime  # not even rewritten


def test_a_changed_password_or_a_new_collector_changes_only_what_it_must(tmp_path):
    cfg = cfg_of(tmp_path)
    before = {u["name"]: u["password_hash"] for u in json.loads(broker.write_definitions(cfg).read_text())["users"]}
    secrets.put(cfg.secrets_dir, names.password_name("collector-c1"), "a new password")
    after = {u["name"]: u["password_hash"] for u in
             json.loads(broker.write_definitions(cfg_of(tmp_path, ("c1", "c2", "c3"))).read_text())["users"]}
    assert after["aggregator"] == before["aggregator"] and after["collector-c2"] == before["collector-c2"]
    assert after["collector-c1"] != before["collector-c1"]
    assert broker.hash_matches(after["collector-c1"], "a new password")
    assert set(after) == {"aggregator", "collector-c1", "collector-c2", "collector-c3"}


def test_a_file_that_does_not_read_is_written_again(tmp_path):
    cfg = cfg_of(tmp_path)
    secrets.put(cfg.secrets_dir, broker.DEFINITIONS, "{not json")
    defs = json.loads(broker.write_definitions(cfg).read_text())
    assert len(defs["users"]) == 3


# --- the container ------------------------------------------------------------------------------------------------

def test_the_spec_mounts_its_files_read_only_keeps_its_hostname_and_publishes_amqps_only(tmp_path):
    cfg = cfg_of(tmp_path, **{"broker.bind": "192.0.2.10", "broker.port": 5771})
    with pytest.raises(ServiceError, match="invoke certs"):
        broker.spec(cfg)
    certs.make(cfg)
    spec = broker.spec(cfg)
    assert spec.name == "broker" and spec.image == cfg.image("broker") and spec.network is None  # instance network
    assert spec.named_volumes == ("inst-broker-data",)
    kw = spec.kwargs
    assert kw["hostname"] == "inst-broker"
    assert kw["ports"] == {"5671/tcp": ("192.0.2.10", 5771)}
    tls = tmp_path / "secrets" / "tls"
    assert kw["volumes"] == {
        "inst-broker-data": {"bind": "/var/lib/rabbitmq", "mode": "rw"},
        str(tls / "broker.crt"): {"bind": "/run/secrets/broker.crt", "mode": "ro"},
        str(tls / "broker.key"): {"bind": "/run/secrets/broker.key", "mode": "ro"},
        str(tls / "ca.crt"): {"bind": "/run/secrets/ca.crt", "mode": "ro"},
        str(tmp_path / "secrets" / "broker-definitions.json"): {"bind": "/run/secrets/broker-definitions.json",
                                                                 "mode": "ro"}}
    assert not any("password" in source for source in kw["volumes"])  # the hashes only, never a password file


def test_the_same_configuration_keeps_the_container_and_a_new_collector_replaces_it(tmp_path):
    cfg = cfg_of(tmp_path)
    certs.make(cfg)
    first = broker.spec(cfg).fingerprint("sha256:1")
    assert broker.spec(cfg).fingerprint("sha256:1") == first
    assert broker.spec(cfg_of(tmp_path, ("c1", "c2", "c3"))).fingerprint("sha256:1") != first


def test_the_broker_certificate_names_where_clients_reach_it(tmp_path):
    cfg = cfg_of(tmp_path, **{"broker.host": "aggregator.example.org", "certs.broker_names": ["192.0.2.10"]})
    assert certs.names(cfg, "broker") == ("inst-broker", "localhost", "127.0.0.1", "aggregator.example.org",
                                          "192.0.2.10")
    assert "broker" in {c.name for c in certs.CERTS if c.usage == "serverAuth"}


def test_the_broker_task_says_what_it_did():
    from dr.services.broker import BrokerService
    assert BrokerService("started", "inst-broker").render() == "broker started: inst-broker"
    purged = BrokerService("running", "inst-broker", 3)
    assert purged.render().endswith("3 dead-lettered message(s) purged from reports.dead")
    assert BrokerService.from_json(purged.to_json()) == purged
