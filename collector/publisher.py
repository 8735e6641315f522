"""The publisher a collector runs beside its archive folder: it announces each complete report to the broker
with a claim check (common/broker.ClaimCheck), and never touches the reports (docs/broker.md, "The publisher").

    python3 -m collector.publisher --archive DIR --collector NAME --broker HOST:PORT \\
        --password-file FILE --ca-file FILE --state FILE [--user USER] [--interval SECONDS] [--once]

It polls the archive folder (every --interval seconds), hashes each report it has not published yet (or that
changed since), and publishes its claim check persistent and mandatory to the exchange with the collector's
own routing key, with publisher confirms; what the broker confirmed goes into the state file (atomically), so
a restart does not publish it again. While the broker is away it retries with a capped, jittered exponential
backoff; what was completed meanwhile is found by the next scan. It is its own process and only reads the
archive: a broker that is away never blocks or slows the collector.

Exit status: 0 after --once published everything; 1 when --once could not reach the broker; 2 for a
configuration error (a file that does not read, or a publish the broker refused: ACCESS_REFUSED, such as the
routing key of another collector), with one line saying which.
"""

from __future__ import annotations

import argparse
import signal
import ssl
import sys
import time
from pathlib import Path

import pika
import pika.exceptions

from collector import pending
from common import broker, log, paths
from common.broker import ClaimCheck

_log = log.get("publisher")

EXIT_UNAVAILABLE = 1
EXIT_CONFIG = 2
SAVE_EVERY = 100          # confirmed reports between two writes of the state file within one pass
SOCKET_TIMEOUT = 10.0
BLOCKED_TIMEOUT = 60.0    # a broker that blocks publishers (a resource alarm) this long: reconnect later


class ConfigurationError(Exception):
    """Something only the operator can fix: the publisher says what, once, and exits."""


class Unavailable(Exception):
    """The broker cannot take the claim checks now (it returned or refused one): retry later."""


def parse_address(text: str) -> tuple[str, int]:
    """HOST:PORT (an IPv6 address in brackets) as (host, port)."""
    host, sep, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigurationError(f"--broker {text!r}: expected HOST:PORT")
    return host, int(port)


def parameters(host: str, port: int, user: str, password_file: Path, ca_file: Path) -> pika.ConnectionParameters:
    """AMQPS to host:port as user, the broker's certificate verified against ca_file for host."""
    try:
        password = password_file.read_text().strip()
    except OSError as exc:
        raise ConfigurationError(f"the password file {password_file} does not read: {exc.strerror}") from None
    if not password:
        raise ConfigurationError(f"the password file {password_file} is empty")
    try:
        context = ssl.create_default_context(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(f"the CA file {ca_file} does not read: {exc}") from None
    return pika.ConnectionParameters(
        host, port, broker.VHOST, pika.PlainCredentials(user, password),
        ssl_options=pika.SSLOptions(context, host), connection_attempts=1, socket_timeout=SOCKET_TIMEOUT,
        blocked_connection_timeout=BLOCKED_TIMEOUT)


class Publisher:
    """The archive folder, the state file and what was said about them; one connection at a time."""

    def __init__(self, archive: Path, collector: str, state_file: Path):
        self.archive = archive
        self.collector = collector
        self.key = broker.routing_key(collector)
        self.state_file = state_file
        self.unsafe_said: set[str] = set()
        try:
            self.state = pending.load_state(state_file)
        except ValueError as exc:
            _log.warning("publisher: %s; starting afresh (what was published is published again: harmless)", exc)
            self.state = {}

    def save(self) -> None:
        try:
            pending.save_state(self.state_file, self.state)
        except OSError as exc:
            raise ConfigurationError(f"the state file {self.state_file} cannot be written: {exc}") from None

    def publish_pending(self, channel) -> int:
        """Publish what the archive folder holds that the broker did not confirm yet; the number published."""
        found = pending.scan(self.archive)
        for name in sorted(set(found.unsafe) - self.unsafe_said):
            _log.warning("publisher: %r is no name sync takes (unsafe, or deeper than %d): not published",
                         name, paths.MAX_DEPTH)
        self.unsafe_said |= set(found.unsafe)
        kept = pending.forget_gone(self.state, found.files)
        dirty = len(kept) != len(self.state)
        self.state = kept
        published = unsaved = 0
        try:
            for seen in pending.to_publish(found.files, self.state):
                sha256 = pending.read_digest(self.archive, seen)
                if sha256 is None:
                    continue  # changed or gone while read: the next scan sees it
                before = self.state.get(seen.path)
                if before is None or before.sha256 != sha256:
                    self.send(channel, pending.claim(self.collector, seen, sha256))
                    published += 1
                self.state[seen.path] = pending.Published(seen.size, seen.mtime_ns, sha256)
                dirty = True
                unsaved += 1
                if unsaved >= SAVE_EVERY:
                    self.save()
                    dirty, unsaved = False, 0
        finally:
            if dirty:
                self.save()
        return published

    def send(self, channel, claim: ClaimCheck) -> None:
        """Publish one claim check and wait for the broker's confirm."""
        try:
            channel.basic_publish(
                broker.EXCHANGE, self.key, claim.to_json().encode(),
                pika.BasicProperties(content_type=broker.CONTENT_TYPE, delivery_mode=pika.DeliveryMode.Persistent,
                                     message_id=claim.message_id()),
                mandatory=True)
        except pika.exceptions.UnroutableError:
            _log.warning("publisher: the broker returned the claim check of %s (no queue takes %s): retrying later",
                         claim.path, self.key)
            raise Unavailable("a claim check was returned unroutable") from None
        except pika.exceptions.NackError:
            raise Unavailable(f"the broker did not take the claim check of {claim.path} (nack)") from None
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code == 403:
                raise ConfigurationError(
                    f"the broker refused to take claim checks as collector {self.collector!r} (routing key "
                    f"{self.key}): {exc.reply_code} {exc.reply_text}; --collector must be the collector whose "
                    "user and password these are") from None
            raise


def close_quietly(connection) -> None:
    if connection is not None and connection.is_open:
        try:
            connection.close()
        except Exception:  # noqa: BLE001 - a connection already broken: nothing more to do with it
            pass


def run(args: argparse.Namespace) -> int:
    host, port = parse_address(args.broker)
    user = args.user or broker.collector_user(args.collector)
    params = parameters(host, port, user, args.password_file, args.ca_file)
    if not args.archive.is_dir():
        raise ConfigurationError(f"the archive folder {args.archive} is not a folder")
    if args.state.resolve().is_relative_to(args.archive.resolve()):
        raise ConfigurationError(f"the state file {args.state} is in the archive folder: it would be taken for a "
                                 "report; keep it outside")
    publisher = Publisher(args.archive, args.collector, args.state)
    attempt = 0
    while True:
        connection = None
        try:
            connection = pika.BlockingConnection(params)
            channel = connection.channel()
            channel.confirm_delivery()
            _log.info("publisher: connected to %s:%d as %s; publishing the reports of %s", host, port, user,
                      args.archive)
            attempt = 0
            while True:
                n = publisher.publish_pending(channel)
                if n:
                    _log.info("publisher: %d claim check(s) confirmed", n)
                if args.once:
                    connection.close()
                    return 0
                connection.sleep(args.interval)  # serves the connection's heartbeats meanwhile
        except (pika.exceptions.AMQPError, OSError, Unavailable) as exc:
            close_quietly(connection)
            why = _reason(exc)
            if args.once:
                _log.error("publisher: the broker at %s:%d is unavailable: %s", host, port, why)
                return EXIT_UNAVAILABLE
            delay = pending.backoff(attempt)
            attempt += 1
            _log.warning("publisher: the broker at %s:%d is unavailable (%s): retrying in %.1f s", host, port, why,
                         delay)
            time.sleep(delay)


def _reason(exc: BaseException) -> str:
    """One line for why a connection failed: pika wraps the cause (a refused connection, a TLS error) in
    errors whose own text is empty or a repr."""
    if isinstance(exc, pika.exceptions.ProbableAuthenticationError):
        return "login refused: a wrong password, or a user the broker does not know (yet)"
    inner = getattr(exc, "exception", None)  # pika's connector errors: the cause of one attempt
    if inner is None and getattr(exc, "exceptions", None):  # a failed workflow: the last attempt's
        inner = exc.exceptions[-1]
    if inner is None and isinstance(exc, pika.exceptions.AMQPConnectionError) and exc.args:
        inner = exc.args[0]
    if isinstance(inner, BaseException):
        return _reason(inner)
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m collector.publisher",
                                 description="Announce each complete report of a collector's archive folder to "
                                             "the broker (docs/broker.md).")
    ap.add_argument("--archive", type=Path, required=True, help="the archive folder")
    ap.add_argument("--collector", required=True, help="this collector's name ([[collectors]] name)")
    ap.add_argument("--broker", required=True, metavar="HOST:PORT", help="the broker's AMQPS address")
    ap.add_argument("--user", help="the broker user (default: collector-<name>)")
    ap.add_argument("--password-file", type=Path, required=True, help="the file holding the user's password")
    ap.add_argument("--ca-file", type=Path, required=True, help="the CA certificate the broker's is verified with")
    ap.add_argument("--state", type=Path, required=True,
                    help="the state file (what the broker confirmed); outside the archive folder")
    ap.add_argument("--interval", type=float, default=0.5, help="seconds between two scans (default 0.5)")
    ap.add_argument("--once", action="store_true", help="publish what is there, then exit")
    args = ap.parse_args(argv)
    log.setup()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if args.interval <= 0:
        ap.error("--interval must be positive")
    try:
        return run(args)
    except ConfigurationError as exc:
        _log.error("publisher: %s", exc)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
