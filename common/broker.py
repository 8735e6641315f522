"""The broker's names and how a client reaches it, without any AMQP library: the collectors' publisher and the
Aggregator's consumer import this (the collector's image has common/ and its own module only), and
dr/services/broker.py writes the broker's definitions from the same names (docs/broker.md).

The topology, in the virtual host VHOST:

    collector <name> --publish, routing key collector.<name>--> exchange EXCHANGE (topic)
        --binding BINDING--> quorum queue QUEUE --the Aggregator's user consumes-->
        a message rejected (or redelivered too often) --> exchange DEAD_EXCHANGE (fanout) --> quorum queue DEAD_QUEUE

Each collector logs in as collector_user(<name>) and may only publish to EXCHANGE with its own routing key;
the Aggregator logs in as AGGREGATOR_USER and may only consume from QUEUE. Each user's password is the secret
file password_name(user) in the secrets directory (common/secrets.py makes it), on the Aggregator's host and,
for a collector, on its own too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from common import paths
from common.config import Config
from common.records import Record, RecordError

SERVICE = "broker"          # its container is <instance>-broker (dr/services/instance.py)
PORT = 5671                 # AMQPS, inside the instance network; published on broker.bind:broker.port
VHOST = "aggregator"
EXCHANGE = "reports"        # topic exchange the collectors publish to
QUEUE = "reports"           # quorum queue the Aggregator consumes
BINDING = "collector.#"     # every collector's key (a collector's name may hold dots: `*` would miss those)
DEAD_EXCHANGE = "reports.dead"
DEAD_QUEUE = "reports.dead"
AGGREGATOR_USER = "aggregator"
COLLECTOR_PREFIX = "collector-"
CA_FILE = Path("tls") / "ca.crt"  # in the secrets directory: `invoke certs` makes it (dr/services/certs.py)


def routing_key(collector: str) -> str:
    """The one routing key a collector may publish with."""
    return f"collector.{collector}"


def collector_user(collector: str) -> str:
    """The broker user of the collector of this name (config [[collectors]] name)."""
    return f"{COLLECTOR_PREFIX}{collector}"


def password_name(user: str) -> str:
    """The secret file holding a broker user's password."""
    return f"broker-{user}-password"


def ca_file(cfg: Config) -> Path:
    """The CA certificate clients verify the broker with: broker.ca_file, or <secrets_dir>/tls/ca.crt."""
    return Path(cfg.broker.ca_file) if cfg.broker.ca_file else cfg.secrets_path / CA_FILE


def address(cfg: Config) -> tuple[str, int]:
    """Where a client reaches the broker: broker.host at broker.port, or with no broker.host the broker's
    container on the instance network at PORT."""
    if cfg.broker.host:
        return cfg.broker.host, cfg.broker.port
    return f"{cfg.instance}-{SERVICE}", PORT


@dataclass(frozen=True)
class Connection:
    """What a client needs to log in: the broker's address, the virtual host, the user, the file holding its
    password (read when connecting, never passed around) and the CA file to verify the broker's certificate
    (whose names include host: dr/services/certs.names)."""
    host: str
    port: int
    vhost: str
    user: str
    password_file: Path
    ca_file: Path


def connection(cfg: Config, user: str) -> Connection:
    """How `user` reaches the broker with this configuration."""
    host, port = address(cfg)
    return Connection(host, port, VHOST, user, cfg.secrets_path / password_name(user), ca_file(cfg))


def collector_connection(cfg: Config, collector: str) -> Connection:
    return connection(cfg, collector_user(collector))


def aggregator_connection(cfg: Config) -> Connection:
    return connection(cfg, AGGREGATOR_USER)


# --- the message ---------------------------------------------------------------------------------------------------

SHA256 = re.compile(r"^[0-9a-f]{64}$")
WHEN = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")
CONTENT_TYPE = "application/json"


@dataclass
class ClaimCheck(Record):
    """One message: a report completed on a collector (closed and renamed into place), not its bytes. path is
    the report's file relative to the collector's archive folder (the name sync lists it under), size and
    sha256 its bytes' as the collector saw them, completed the UTC time it was completed (ISO 8601, Z).
    The Aggregator pulls the file itself (the verified path of stages/sync.py) and checks both. JSON body,
    content type CONTENT_TYPE, persistent, message id message_id()."""
    collector: str
    path: str
    size: int
    sha256: str
    completed: str

    def problem(self) -> str | None:
        """Why this claim check cannot be right whatever the collector holds (None: it may be)."""
        if not self.collector or "/" in self.collector or len(self.collector) > 200:
            return f"collector name {self.collector!r} is not a name"
        if not paths.safe_name(self.path):
            return f"path {self.path!r} is not a report's path in the collector's archive folder"
        if self.size < 0:
            return f"size {self.size} is negative"
        if not SHA256.match(self.sha256):
            return "sha256 is not 64 lowercase hexadecimal digits"
        if not WHEN.match(self.completed):
            return f"completed {self.completed!r} is not a UTC time like 2026-12-08T03:04:05Z"
        return None

    def message_id(self) -> str:
        """The same report, published twice, has the same id."""
        return f"{self.collector}/{self.path}@{self.sha256}"


def read_claim(body: bytes) -> ClaimCheck:
    """A message's body as a ClaimCheck; RecordError naming what is wrong (not JSON, a field missing or of
    another type, or a problem())."""
    try:
        claim = ClaimCheck.from_json(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise RecordError(f"the message is not a claim check: {exc}") from None
    why = claim.problem()
    if why:
        raise RecordError(why)
    return claim
