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

from dataclasses import dataclass
from pathlib import Path

from common.config import Config

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
