"""The broker (issue 24, item 1; dr/services/broker.py) against the real RabbitMQ of our `broker` image, with pika
on this host: it starts with the definitions this host wrote (no guest, quorum queues, AMQPS only); a collector
publishes to its own key with publisher confirms and the Aggregator consumes what it published; everything else
a collector or the Aggregator might try is refused by the broker itself (ACCESS_REFUSED, 403); plaintext and a
client trusting another CA get nowhere; what is queued survives a new container; a collector taken out of the
configuration can no longer log in.

Only the base image (when missing) and the broker's image are built here, never the shared `built` fixture's
whole set."""

from __future__ import annotations

import json
import socket
import ssl

import pika
import pika.exceptions
import pytest
from conftest import build_tagged

from common import broker as names
from common import config, poll, secrets
from dr.engine import docker_api
from dr.services import broker, certs, stack
from instances import free_port

COLLECTOR = {"host": "collector.example", "port": 22, "user": "collector", "key_file": "/etc/keys/c",
             "host_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5", "archive_path": "/srv/archive"}
COLLECTORS = ("c1", "probe.eu")  # a dot in a name: the binding and the permissions must take it literally


def with_collectors(cfg, collectors):
    return config.derive(cfg, {"collectors": [{"name": n, **COLLECTOR} for n in collectors]})


def clear(cfg) -> None:
    broker.stop(cfg, remove_data=True)
    docker_api.remove_network(stack.network_name(cfg))


@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
    """A broker of its own (instance brk1) for this module, reached from this host on a loopback port; its
    container, volume and network are removed afterwards (and first: what a killed run left)."""
    root = tmp_path_factory.mktemp("broker")
    cfg = with_collectors(config.load(overrides={
        "instance": "brk1", "data_root": str(root / "data"), "secrets_dir": str(root / "secrets"),
        "broker.host": "127.0.0.1", "broker.port": free_port()}), COLLECTORS)
    build_tagged(cfg, ("broker",))
    clear(cfg)
    certs.make(cfg)
    try:
        assert broker.start(cfg) == "started"
        yield cfg
    finally:
        clear(cfg)


@pytest.fixture(autouse=True)
def empty_queues(cfg):
    for queue in (names.QUEUE, names.DEAD_QUEUE):
        broker.ctl(cfg, "purge_queue", "-p", names.VHOST, queue)


def connect(cfg, user: str, password: str | None = None, ca_file=None) -> pika.BlockingConnection:
    """A pika connection as user over TLS, with the parameters common/broker.py gives (its password read from
    its secret file unless given)."""
    conn = names.connection(cfg, user)
    context = ssl.create_default_context(cafile=str(ca_file or conn.ca_file))
    if password is None:
        password = conn.password_file.read_text().strip()
    return pika.BlockingConnection(pika.ConnectionParameters(
        conn.host, conn.port, conn.vhost, pika.PlainCredentials(user, password),
        ssl_options=pika.SSLOptions(context, conn.host), connection_attempts=1, socket_timeout=10,
        blocked_connection_timeout=30))


def publish(cfg, collector: str, bodies: list[bytes], key: str | None = None) -> None:
    """Publish as the collector with publisher confirms, each persistent and mandatory (unroutable: an error)."""
    conn = connect(cfg, names.collector_user(collector))
    try:
        channel = conn.channel()
        channel.confirm_delivery()
        for body in bodies:
            channel.basic_publish(names.EXCHANGE, key or names.routing_key(collector), body,
                                  pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent,
                                                       content_type="application/json"), mandatory=True)
    finally:
        conn.close()


def queued(cfg, queue: str = names.QUEUE) -> int:
    """The messages in a queue, as its leader counts them now (a passive declare: it needs no permission;
    `rabbitmqctl list_queues` shows figures a few seconds old)."""
    conn = connect(cfg, names.AGGREGATOR_USER)
    try:
        return conn.channel().queue_declare(queue, passive=True).method.message_count
    finally:
        conn.close()


def consume_all(cfg, expected: int) -> list[tuple[str, bytes]]:
    """As the Aggregator: every message of the queue (routing key, body), each acknowledged."""
    conn = connect(cfg, names.AGGREGATOR_USER)
    got = []
    try:
        channel = conn.channel()
        for method, _, body in channel.consume(names.QUEUE, inactivity_timeout=10):
            if method is None:
                break
            got.append((method.routing_key, body))
            channel.basic_ack(method.delivery_tag)
            if len(got) == expected:
                break
        channel.cancel()
    finally:
        conn.close()
    return got


def diagnostics(cfg, *args: str) -> str:
    code, out = docker_api.container_or_none(stack.container_name(cfg, broker.SERVICE)).exec_run(
        ["rabbitmq-diagnostics", "-q", *args])
    assert code == 0, out.decode(errors="replace")
    return out.decode()


def refused(action) -> str:
    """What the broker says when it closes the channel of action() (which must close it): code and text."""
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as caught:
        action()
    return f"{caught.value.reply_code} {caught.value.reply_text}"


def test_the_broker_starts_with_its_definitions_and_nothing_else(cfg):
    users = {row["user"] for row in json.loads(broker.ctl(cfg, "list_users", "--formatter", "json"))}
    assert users == {"aggregator", "collector-c1", "collector-probe.eu"}  # no guest
    vhosts = {row["name"] for row in json.loads(broker.ctl(cfg, "list_vhosts", "--formatter", "json"))}
    assert vhosts == {"aggregator"}
    queues = {r["name"]: r for r in json.loads(broker.ctl(cfg, "list_queues", "-p", names.VHOST, "name", "type",
                                                          "durable", "--formatter", "json"))}
    assert {n: (q["type"], q["durable"]) for n, q in queues.items()} == {"reports": ("quorum", True),
                                                                         "reports.dead": ("quorum", True)}
    listeners = {(row["protocol"], row["port"])
                 for row in json.loads(diagnostics(cfg, "listeners", "--formatter", "json"))["listeners"]}
    assert listeners == {("amqp/ssl", 5671), ("clustering", 25672)}  # AMQPS only (and the CLI tools' port)
    assert broker.ctl(cfg, "eval", "node().").strip() == "'rabbit@brk1-broker'"
    # The largest message it takes (RabbitMQ 4.0's default, 16 MiB): ours are claim checks of a few hundred bytes.
    assert broker.ctl(cfg, "eval", "application:get_env(rabbit, max_message_size).").strip() == "{ok,16777216}"


def test_a_collector_publishes_with_confirms_and_the_aggregator_consumes_it(cfg):
    claim = json.dumps({"collector": "c1", "file": "r1.yaml", "size": 12, "sha256": "0" * 64}).encode()
    publish(cfg, "c1", [claim])
    publish(cfg, "probe.eu", [b'{"collector": "probe.eu"}'])
    assert queued(cfg) == 2  # confirmed: in the quorum queue already
    got = consume_all(cfg, 2)
    assert got == [("collector.c1", claim), ("collector.probe.eu", b'{"collector": "probe.eu"}')]
    assert queued(cfg) == 0


def test_a_collector_cannot_publish_as_another(cfg):
    for key in (names.routing_key("probe.eu"), "collector.probeXeu", "collector.c1.more", "collector.#"):
        said = refused(lambda: publish(cfg, "c1", [b"{}"], key=key))
        assert said.startswith("403 ACCESS_REFUSED") and "write access to topic" in said
    assert queued(cfg) == 0


def test_a_collector_cannot_consume_or_declare_anything(cfg):
    conn = connect(cfg, names.collector_user("c1"))
    try:
        for action in (lambda ch: ch.basic_get(names.QUEUE), lambda ch: ch.basic_get(names.DEAD_QUEUE),
                       lambda ch: ch.basic_consume(names.QUEUE, lambda *a: None),
                       lambda ch: ch.queue_declare("mine"), lambda ch: ch.exchange_declare("mine", "fanout"),
                       lambda ch: ch.queue_bind("mine", names.EXCHANGE, "#"),
                       lambda ch: ch.queue_purge(names.QUEUE)):
            channel = conn.channel()
            assert refused(lambda: action(channel)).startswith("403 ACCESS_REFUSED")
        assert conn.is_open  # the broker closed each channel, not the connection
    finally:
        conn.close()


def test_the_aggregator_cannot_publish(cfg):
    conn = connect(cfg, names.AGGREGATOR_USER)
    try:
        for exchange, key in ((names.EXCHANGE, names.routing_key("c1")), ("", names.QUEUE),
                              (names.DEAD_EXCHANGE, "")):
            channel = conn.channel()
            channel.confirm_delivery()
            said = refused(lambda: channel.basic_publish(exchange, key, b"{}"))
            assert said.startswith("403 ACCESS_REFUSED") and "write access" in said
        channel = conn.channel()
        assert refused(lambda: channel.queue_declare("mine")).startswith("403 ACCESS_REFUSED")
    finally:
        conn.close()
    assert queued(cfg) == 0


def test_a_rejected_message_is_dead_lettered(cfg):
    publish(cfg, "c1", [b'{"file": "missing.yaml"}'])
    conn = connect(cfg, names.AGGREGATOR_USER)
    try:
        channel = conn.channel()
        method, _, body = channel.basic_get(names.QUEUE)
        channel.basic_nack(method.delivery_tag, requeue=False)
    finally:
        conn.close()
    poll.until(lambda: queued(cfg, names.DEAD_QUEUE) == 1, "the rejected message in reports.dead", 30)
    assert queued(cfg) == 0


def test_a_wrong_password_is_refused(cfg):
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        connect(cfg, names.collector_user("c1"), password="not the password")
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        connect(cfg, "guest", password="guest")


def test_plaintext_is_refused(cfg):
    """No plaintext listener: the published port speaks TLS only, and an AMQP client without TLS gets no AMQP
    connection (the broker's side of the TLS handshake fails on its protocol header)."""
    host, port = names.address(cfg)
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        pika.BlockingConnection(pika.ConnectionParameters(
            host, port, names.VHOST, pika.PlainCredentials("aggregator", "x"), connection_attempts=1,
            socket_timeout=10))
    with socket.create_connection((host, port), timeout=10) as raw:
        raw.sendall(b"AMQP\x00\x00\x09\x01")
        answer = raw.recv(64)
    assert not answer.startswith(b"\x01\x00\x00")  # no Connection.Start frame; a TLS alert, or nothing
    assert not answer.startswith(b"AMQP")


def test_a_client_that_trusts_another_ca_does_not_connect(cfg, tmp_path):
    other = config.derive(cfg, {"instance": "brk2", "secrets_dir": str(tmp_path / "other")})
    certs.make(other)
    host, port = names.address(cfg)
    for ca, verifies in ((certs.cert_path(other, certs.CA), False), (names.ca_file(cfg), True)):
        context = ssl.create_default_context(cafile=str(ca))
        with socket.create_connection((host, port), timeout=10) as raw:
            if verifies:
                with context.wrap_socket(raw, server_hostname=host) as tls:
                    assert tls.version() in ("TLSv1.3", "TLSv1.2")
            else:
                with pytest.raises(ssl.SSLCertVerificationError):
                    context.wrap_socket(raw, server_hostname=host)
    with pytest.raises((pika.exceptions.AMQPConnectionError, ssl.SSLCertVerificationError)):
        connect(cfg, names.AGGREGATOR_USER, ca_file=certs.cert_path(other, certs.CA))


def test_queued_messages_survive_a_new_container(cfg):
    bodies = [json.dumps({"n": n}).encode() for n in range(3)]
    publish(cfg, "c1", bodies)
    before = docker_api.container_or_none(stack.container_name(cfg, broker.SERVICE)).id
    broker.stop(cfg)  # the container removed; its volume kept
    assert docker_api.container_or_none(stack.container_name(cfg, broker.SERVICE)) is None
    assert broker.start(cfg) == "started"
    assert docker_api.container_or_none(stack.container_name(cfg, broker.SERVICE)).id != before
    assert broker.ctl(cfg, "eval", "node().").strip() == "'rabbit@brk1-broker'"
    assert consume_all(cfg, 3) == [("collector.c1", b) for b in bodies]  # in order, nothing lost


def test_an_unchanged_configuration_keeps_the_container_and_a_removed_collector_is_locked_out(cfg):
    container = docker_api.container_or_none(stack.container_name(cfg, broker.SERVICE)).id
    assert broker.start(cfg) == "running"
    assert docker_api.container_or_none(stack.container_name(cfg, broker.SERVICE)).id == container
    fewer = with_collectors(cfg, ("c1",))
    try:
        assert broker.start(fewer) == "started"  # other definitions: a new container
        users = {row["user"] for row in json.loads(broker.ctl(cfg, "list_users", "--formatter", "json"))}
        assert users == {"aggregator", "collector-c1"}
        with pytest.raises(pika.exceptions.ProbableAuthenticationError):
            connect(cfg, names.collector_user("probe.eu"))
        publish(cfg, "c1", [b"{}"])
        assert consume_all(cfg, 1) == [("collector.c1", b"{}")]
    finally:
        assert broker.start(cfg) == "started"
    publish(cfg, "probe.eu", [b"{}"])  # back in the configuration: back in
    assert consume_all(cfg, 1) == [("collector.probe.eu", b"{}")]
    assert secrets.read(cfg.secrets_dir, names.password_name("collector-probe.eu"))  # its password was kept
