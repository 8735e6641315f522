"""The subscriber (stages/subscribe.py) against the real broker of our image and real collector containers
(sshd, rsync): claim checks published with pika as each collector's user, with publisher confirms; subscriber
processes run on this host (`python -m stages.subscribe`, as the service container runs it) and are killed
like a crash; the service container itself once (`dr/jobs/subscriber.py`).

Only the base image (when missing) and the images these tests need are built, under a tag of their own (TAG),
so they never replace the images other tests run; never the shared `built` fixture's whole set."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
from pathlib import Path

import pika
import pytest
from conftest import build_tagged

from common import broker as names
from common import config, poll
from dr.jobs import subscriber
from dr.machine import configfile
from dr.services import broker, certs, collector
from instances import free_port, remove_instance
from stages import journal, sync
from stages.layout import DataRoot

TAG = "subscribe-tests"
COLLECTORS = ("c1", "c2")
REPO = Path(__file__).resolve().parents[2]
DRAIN = 600  # seconds: a generous deadline for a queue to drain (no timing assertion)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Instance sub1: the broker (reached on a loopback port) and two collectors full of the sample reports
    (on loopback ports too), the users of both in the broker; everything removed afterwards (and first)."""
    root = tmp_path_factory.mktemp("subscribe")
    cfg = config.load(overrides={
        "instance": "sub1", "data_root": str(root / "data"), "secrets_dir": str(root / "secrets"),
        "images.tag": TAG, "broker.host": "127.0.0.1", "broker.port": free_port()})
    build_tagged(cfg, ("broker", "collector", "sync"))
    remove_instance(cfg)
    certs.make(cfg)
    entries = [collector.start(cfg, port=free_port(), name=name) for name in COLLECTORS]
    cfg = config.derive(cfg, {"collectors": entries})
    try:
        broker.start(cfg)
        yield cfg
    finally:
        subscriber.stop(cfg)
        for name in COLLECTORS:
            collector.stop(cfg, name)
        remove_instance(cfg)


@pytest.fixture
def cfg(setup, tmp_path):
    """A fresh data root, both collectors full of the samples again, the queues empty."""
    for name in COLLECTORS:
        collector.start(setup, port=next(e.port for e in setup.collectors if e.name == name), name=name)
    for queue in (names.QUEUE, names.DEAD_QUEUE):
        broker.ctl(setup, "purge_queue", "-p", names.VHOST, queue)
    return config.derive(setup, {"data_root": str(tmp_path / "data")})


# --- the collectors' side ------------------------------------------------------------------------------------------

def container(cfg, name: str):
    from dr.engine import docker_api
    return docker_api.client().containers.get(collector.container_name(cfg, name))


def reports(cfg, name: str) -> dict[str, tuple[int, str]]:
    """The collector's closed reports: {path: (size, sha256)}."""
    out = container(cfg, name).exec_run(
        ["sh", "-c", f"cd {collector.ARCHIVE} && find . -path ./.pulled -prune -o -type f -printf '%s %P\\n' | "
         "while read -r size path; do printf '%s %s %s\\n' \"$size\" \"$(sha256sum < \"$path\" | cut -c1-64)\" "
         "\"$path\"; done"], user="collector").output.decode()
    rows = (line.split(" ", 2) for line in out.splitlines() if line)
    return {path: (int(size), sha) for size, sha, path in rows}


def claim(name: str, path: str, size: int, sha: str) -> names.ClaimCheck:
    return names.ClaimCheck(name, path, size, sha, dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))


def connect(cfg, user: str) -> pika.BlockingConnection:
    import ssl
    conn = names.connection(cfg, user)
    return pika.BlockingConnection(pika.ConnectionParameters(
        conn.host, conn.port, conn.vhost, pika.PlainCredentials(user, conn.password_file.read_text().strip()),
        ssl_options=pika.SSLOptions(ssl.create_default_context(cafile=str(conn.ca_file)), conn.host),
        connection_attempts=1, socket_timeout=10))


def publish(cfg, claims: list[names.ClaimCheck], body: bytes | None = None, as_collector: str | None = None) -> None:
    """Each claim published by its collector with publisher confirms (persistent, mandatory), as the
    collectors' publisher does; body: that body instead, as as_collector."""
    by: dict[str, list[bytes]] = {}
    for c in claims:
        by.setdefault(c.collector, []).append(c.to_json(indent=None).encode())
    if body is not None:
        by.setdefault(as_collector, []).append(body)
    for name, bodies in by.items():
        conn = connect(cfg, names.collector_user(name))
        try:
            channel = conn.channel()
            channel.confirm_delivery()
            for b in bodies:
                channel.basic_publish(names.EXCHANGE, names.routing_key(name), b, pika.BasicProperties(
                    delivery_mode=pika.DeliveryMode.Persistent, content_type=names.CONTENT_TYPE), mandatory=True)
        finally:
            conn.close()


def queued(cfg, queue: str = names.QUEUE) -> int:
    """Messages ready in the queue (a passive declare; unacknowledged ones are not counted)."""
    conn = connect(cfg, names.AGGREGATOR_USER)
    try:
        return conn.channel().queue_declare(queue, passive=True).method.message_count
    finally:
        conn.close()


# --- the Aggregator's side -----------------------------------------------------------------------------------------

@contextlib.contextmanager
def subscribers(cfg, n: int = 1, crash_before_ack: bool = False):
    """n subscriber processes on this host (the configuration written to a file, as the service gets it);
    stopped (SIGTERM) afterwards. Yields the processes."""
    folder = Path(cfg.data_root).parent
    cfg_file = folder / "subscriber.toml"
    cfg_file.write_text(configfile.to_toml(cfg.as_dict()))
    argv = [sys.executable, "-m", "stages.subscribe", "--config", str(cfg_file)]
    argv += ["--crash-before-ack"] if crash_before_ack else []
    procs = [subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=open(folder / f"sub{i}.log", "ab"))
             for i in range(n)]
    try:
        yield procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
            p.wait(timeout=60)


def pulls(cfg) -> list[tuple[str, str]]:
    """(collector, path) of every committed pull in the journal, in order."""
    return [(e["info"]["collector"], e["info"]["remote"]) for _, e in journal.committed(DataRoot(cfg.data_root),
            stage="sync") if e.get("op") == "begin"]


def notes(cfg, event: str) -> list[dict]:
    return [e for _, e in journal.read(DataRoot(cfg.data_root), stage="subscribe") if e.get("event") == event]


def raw(cfg, name: str) -> dict[str, str]:
    """{path under raw/<collector>/: sha256} of what landed."""
    import hashlib
    base = Path(cfg.data_root) / "raw" / name
    return {str(p.relative_to(base)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(base.rglob("*")) if p.is_file()} if base.is_dir() else {}


def outcomes(cfg) -> dict[str, int]:
    """The subscribers' counts over every batch they journalled (a batch's note follows its acks)."""
    total: dict[str, int] = {}
    for n in notes(cfg, "batch"):
        for k, v in n["summary"]["outcomes"].items():
            total[k] = total.get(k, 0) + v
    return total


def acked(cfg) -> int:
    return sum(v for k, v in outcomes(cfg).items() if k.startswith("acked:"))


def drained(cfg, acks: int, dead: int = 0) -> None:
    """Until the subscribers have acknowledged acks messages and dead-lettered dead."""
    poll.until(lambda: acked(cfg) >= acks and outcomes(cfg).get("dead_lettered", 0) >= dead,
               f"{acks} messages acknowledged and {dead} dead-lettered", DRAIN, interval=0.5)


def all_acknowledged(cfg) -> None:
    """After the subscribers are gone: nothing came back to the queue (an unacknowledged message would)."""
    assert queued(cfg) == 0


def every_claim(cfg) -> list[names.ClaimCheck]:
    return [claim(n, p, size, sha) for n in COLLECTORS for p, (size, sha) in sorted(reports(cfg, n).items())]


# --- the tests -----------------------------------------------------------------------------------------------------

def test_a_message_per_report_over_two_collectors_lands_each_once(cfg):
    claims = every_claim(cfg)
    assert len(claims) == 40
    with subscribers(cfg):
        publish(cfg, claims)
        drained(cfg, 40)
    all_acknowledged(cfg)
    assert sorted(pulls(cfg)) == sorted((c.collector, c.path) for c in claims)
    for name in COLLECTORS:
        assert raw(cfg, name) == {c.path: c.sha256 for c in claims if c.collector == name}
        assert reports(cfg, name) == {}  # held in .pulled/ (release "set") until a set holds them
    assert queued(cfg, names.DEAD_QUEUE) == 0


def test_duplicates_and_a_message_for_a_report_already_pulled_are_acknowledged_without_a_pull(cfg):
    one = every_claim(cfg)[0]
    with subscribers(cfg):
        publish(cfg, [one, one])
        drained(cfg, 2)
        publish(cfg, [one])  # announced again after its pull (the report is no longer on the collector)
        drained(cfg, 3)
    all_acknowledged(cfg)
    assert pulls(cfg) == [(one.collector, one.path)]
    assert outcomes(cfg)["acked:duplicate"] >= 1
    assert queued(cfg, names.DEAD_QUEUE) == 0


def test_two_subscribers_on_one_queue_pull_each_report_once(cfg):
    claims = every_claim(cfg)
    with subscribers(cfg, 2) as procs:
        publish(cfg, claims + claims)  # every report announced twice: both subscribers get some of each
        drained(cfg, 80)
        assert all(p.poll() is None for p in procs)
    all_acknowledged(cfg)
    assert sorted(pulls(cfg)) == sorted((c.collector, c.path) for c in claims)
    assert sum(len(raw(cfg, n)) for n in COLLECTORS) == 40


def test_a_subscriber_killed_between_pull_and_ack_acknowledges_the_redelivery_as_a_duplicate(cfg):
    claims = every_claim(cfg)[:5]
    publish(cfg, claims)
    with subscribers(cfg, crash_before_ack=True) as (proc,):
        assert proc.wait(timeout=DRAIN) == -signal.SIGKILL
    durable = pulls(cfg)
    assert durable and len(durable) <= 5  # its first batch: committed, never acknowledged
    with subscribers(cfg):
        drained(cfg, 5)
    all_acknowledged(cfg)
    assert sorted(pulls(cfg)) == sorted((c.collector, c.path) for c in claims)  # each pulled once
    assert outcomes(cfg).get("acked:duplicate", 0) == len(durable)
    assert len(raw(cfg, "c1")) == 5


def test_a_report_that_is_not_there_or_has_another_digest_is_dead_lettered_and_the_queue_goes_on(cfg):
    good = every_claim(cfg)
    missing = claim("c1", "no-such-report.yaml", 10, "0" * 64)
    other = good[1]
    other = claim(other.collector, other.path, other.size, "f" * 64)
    publish(cfg, [missing, other], body=b"not a claim check", as_collector="c2")
    publish(cfg, [g for g in good if g.path != other.path or g.collector != other.collector])
    with subscribers(cfg):
        drained(cfg, 39, dead=3)
    all_acknowledged(cfg)
    assert queued(cfg, names.DEAD_QUEUE) == 3
    dead = {(n.get("collector"), n.get("path")): n["reason"] for n in notes(cfg, "dead_lettered")}
    assert dead[("c1", "no-such-report.yaml")].startswith("missing: not on the collector")
    assert dead[(other.collector, other.path)].startswith("other_bytes: sha256")
    assert "not JSON" in dead[(None, None)]
    assert len(pulls(cfg)) == 39


def test_the_scheduled_sync_beside_it_takes_what_no_message_announced_and_nothing_twice(cfg):
    claims = every_claim(cfg)
    with subscribers(cfg):
        publish(cfg, claims[:5])
        drained(cfg, 5)
    summary = sync.run(cfg, DataRoot(cfg.data_root))
    assert summary.exit_code == 0 and summary.outcomes == {"pulled": 35, "held_on_collector": 35}, summary.errors
    assert sorted(pulls(cfg)) == sorted((c.collector, c.path) for c in claims)
    with subscribers(cfg):
        publish(cfg, claims[5:7])  # announced late, after the scheduled sync took them
        drained(cfg, 7)
    assert outcomes(cfg)["acked:duplicate"] == 2 and len(pulls(cfg)) == 40


def test_a_flood_of_messages_drains(cfg):
    box = container(cfg, "c2")
    made = box.exec_run(["sh", "-c", f"cd {collector.ARCHIVE} && mkdir -p flood && for i in $(seq 1 500); do "
                         "echo \"report $i\" > flood/r$i.yaml; done"], user="collector")
    assert made.exit_code == 0, made.output
    claims = [c for c in every_claim(cfg) if c.path.startswith("flood/")]
    assert len(claims) == 500
    publish(cfg, claims)
    with subscribers(cfg):
        drained(cfg, 500)
    all_acknowledged(cfg)
    assert len(raw(cfg, "c2")) == 500 and len(set(pulls(cfg))) == 500


def test_the_service_container_pulls_what_is_announced(cfg):
    claims = every_claim(cfg)[:3]
    inside = [dict(e.as_dict(), host=collector.container_name(cfg, e.name),
                   port=22) for e in cfg.collectors]  # the collectors as the container reaches them
    cfg = config.derive(cfg, {"collectors": inside})
    # the subscriber's own container (invoke subscribe starts sanitize and the importer following their
    # inputs beside it: they would move the reports on from raw/; tests/integration/test_arrivals.py runs them)
    assert subscriber.start_one(cfg, subscriber.SERVICE) == "started"
    try:
        publish(cfg, claims)
        drained(cfg, 3)
        assert sorted(raw(cfg, "c1")) == sorted(c.path for c in claims)
        assert os.stat(Path(cfg.data_root) / "raw" / "c1").st_uid == 990  # written by the stages' user
    finally:
        subscriber.stop(cfg)
    all_acknowledged(cfg)
