"""subscribe: the Aggregator's consumer of the broker's claim checks (docs/broker.md). Each message names one
report a collector completed; the subscriber pulls exactly those files with sync's verified path
(stages/sync.sync_collector, asked for them by name), into raw/<collector>/, and acknowledges a message only
once its file is durable and verified there (its pull's journal transaction committed).

A long-running process, logged in as the broker's Aggregator user over TLS (verified with our CA). Messages
are taken in batches (those that arrive within BATCH_SECONDS, at most PREFETCH), grouped by collector; each
batch runs as sync, under sync's stage lock (waiting while the scheduled sync runs, released between
batches), its pulls journalled as sync's. Per message:

- not a claim check, a routing key that is not its collector's, a collector not configured: rejected
  (dead-lettered to reports.dead), the reason logged and journalled (a note, event "dead_lettered");
- the journal already shows a committed pull of that collector, path and sha256 (a duplicate, a
  redelivery): acknowledged, counted as a duplicate; nothing pulled;
- pulled and committed: acknowledged;
- not on the collector (and never pulled), or other bytes there (size, sha256), a name sync refuses, or a file
  sync set aside as poison: rejected with the reason;
- not this time (the collector not reached, the disk short of its reserve, the file changed while pulled,
  rsync could not pull it): requeued (nack) after a backoff per collector; a message redelivered more often
  than the queue's delivery limit is dead-lettered by the broker.

Each batch is a Summary (stages/cli.py) of stage "subscribe", printed as one JSON line on stdout and journalled
(a note, event "batch"). The subscriber lands reports in raw/; sanitize and import still run on the schedule.

    python -m stages.subscribe --data-root DIR [--config FILE] [--crash-before-ack]

--crash-before-ack is a drill's and the tests' option: the process kills itself (SIGKILL) after its first
batch is durable and before it acknowledges anything, which is what a crash between a pull and its ack
leaves (the messages are delivered again, and acknowledged as duplicates).
"""

from __future__ import annotations

import argparse
import os
import signal
import ssl
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from common import broker, log
from common.errors import CommandError, DrError
from common.records import RecordError
from stages import failures, journal, stage, sync
from stages.cli import EXIT_INFRA, CollectorPull, Summary
from stages.cli import load as load_config
from stages.layout import DataRoot

STAGE = "subscribe"
PREFETCH = 64  # messages handed to this consumer before it acknowledges any (basic.qos)
BATCH_SECONDS = 0.2  # a batch: the messages that arrive within this long of its first one
HEARTBEAT = 600  # seconds: a batch may wait for the scheduled sync and pull for a while
BACKOFF = (1, 2, 5, 10, 30, 60)  # seconds before a message that failed for now is requeued (per collector, growing)

_log = log.get(STAGE)


@dataclass(frozen=True)
class Delivery:
    """One message as the broker delivered it."""
    tag: int
    routing_key: str
    body: bytes


def claim_of(d: Delivery, configured: set[str]) -> broker.ClaimCheck | str:
    """The message's claim check, or why it is rejected: not a claim check, a routing key other than its
    collector's, a collector not configured. Pure."""
    try:
        claim = broker.read_claim(d.body)
    except RecordError as exc:
        return str(exc)
    if d.routing_key != broker.routing_key(claim.collector):
        return f"routing key {d.routing_key!r} is not collector {claim.collector!r}'s"
    if claim.collector not in configured:
        return f"collector {claim.collector!r} is not configured"
    return claim


def group(claims: list[tuple[Delivery, broker.ClaimCheck]]) -> dict[str, list[tuple[Delivery, broker.ClaimCheck]]]:
    """The claims by collector, each collector's in the order they came, collectors in order of first
    appearance. Pure."""
    out: dict[str, list[tuple[Delivery, broker.ClaimCheck]]] = {}
    for d, claim in claims:
        out.setdefault(claim.collector, []).append((d, claim))
    return out


def asked_for(claims: list[broker.ClaimCheck]) -> sync.Asked:
    """What to ask sync for: one file per path, the first claim's size and sha256 (a later claim of the same
    path with other bytes is decided on its own once the first is done). Pure."""
    files: dict[str, tuple[int, str]] = {}
    for claim in claims:
        files.setdefault(claim.path, (claim.size, claim.sha256))
    return sync.Asked(files)


class Pulled:
    """The committed pulls of this data root's journal (sync's transactions), read incrementally: which
    (collector, path, sha256) are in raw/ already, and sync's Known (what each collector holds in .pulled/)."""

    def __init__(self) -> None:
        self.offset = 0
        self.begun: dict[str, dict] = {}
        self.pulls: set[tuple[str, str, str]] = set()
        self.known: sync.Known = {}

    def add(self, entry: dict) -> None:
        """One line of sync's (journal.read's entry), in journal order. Pure."""
        op = entry.get("op")
        if op == "begin":
            self.begun[entry.get("txid", "")] = entry
        elif op == "abort":
            self.begun.pop(entry.get("txid", ""), None)
        elif op == "commit" and entry.get("txid") in self.begun:
            begin = self.begun.pop(entry["txid"])
            info = begin.get("info") or {}
            if info.get("collector") and info.get("remote") and info.get("sha256"):
                self.pulls.add((info["collector"], info["remote"], info["sha256"]))
            sync.remember(self.known, begin)

    def update(self, dr: DataRoot) -> "Pulled":
        """Read what the journal gained since the last update (all of it when it got shorter: a restore)."""
        if journal.position(dr) < self.offset:
            self.__init__()
        for offset, entry in journal.read(dr, self.offset, stage=sync.STAGE):
            self.add(entry)
            self.offset = offset
        return self

    def has(self, claim: broker.ClaimCheck) -> bool:
        return (claim.collector, claim.path, claim.sha256) in self.pulls


# What to do with a message: acknowledge it, reject it (dead-lettered) with a reason, or requeue it later.
ACK, REJECT, REQUEUE = "ack", "reject", "requeue"


def decide(claim: broker.ClaimCheck, pulled: bool, asked: sync.Asked | None) -> tuple[str, str]:
    """(ACK, REJECT or REQUEUE, the outcome counted or the reason) for one claim after its batch: pulled, the
    journal shows its pull committed; asked, what sync was asked for its collector (None: nothing, every claim
    of the collector was a duplicate, or the collector was not reached). Pure."""
    if pulled:
        return ACK, "pulled"
    if asked is None:
        return REQUEUE, "the collector was not reached"
    if asked.files.get(claim.path, (None, None))[1] != claim.sha256:
        return REQUEUE, "another message of the batch asked for the same path with other bytes"
    outcome, why = asked.outcome.get(claim.path, ("unreached", "the collector was not reached"))
    if outcome in sync.DONE:  # the journal shows it; a pull here that another sha256 claim raced: decided later
        return REQUEUE, f"{outcome} but not with this sha256"
    if outcome in sync.REFUSED:
        return REJECT, f"{outcome}: {why}"
    return REQUEUE, f"{outcome}: {why}"


@dataclass
class Backoff:
    """How long to wait before requeuing a collector's messages: growing with its failures in a row."""
    failures: dict[str, int] = field(default_factory=dict)

    def failed(self, collector: str) -> float:
        n = self.failures.get(collector, 0)
        self.failures[collector] = n + 1
        return BACKOFF[min(n, len(BACKOFF) - 1)]

    def reached(self, collector: str) -> None:
        self.failures.pop(collector, None)


def connect(conn: broker.Connection):
    """A blocking connection to the broker as conn's user over TLS, the broker's certificate verified with
    conn's CA and its name."""
    import pika

    context = ssl.create_default_context(cafile=str(conn.ca_file))
    password = conn.password_file.read_text().strip()
    return pika.BlockingConnection(pika.ConnectionParameters(
        conn.host, conn.port, conn.vhost, pika.PlainCredentials(conn.user, password),
        ssl_options=pika.SSLOptions(context, conn.host), connection_attempts=1, socket_timeout=10,
        heartbeat=HEARTBEAT, blocked_connection_timeout=60))


class Subscriber:
    """One consumer on the broker's queue: batches of messages, each pulled, journalled, then acknowledged."""

    def __init__(self, cfg, dr: DataRoot, crash_before_ack: bool = False):
        self.cfg = cfg
        self.dr = dr
        self.crash_before_ack = crash_before_ack
        self.collectors = {c.name: c for c in cfg.collectors}
        self.pulled = Pulled()
        self.backoff = Backoff()
        self.parked: list[tuple[float, int]] = []  # (when to requeue, delivery tag)
        self.connection = None
        self.channel = None

    # --- the batch (no broker in here but through ack/reject/park) ------------------------------------------

    def handle(self, batch: list[Delivery]) -> Summary:
        """Decide every message of a batch: the rejects at once, the rest after their pulls are committed."""
        claims: list[tuple[Delivery, broker.ClaimCheck]] = []
        done: list[tuple[Delivery, str, str]] = []  # (delivery, ACK/REJECT/REQUEUE, outcome or reason)
        for d in batch:
            claim = claim_of(d, set(self.collectors))
            if isinstance(claim, str):
                done.append((d, REJECT, claim))
            else:
                claims.append((d, claim))
        summary = Summary(STAGE)
        if claims:
            summary = self.pull_all(claims, done)
        if self.crash_before_ack and any(action == ACK for _, action, _ in done):
            _log.warning("--crash-before-ack: killing myself before acknowledging %d message(s)", len(done))
            os.kill(os.getpid(), signal.SIGKILL)
        later: dict[str, list[int]] = {}
        for d, action, why in done:
            self.settle(d, action, why, summary, later)
        for collector, tags in later.items():  # requeued after a wait, the longer the more often it failed
            when = time.monotonic() + self.backoff.failed(collector)
            self.parked += [(when, tag) for tag in tags]
        return summary.finish()

    def pull_all(self, claims: list[tuple[Delivery, broker.ClaimCheck]], done: list) -> Summary:
        """Under sync's stage lock (waiting while the scheduled sync runs): each collector's claims that the
        journal does not show pulled asked of sync_collector, then every claim decided (appended to done)."""
        with tempfile.TemporaryDirectory(prefix="subscribe-") as tmp, \
                stage.running(self.cfg, self.dr, STAGE, as_stage=sync.STAGE, wait=self.wait) as summary:
            fails = failures.Failures.load(self.dr, sync.STAGE)
            self.pulled.update(self.dr)
            for name, items in group(claims).items():
                seen = {id(c) for _, c in items if self.pulled.has(c)}
                fresh = [c for _, c in items if id(c) not in seen]
                asked = asked_for(fresh) if fresh else None
                if asked is not None:
                    self.pull(name, asked, summary, Path(tmp), fails)
                    self.pulled.update(self.dr)
                for d, claim in items:
                    if id(claim) in seen:
                        done.append((d, ACK, "duplicate"))
                    else:
                        done.append((d, *decide(claim, self.pulled.has(claim), asked)))
            fails.save()
        return summary

    def pull(self, name: str, asked: sync.Asked, summary: Summary, workdir: Path, fails) -> None:
        """Pull the files asked for from one collector (sync's verified path); a collector not reached: every
        file asked is left unreached."""
        pull = CollectorPull(name)
        summary.collectors.append(pull)
        try:
            sync.sync_collector(self.cfg, self.dr, self.collectors[name], summary, workdir, fails, pull,
                                self.pulled.known, asked)
            self.backoff.reached(name)
        except CommandError as exc:
            pull.error = f"{exc.argv[0]} failed (exit {exc.returncode}): {exc.stderr_tail.strip()[-300:]}"
            summary.notes.append(f"{name}: {pull.error}")

    def settle(self, d: Delivery, action: str, why: str, summary: Summary, later: dict[str, list[int]]) -> None:
        """Acknowledge, reject (journalled) or set aside for a requeue (later: {collector: delivery tags})."""
        if action == ACK:
            self.channel.basic_ack(d.tag)
            summary.count(f"acked:{why}")
        elif action == REJECT:
            self.channel.basic_reject(d.tag, requeue=False)
            summary.count("dead_lettered")
            try:
                claim = broker.read_claim(d.body).to_dict()
            except RecordError:
                claim = {"body": d.body[:200].decode("utf-8", "replace")}
            journal.append(self.dr, {"time": journal.now(), "op": "note", "stage": STAGE, "event": "dead_lettered",
                                     "routing_key": d.routing_key, "reason": why, **claim})
            _log.warning("dead-lettered a message (%s): %s", d.routing_key, why)
        else:
            later.setdefault(d.routing_key.removeprefix("collector."), []).append(d.tag)
            summary.count("requeued")
            _log.info("requeuing a message (%s) after a wait: %s", d.routing_key, why)

    def wait(self) -> None:
        """While the scheduled sync holds its lock: keep the connection alive, and wait a little."""
        self.connection.process_data_events(time_limit=0.5)

    def requeue_due(self) -> None:
        now = time.monotonic()
        due = [tag for when, tag in self.parked if when <= now]
        self.parked = [(when, tag) for when, tag in self.parked if when > now]
        for tag in due:
            self.channel.basic_nack(tag, requeue=True)

    # --- the broker -------------------------------------------------------------------------------------------

    def batches(self):
        """Batches of deliveries, forever: the messages that arrive within BATCH_SECONDS of the first, at most
        PREFETCH; parked messages requeued when due meanwhile."""
        batch: list[Delivery] = []
        first = 0.0
        for method, _, body in self.channel.consume(broker.QUEUE, inactivity_timeout=BATCH_SECONDS):
            if method is not None:
                if not batch:
                    first = time.monotonic()
                batch.append(Delivery(method.delivery_tag, method.routing_key, body))
            if batch and (method is None or len(batch) >= PREFETCH or time.monotonic() - first >= BATCH_SECONDS):
                yield batch
                batch = []
            self.requeue_due()

    def serve(self) -> None:
        """Consume until stopped; reconnect (with a backoff) whenever the broker is away."""
        import pika.exceptions

        conn = broker.aggregator_connection(self.cfg)
        attempt = 0
        while True:
            try:
                self.connection = connect(conn)
                self.channel = self.connection.channel()
                self.channel.basic_qos(prefetch_count=PREFETCH)
                self.parked = []  # a new connection: the broker requeued every unacknowledged message
                _log.info("consuming %s at %s:%d as %s", broker.QUEUE, conn.host, conn.port, conn.user)
                attempt = 0
                for batch in self.batches():
                    summary = self.handle(batch)
                    print(summary.to_json(indent=None), flush=True)
                    journal.append(self.dr, {"time": journal.now(), "op": "note", "stage": STAGE, "event": "batch",
                                             "summary": summary.to_dict()})
            except (pika.exceptions.AMQPConnectionError, pika.exceptions.AMQPChannelError,
                    pika.exceptions.StreamLostError, ssl.SSLError, OSError) as exc:
                delay = BACKOFF[min(attempt, len(BACKOFF) - 1)]
                attempt += 1
                _log.warning("the broker at %s:%d: %s; trying again in %ds", conn.host, conn.port,
                             str(exc) or type(exc).__name__, delay)
                self.close()
                time.sleep(delay)

    def close(self) -> None:
        try:
            if self.connection is not None and self.connection.is_open:
                self.connection.close()
        except Exception:  # noqa: BLE001 - a connection already broken: nothing to close
            pass
        self.connection = self.channel = None


def _stopped(signum, frame):
    raise KeyboardInterrupt  # unacknowledged messages go back to the queue when the connection closes


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m stages.subscribe", description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", help="the data root (default: data_root from the configuration)")
    p.add_argument("--config", help="configuration file (TOML)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one configuration key")
    p.add_argument("--crash-before-ack", action="store_true",
                   help="drills and tests: SIGKILL this process after its first batch is durable, before any ack")
    args = p.parse_args(argv)
    log.setup()
    signal.signal(signal.SIGTERM, _stopped)  # `docker stop`: as PID 1 it would be ignored otherwise
    try:
        cfg, dr = load_config(args)
        if not cfg.collectors:
            raise DrError("no collectors are configured ([[collectors]] in the configuration)")
        Subscriber(cfg, dr, args.crash_before_ack).serve()
    except DrError as exc:
        print(f"{STAGE}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 0
    except OSError as exc:
        print(f"{STAGE}: infrastructure error: {exc}", file=sys.stderr)
        return EXIT_INFRA
    return 0


if __name__ == "__main__":
    sys.exit(main())
