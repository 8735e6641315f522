"""End to end through the real broker (issue 24): a real collector container of our image with its publisher,
the broker of our image, and the real subscriber (`python -m stages.subscribe`, the code its service container
runs) on this host; the scheduled sync (`stages.sync.run`) where a proof needs it.

- The broker restarted (its container stopped and started) while the collector keeps completing reports and
  the subscriber consumes: every report lands in raw/<collector>/ exactly once (one committed pull each in
  the journal), nothing is dead-lettered, the queue drains.
- The broker's state lost mid-flight (its container and volume removed while claim checks wait in the queue,
  then a new, empty broker): the publisher publishes nothing again that the lost broker had confirmed, so those
  reports are never announced; the scheduled sync takes them, and every report is in raw/ exactly once. This is
  the proof that the broker's state belongs in no snapshot set (docs/broker.md).
- A dead-lettered message shows in `invoke status --json` (the broker's section and the `dead_letters` rule).

Instance st1 only; only the base image (when missing), the broker's and the collector's images are built, under
the tag `status-tests`, never the shared `built` fixture's set nor `:latest`."""

from __future__ import annotations

import contextlib
import hashlib
import json
import signal
import ssl
import subprocess
import sys
from pathlib import Path

import pika
import pytest
from conftest import build_tagged, invoke_status

from common import broker as names
from common import config, poll
from dr.engine import docker_api
from dr.machine import configfile
from dr.services import broker, certs, collector
from instances import free_port, remove_instance
from stages import journal, sync
from stages.layout import DataRoot

TAG = "status-tests"
NAME = "e1"  # the collector: its publisher logs in as collector-e1
ARCHIVE = collector.ARCHIVE
STATE = "/srv/collector/publisher-state.json"
REPO = Path(__file__).resolve().parents[2]
DRAIN = 600  # seconds: a generous deadline for the flow to settle (no timing assertion)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Instance st1: the broker (its AMQPS port published on a loopback port) and a publishing collector (its
    sshd on a loopback port too); everything removed afterwards (and first: what a killed run left)."""
    root = tmp_path_factory.mktemp("broker-flow")
    cfg = config.load(overrides={
        "instance": "st1", "data_root": str(root / "data"), "secrets_dir": str(root / "secrets"),
        "images.tag": TAG, "broker.enabled": True, "broker.port": free_port(),
        "history.dir": str(root / "history"), "status.page_dir": ""})
    build_tagged(cfg, ("broker", "collector"))
    remove_instance(cfg)
    certs.make(cfg)
    try:
        broker.start(cfg, collectors=(NAME,))
        entry = collector.start(cfg, port=free_port(), name=NAME, samples=False, publish=True)
        yield config.derive(cfg, {"collectors": [entry]})
    finally:
        collector.stop(cfg, NAME)
        remove_instance(cfg)


@pytest.fixture
def cfg(setup, tmp_path):
    """A fresh data root, a fresh collector (empty archive, a new publisher state), the queues empty. Its
    broker.host is empty: the collector reaches the broker on the instance network (host() for this host)."""
    broker.start(setup)  # back, if a test failed with it stopped or removed
    collector.start(setup, port=setup.collectors[0].port, name=NAME, samples=False, publish=True)
    for queue in (names.QUEUE, names.DEAD_QUEUE):
        broker.ctl(setup, "purge_queue", "-p", names.VHOST, queue)
    return config.derive(setup, {"data_root": str(tmp_path / "data")})


def host(cfg):
    """The configuration as this host's processes reach the broker: its published port on the loopback."""
    return config.derive(cfg, {"broker.host": "127.0.0.1"})


# --- the collector -------------------------------------------------------------------------------------------------

def sh(cfg, script: str, user: str = "collector") -> str:
    code, out = docker_api.client().containers.get(collector.container_name(cfg, NAME)).exec_run(
        ["sh", "-c", script], user=user)
    text = out.decode(errors="replace")
    assert code == 0, text
    return text


def complete(cfg, reports: dict[str, str]) -> None:
    """Each report completed as a collector does: written under a dot-name, then renamed into place; every
    write completes (sh checks the exit status)."""
    sh(cfg, "set -e; cd " + ARCHIVE + "\n" + "".join(
        f"mkdir -p \"$(dirname '{n}')\"; printf '%s' '{b}' > \"$(dirname '{n}')/.$(basename '{n}').tmp\"; "
        f"mv \"$(dirname '{n}')/.$(basename '{n}').tmp\" '{n}'\n" for n, b in reports.items()))


def batch(label: str, count: int = 8) -> dict[str, str]:
    return {f"{label}/r{n:02d}.yaml": f"report {n} of {label}\n" for n in range(count)}


def digests(reports: dict[str, str]) -> dict[str, str]:
    return {n: hashlib.sha256(b.encode()).hexdigest() for n, b in reports.items()}


def confirmed(cfg) -> set[str]:
    """The reports the publisher recorded as confirmed by the broker (its state file)."""
    code, out = docker_api.client().containers.get(collector.container_name(cfg, NAME)).exec_run(
        ["cat", STATE], user="collector")
    return set(json.loads(out)["published"]) if code == 0 else set()


def on_collector(cfg) -> set[str]:
    """The reports still in the archive folder (not pulled: .pulled/ and dot-files left out)."""
    return set(sh(cfg, f"cd {ARCHIVE} && find . -path '*/.*' -prune -o -type f -printf '%P\\n'").split())


# --- the broker ----------------------------------------------------------------------------------------------------

def depths(cfg) -> dict[str, tuple[int, int]]:
    """What `invoke status` shows (rabbitmqctl list_queues: RabbitMQ updates a quorum queue's figures there
    every few seconds, so they may lag; polled, never asserted at once)."""
    return broker.queue_depths(cfg)


def quiet(cfg) -> bool:
    """Nothing ready nor unacknowledged in either queue, as list_queues last saw them."""
    return all(d == (0, 0) for d in depths(cfg).values())


def queued(cfg, queue: str = names.QUEUE) -> int:
    """The messages ready in the queue now (a passive declare as the Aggregator: the queue's own count; with no
    consumer connected, every message not acknowledged is back in it)."""
    conn = names.aggregator_connection(host(cfg))
    connection = pika.BlockingConnection(pika.ConnectionParameters(
        conn.host, conn.port, conn.vhost, pika.PlainCredentials(conn.user, conn.password_file.read_text().strip()),
        ssl_options=pika.SSLOptions(ssl.create_default_context(cafile=str(conn.ca_file)), conn.host),
        connection_attempts=1, socket_timeout=10))
    try:
        return connection.channel().queue_declare(queue, passive=True).method.message_count
    finally:
        connection.close()


def stop_container(cfg):
    """The broker's container stopped (RabbitMQ shuts down); returned, to be started again (the same container
    and volume)."""
    box = docker_api.client().containers.get(f"{cfg.instance}-{names.SERVICE}")
    box.stop(timeout=60)
    return box


def publish_as_collector(cfg, body: bytes) -> None:
    """One message published as the collector's user with a confirm (this host, the published port)."""
    conn = names.collector_connection(host(cfg), NAME)
    connection = pika.BlockingConnection(pika.ConnectionParameters(
        conn.host, conn.port, conn.vhost, pika.PlainCredentials(conn.user, conn.password_file.read_text().strip()),
        ssl_options=pika.SSLOptions(ssl.create_default_context(cafile=str(conn.ca_file)), conn.host),
        connection_attempts=1, socket_timeout=10))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(names.EXCHANGE, names.routing_key(NAME), body, pika.BasicProperties(
            delivery_mode=pika.DeliveryMode.Persistent, content_type=names.CONTENT_TYPE), mandatory=True)
    finally:
        connection.close()


# --- the Aggregator ------------------------------------------------------------------------------------------------

@contextlib.contextmanager
def subscriber(cfg):
    """The subscriber (the service container's command) on this host, with this host's view of the broker;
    stopped (SIGTERM) afterwards."""
    folder = Path(cfg.data_root).parent
    cfg_file = folder / "subscriber.toml"
    cfg_file.write_text(configfile.to_toml(host(cfg).as_dict()))
    proc = subprocess.Popen([sys.executable, "-m", "stages.subscribe", "--config", str(cfg_file)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=open(folder / "subscriber.log", "ab"))
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def pulls(cfg) -> list[str]:
    """The remote path of every committed sync pull in the journal (the subscriber's and the scheduled sync's)."""
    return [e["info"]["remote"] for _, e in journal.committed(DataRoot(cfg.data_root), stage="sync")
            if e.get("op") == "begin" and e["info"]["collector"] == NAME]


def raw(cfg) -> dict[str, str]:
    """{path under raw/<collector>/: sha256} of what landed."""
    base = Path(cfg.data_root) / "raw" / NAME
    return {str(p.relative_to(base)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(base.rglob("*")) if p.is_file()} if base.is_dir() else {}


def settled(cfg, expected: set[str]) -> None:
    """Until every expected report is pulled and both queues are empty."""
    poll.until(lambda: set(pulls(cfg)) >= expected and quiet(cfg),
               f"{len(expected)} reports pulled and the queues drained", DRAIN, interval=0.5)


def each_once(cfg, reports: dict[str, str]) -> None:
    """Every report in raw/ exactly once with its bytes, one committed pull each, nothing dead-lettered."""
    assert sorted(pulls(cfg)) == sorted(reports)
    assert raw(cfg) == digests(reports)
    assert queued(cfg, names.DEAD_QUEUE) == 0


# --- the proofs ----------------------------------------------------------------------------------------------------

def test_the_broker_restarted_while_reports_complete_and_are_consumed_loses_and_doubles_nothing(cfg):
    before, during, after = batch("before"), batch("during"), batch("after")
    with subscriber(cfg) as proc:
        complete(cfg, before)
        poll.until(lambda: pulls(cfg), "the subscriber to pull a first report", DRAIN, interval=0.5)
        box = stop_container(cfg)  # while the rest of `before` may still be on its way
        complete(cfg, during)  # the collector goes on completing reports with the broker away
        box.start()
        broker.wait_healthy(cfg)
        complete(cfg, after)
        settled(cfg, set(before) | set(during) | set(after))
        assert proc.poll() is None  # it reconnected by itself
    each_once(cfg, before | during | after)
    assert queued(cfg) == 0  # the subscriber gone, nothing came back to the queue: all acknowledged
    assert on_collector(cfg) == set()  # every report pulled (held in .pulled/ until a release)


def test_the_broker_state_lost_mid_flight_costs_latency_never_a_report(cfg):
    first, lost, later = batch("first"), batch("lost"), batch("later")
    with subscriber(cfg):
        complete(cfg, first)
        settled(cfg, set(first))
    complete(cfg, lost)  # announced while no subscriber consumes: the claim checks wait in the queue
    poll.until(lambda: confirmed(cfg) >= set(lost), "the publisher to have the reports confirmed", DRAIN)
    assert queued(cfg) == len(lost)

    broker.stop(cfg, remove_data=True)  # the broker's state lost with the claim checks in it
    broker.start(cfg)  # a new broker, empty
    assert queued(cfg) == 0 and queued(cfg, names.DEAD_QUEUE) == 0
    complete(cfg, later)
    with subscriber(cfg):
        settled(cfg, set(later))
    # The publisher published nothing again that the lost broker had confirmed: those reports were never
    # announced, never pulled, and still wait on the collector.
    assert set(pulls(cfg)) == set(first) | set(later)
    assert on_collector(cfg) == set(lost)

    summary = sync.run(host(cfg), DataRoot(cfg.data_root))  # the scheduled sync, the safety net
    assert summary.exit_code == 0 and summary.outcomes.get("pulled") == len(lost), summary.errors
    each_once(cfg, first | lost | later)
    assert on_collector(cfg) == set()


def test_a_dead_lettered_message_shows_in_invoke_status(cfg, tmp_path):
    bad = names.ClaimCheck(NAME, "never-written.yaml", 3, "0" * 64, "2026-12-08T03:04:05Z")
    publish_as_collector(cfg, bad.to_json(indent=None).encode())
    with subscriber(cfg):
        poll.until(lambda: depths(cfg)[names.DEAD_QUEUE][0] == 1, "the message dead-lettered", DRAIN, interval=0.5)
        poll.until(lambda: quiet_but_dead(cfg), "the queue drained", DRAIN, interval=0.5)
    code, status = invoke_status(cfg, tmp_path)  # status.dead_letters_max: 0 by default
    assert code == 1
    section = status["model"]["broker"]
    assert section["state"] == "healthy" and section["enabled"] is True
    assert (section["ready"], section["unacknowledged"], section["dead"]) == (0, 0, 1)
    assert section["dead_lettered"] == 1
    (newest,) = section["newest_dead"]
    assert (newest["collector"], newest["path"]) == (NAME, "never-written.yaml")
    assert newest["reason"].startswith("missing: not on the collector")
    found = [f for f in status["findings"] if f["rule"] == "dead_letters"]
    assert len(found) == 1 and "1 message(s) dead-lettered" in found[0]["what"], found
    assert "broker_down" not in [f["rule"] for f in status["findings"]]
    assert section["last_batch_outcomes"] == {"dead_lettered": 1}

    broker.ctl(cfg, "purge_queue", "-p", names.VHOST, names.DEAD_QUEUE)  # looked at: acknowledged
    poll.until(lambda: depths(cfg)[names.DEAD_QUEUE] == (0, 0), "the dead-letter queue purged", DRAIN, interval=0.5)
    code, status = invoke_status(cfg, tmp_path)
    assert "dead_letters" not in [f["rule"] for f in status["findings"]]
    assert status["model"]["broker"]["dead_lettered"] == 1  # still in the journal's window

    broker.stop(cfg)  # enabled, and not running
    code, status = invoke_status(cfg, tmp_path)
    assert status["model"]["broker"]["state"] == "absent" and "ready" not in status["model"]["broker"]
    assert "broker_down" in [f["rule"] for f in status["findings"]]


def quiet_but_dead(cfg) -> bool:
    d = depths(cfg)
    return d[names.QUEUE] == (0, 0) and d[names.DEAD_QUEUE] == (1, 0)
