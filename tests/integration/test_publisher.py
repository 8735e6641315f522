"""The collectors' publisher (collector/publisher.py, issue 24 item 2) in a real collector container of our image,
publishing to the real broker of our image; this host reads the queue as the Aggregator's user with pika.

- Reports written atomically into the collector's archive folder: exactly one claim check each (path, size,
  sha256, collector, message id), nothing for what is in flight or held (dot-files, .pulled/).
- The broker stopped while reports keep arriving: the writes complete and the publisher lives on; the broker
  back, every report completed meanwhile is published (each exactly once after dedup by message id;
  duplicates are allowed and counted).
- A publisher configured with another collector's name is refused by the broker (403) and says so in one line.

Instance pub1 only; only the base image (when missing), the broker's and the collector's images are built, under
their own tag (`pub`), never the shared `built` fixture's set."""

from __future__ import annotations

import hashlib
import json
import ssl

import pika
import pytest
from conftest import build_tagged

from common import broker as names
from common import config, poll
from dr.engine import docker_api
from dr.services import broker, certs, collector, stack
from instances import free_port

OTHER = "other"  # a second collector the broker knows: the sample collector must not publish as it
ARCHIVE = collector.ARCHIVE
STATE = "/srv/collector/publisher-state.json"
PLAIN = "plain"  # a collector started without broker settings  # dockerfiles/collector/entrypoint.sh


def clear(cfg) -> None:
    collector.stop(cfg)
    collector.stop(cfg, PLAIN)
    broker.stop(cfg, remove_data=True)
    docker_api.remove_network(stack.network_name(cfg))


@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
    """A broker and a publishing sample collector (empty archive) of instance pub1; the broker's AMQPS port
    published on a loopback port for this host. Removed afterwards (and first: what a killed run left)."""
    root = tmp_path_factory.mktemp("publisher")
    cfg = config.load(overrides={
        "instance": "pub1", "data_root": str(root / "data"), "secrets_dir": str(root / "secrets"),
        "broker.port": free_port(), "images.tag": "pub"})
    build_tagged(cfg, ("broker", "collector"))
    clear(cfg)
    certs.make(cfg)
    try:
        broker.start(cfg, collectors=(collector.NAME, OTHER))
        collector.start(cfg, samples=False, publish=True)
        yield cfg
    finally:
        clear(cfg)


@pytest.fixture(autouse=True)
def empty_queue(cfg):
    broker.start(cfg, collectors=(collector.NAME, OTHER))  # back, if a test failed with it stopped
    broker.ctl(cfg, "purge_queue", "-p", names.VHOST, names.QUEUE)


def from_host(cfg):
    """The configuration as this host reaches the broker: its published port on the loopback (the collector
    reaches it on the instance network)."""
    return config.derive(cfg, {"broker.host": "127.0.0.1"})


def connect(cfg) -> pika.BlockingConnection:
    conn = names.aggregator_connection(from_host(cfg))
    context = ssl.create_default_context(cafile=str(conn.ca_file))
    return pika.BlockingConnection(pika.ConnectionParameters(
        conn.host, conn.port, conn.vhost, pika.PlainCredentials(conn.user, conn.password_file.read_text().strip()),
        ssl_options=pika.SSLOptions(context, conn.host), connection_attempts=1, socket_timeout=10))


def queued(cfg) -> int:
    conn = connect(cfg)
    try:
        return conn.channel().queue_declare(names.QUEUE, passive=True).method.message_count
    finally:
        conn.close()


def take_all(cfg) -> list[tuple[str, pika.BasicProperties, bytes]]:
    """As the Aggregator: every message now in the queue (routing key, properties, body), each acknowledged."""
    conn = connect(cfg)
    got = []
    try:
        channel = conn.channel()
        while True:
            method, props, body = channel.basic_get(names.QUEUE)
            if method is None:
                break
            got.append((method.routing_key, props, body))
            channel.basic_ack(method.delivery_tag)
    finally:
        conn.close()
    return got


def container(cfg, name: str = collector.NAME):
    return docker_api.client().containers.get(collector.container_name(cfg, name))


def sh(cfg, script: str, user: str = "collector", name: str = collector.NAME) -> str:
    code, out = container(cfg, name).exec_run(["sh", "-c", script], user=user)
    text = out.decode(errors="replace")
    assert code == 0, text
    return text


def write_reports(cfg, names_and_bodies: dict[str, str]) -> None:
    """Each report written as a collector does: into a dot-name, then renamed into place."""
    script = "set -e; cd " + ARCHIVE + "\n" + "".join(
        f"mkdir -p \"$(dirname '{n}')\"; printf '%s' '{b}' > \"$(dirname '{n}')/.$(basename '{n}').tmp\"; "
        f"mv \"$(dirname '{n}')/.$(basename '{n}').tmp\" '{n}'\n" for n, b in names_and_bodies.items())
    sh(cfg, script)


def confirmed(cfg) -> set[str]:
    """The reports the publisher recorded as confirmed by the broker (its state file)."""
    code, out = container(cfg).exec_run(["cat", STATE], user="collector")
    return set(json.loads(out)["published"]) if code == 0 else set()


def publisher_pid(cfg, name: str = collector.NAME) -> int | None:
    """The running (not zombie) publisher's process id in the collector container."""
    out = sh(cfg, "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null | "
                  "grep -q '^python3 -m collector.publisher ' && ! grep -q '^State:.*Z' $p/status "
                  "&& echo ${p#/proc/}; done; true", user="root", name=name)
    pids = [int(p) for p in out.split()]
    assert len(pids) <= 1, out
    return pids[0] if pids else None


def claim_of(name: str, body: str) -> dict:
    data = body.encode()
    return {"collector": collector.NAME, "path": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def test_each_complete_report_is_announced_once(cfg):
    reports = {f"r{n:02d}.yaml": f"report {n}\n" for n in range(12)}
    reports |= {"2026/12/deep.json": '{"deep": true}', "a/b/c/d/e/six.yaml": "six deep"}
    write_reports(cfg, reports)
    # In flight, held, or a name sync refuses: never announced.
    sh(cfg, f"cd {ARCHIVE} && mkdir -p .pulled && echo held > .pulled/old.yaml && echo tmp > .r99.yaml.tmp-1-0 "
            "&& echo bad > 'sp ace.yaml' && mkdir -p a/b/c/d/e/f && echo deep > a/b/c/d/e/f/seven.yaml")
    poll.until(lambda: confirmed(cfg) == set(reports), "the publisher to have every report confirmed", 60)
    assert queued(cfg) == len(reports)  # confirmed means queued: exactly one each
    got = take_all(cfg)
    assert len(got) == len(reports)
    claims = {}
    for key, props, body in got:
        claim = names.read_claim(body)
        assert key == names.routing_key(collector.NAME)
        assert (props.content_type, props.delivery_mode, props.message_id) == \
            (names.CONTENT_TYPE, 2, claim.message_id())
        claims[claim.path] = claim
    assert {p: {k: v for k, v in c.to_dict().items() if k != "completed"} for p, c in claims.items()} == \
        {n: claim_of(n, b) for n, b in reports.items()}
    # Written again with other bytes: announced again, with its new digest.
    write_reports(cfg, {"r00.yaml": "report 0, corrected\n"})
    poll.until(lambda: queued(cfg) == 1, "the changed report announced again", 60)
    (key, props, body), = take_all(cfg)
    assert names.read_claim(body).to_dict() | {"completed": ""} == \
        claim_of("r00.yaml", "report 0, corrected\n") | {"completed": ""}
    logs = container(cfg).logs().decode(errors="replace")
    assert "'sp ace.yaml' is no name sync takes" in logs and "'a/b/c/d/e/f/' is no name sync takes" in logs
    assert "Traceback" not in logs


def test_reports_completed_while_the_broker_is_away_are_published_when_it_is_back(cfg):
    pid = publisher_pid(cfg)
    assert pid is not None
    before = confirmed(cfg)
    broker.stop(cfg)  # the container removed, its volume (and the queue) kept
    away = {f"away/{n:03d}.yaml": f"written while the broker was away {n}\n" for n in range(30)}
    batches = [dict(list(away.items())[i:i + 10]) for i in range(0, len(away), 10)]
    for batch in batches:
        write_reports(cfg, batch)  # each batch's writes complete (sh checks its exit status)
        assert publisher_pid(cfg) == pid  # and the publisher lives on, retrying
    assert set(sh(cfg, f"cd {ARCHIVE} && find away -type f").split()) == set(away)
    assert confirmed(cfg) == before  # nothing could be confirmed meanwhile
    broker.start(cfg, collectors=(collector.NAME, OTHER))
    poll.until(lambda: confirmed(cfg) >= set(away), "the reports written meanwhile confirmed", 120)
    assert publisher_pid(cfg) == pid
    got = take_all(cfg)
    ids = [props.message_id for _, props, _ in got]
    unique = {names.read_claim(body).message_id(): names.read_claim(body) for _, _, body in got}
    expected = {f"{collector.NAME}/{n}@{hashlib.sha256(b.encode()).hexdigest()}" for n, b in away.items()}
    assert set(unique) == expected  # each exactly once after dedup by message id
    duplicates = len(ids) - len(set(ids))
    print(f"{len(ids)} messages for {len(away)} reports: {duplicates} duplicate(s)")
    logs = container(cfg).logs().decode(errors="replace")
    assert "is unavailable" in logs and "retrying in" in logs
    assert "Traceback" not in logs


def test_a_publisher_with_another_collectors_name_is_refused_and_says_so(cfg):
    write_reports(cfg, {"for-the-refused.yaml": "x\n"})
    code, out = container(cfg).exec_run(
        ["python3", "-m", "collector.publisher", "--archive", ARCHIVE, "--collector", OTHER,
         "--user", names.collector_user(collector.NAME), "--broker", f"{names.address(cfg)[0]}:{names.PORT}",
         "--password-file", "/run/publisher/password", "--ca-file", "/run/publisher/ca.crt",
         "--state", "/tmp/other-state.json", "--once"], user="collector")
    text = out.decode(errors="replace")
    assert code == 2, text
    assert "Traceback" not in text
    refusal = [line for line in text.splitlines() if "refused" in line]
    assert len(refusal) == 1, text
    assert f"as collector '{OTHER}'" in refusal[0] and "403 ACCESS_REFUSED" in refusal[0], text
    # The collector's own publisher still announces its report; nothing went out under the other key.
    poll.until(lambda: confirmed(cfg) >= {"for-the-refused.yaml"}, "the sample publisher's confirm", 60)
    assert {key for key, _, _ in take_all(cfg)} == {names.routing_key(collector.NAME)}


def test_a_collector_without_broker_settings_runs_no_publisher(cfg):
    entry = collector.start(cfg, name=PLAIN, samples=False, publish=False)
    try:
        assert entry["name"] == PLAIN
        assert publisher_pid(cfg, PLAIN) is None
        env = container(cfg, PLAIN).attrs["Config"]["Env"]
        assert not [e for e in env if e.startswith("BROKER")]
    finally:
        collector.stop(cfg, PLAIN)
