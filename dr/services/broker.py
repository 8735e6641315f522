"""The broker: Debian's RabbitMQ 4.0 in our `broker` image, on the instance network (the Aggregator's consumer
and the sample collector reach it as <instance>-broker:5671), its AMQPS port published on broker.bind:broker.port
for collectors on other hosts. TLS only, with the `broker` certificate of `invoke certs`; its state in the
named volume <instance>-broker-data; a fixed hostname, so its node name (rabbit@<instance>-broker), and with
it its queues, survive a new container (docs/broker.md).

Users, permissions and the topology come from a definitions file this host writes into the secrets directory
from the password files (`definitions`, a pure function, and `write_definitions`), mounted read-only and
imported by RabbitMQ at every start. Passwords never leave their files: the file holds their salted SHA-256
hashes (rabbit_password_hashing_sha256), and a hash that still matches its password is kept, so an unchanged
configuration writes the same file and keeps the same container (its digest is in the container's settings).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

from common import broker, log, secrets
from common.config import Config
from common.errors import ServiceError
from common.records import Record, optional
from dr.engine import docker_api
from dr.services import certs, stack

_log = log.get("broker")

SERVICE = broker.SERVICE
DEFINITIONS = "broker-definitions.json"  # in the secrets directory (it holds the users' password hashes)
HASHING = "rabbit_password_hashing_sha256"
SALT_BYTES = 4
DELIVERY_LIMIT = 20  # a message handed out this often without an ack is dead-lettered (RabbitMQ 4.0's default)
STATE = "/var/lib/rabbitmq"
MOUNTED = "/run/secrets"  # dockerfiles/broker/entrypoint.sh copies the files from there for the rabbitmq user
NOTHING = "^$"


def volume_name(cfg: Config) -> str:
    return f"{cfg.instance}-broker-data"


def hostname(cfg: Config) -> str:
    """The container's hostname, the same for every container of this instance's broker: RabbitMQ's node name
    is rabbit@<hostname>, and its state in the volume belongs to that node."""
    return stack.container_name(cfg, SERVICE)


# --- passwords and definitions (pure) ----------------------------------------------------------------------------

def password_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's rabbit_password_hashing_sha256: base64(salt + sha256(salt + utf-8 password)), a random
    4-byte salt unless given."""
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    if len(salt) != SALT_BYTES:
        raise ValueError(f"a salt is {SALT_BYTES} bytes, got {len(salt)}")
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode("utf-8")).digest()).decode("ascii")


def hash_matches(hashed: str, password: str) -> bool:
    """Whether a rabbit_password_hashing_sha256 hash is the hash of password (False for anything else)."""
    try:
        raw = base64.b64decode(hashed, validate=True)
    except ValueError:
        return False
    if len(raw) != SALT_BYTES + hashlib.sha256().digest_size:
        return False
    return hmac.compare_digest(password_hash(password, raw[:SALT_BYTES]), hashed)


def users(collectors: Iterable[str]) -> list[str]:
    """The broker's users: the Aggregator's, then one per collector."""
    return [broker.AGGREGATOR_USER, *(broker.collector_user(c) for c in collectors)]


def _anchored(literal: str) -> str:
    """A regular expression (RabbitMQ's permissions are PCRE) matching exactly this name."""
    return f"^{re.escape(literal)}$"


def definitions(collectors: Iterable[str], hashes: Mapping[str, str]) -> dict:
    """RabbitMQ's definitions (`load_definitions`): the vhost, the users with their password hashes (hashes:
    {user: hash}, one for each of users(collectors)), what each may do, and the topology. A collector may only
    publish to the exchange with its own routing key (write on the exchange, a topic permission on the key),
    nothing else; the Aggregator may only consume from the queue (read on it). No user may configure
    anything: the topology is this file's."""
    collectors = list(collectors)
    vhost = broker.VHOST
    missing = [u for u in users(collectors) if u not in hashes]
    if missing:
        raise ValueError(f"no password hash for {', '.join(missing)}")
    permissions = [{"user": broker.AGGREGATOR_USER, "vhost": vhost, "configure": NOTHING, "write": NOTHING,
                    "read": _anchored(broker.QUEUE)}]
    topic_permissions = []
    for name in collectors:
        user = broker.collector_user(name)
        permissions.append({"user": user, "vhost": vhost, "configure": NOTHING,
                            "write": _anchored(broker.EXCHANGE), "read": NOTHING})
        topic_permissions.append({"user": user, "vhost": vhost, "exchange": broker.EXCHANGE,
                                  "write": _anchored(broker.routing_key(name)), "read": NOTHING})
    exchange = {"vhost": vhost, "durable": True, "auto_delete": False, "internal": False, "arguments": {}}
    queue = {"vhost": vhost, "durable": True, "auto_delete": False}
    binding = {"vhost": vhost, "destination_type": "queue", "arguments": {}}
    return {
        "vhosts": [{"name": vhost}],
        "users": [{"name": u, "password_hash": hashes[u], "hashing_algorithm": HASHING, "tags": [], "limits": {}}
                  for u in users(collectors)],
        "permissions": permissions,
        "topic_permissions": topic_permissions,
        "exchanges": [{"name": broker.EXCHANGE, "type": "topic", **exchange},
                      {"name": broker.DEAD_EXCHANGE, "type": "fanout", **exchange}],
        "queues": [
            {"name": broker.QUEUE, **queue, "arguments": {
                "x-queue-type": "quorum", "x-dead-letter-exchange": broker.DEAD_EXCHANGE,
                # Dead-lettered with publisher confirms inside the broker: a rejected message reaches the dead
                # queue even if it is briefly unavailable (at-least-once needs overflow reject-publish).
                "x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish",
                "x-delivery-limit": DELIVERY_LIMIT}},
            {"name": broker.DEAD_QUEUE, **queue, "arguments": {"x-queue-type": "quorum"}},
        ],
        "bindings": [{"source": broker.EXCHANGE, "destination": broker.QUEUE, "routing_key": broker.BINDING,
                      **binding},
                     {"source": broker.DEAD_EXCHANGE, "destination": broker.DEAD_QUEUE, "routing_key": "",
                      **binding}],
    }


def render(defs: dict) -> str:
    """The file's text: the same definitions give the same bytes."""
    return json.dumps(defs, indent=2, sort_keys=True)


# --- on the host ---------------------------------------------------------------------------------------------------

def collector_names(cfg: Config) -> tuple[str, ...]:
    """The configured collectors ([[collectors]] name), one broker user each."""
    return tuple(c.name for c in cfg.collectors)


def definitions_path(cfg: Config) -> Path:
    return secrets.path(cfg.secrets_dir, DEFINITIONS)


def _previous_hashes(path: Path) -> dict[str, str]:
    """{user: hash} of an earlier definitions file, or {} when there is none that reads."""
    try:
        return {u["name"]: u["password_hash"] for u in json.loads(path.read_text())["users"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def write_definitions(cfg: Config, collectors: Iterable[str] | None = None) -> Path:
    """Make each user's password file when missing (common/secrets), then write the definitions file (0600, in
    the secrets directory) for the configured collectors (or those given); a hash of the earlier file that
    still matches its password is kept."""
    names = collector_names(cfg) if collectors is None else tuple(collectors)
    path = definitions_path(cfg)
    previous = _previous_hashes(path)
    hashes = {}
    for user in users(names):
        secrets.ensure(cfg.secrets_dir, broker.password_name(user))
        password = secrets.read(cfg.secrets_dir, broker.password_name(user))
        old = previous.get(user, "")
        hashes[user] = old if hash_matches(old, password) else password_hash(password)
    text = render(definitions(names, hashes))
    if not path.exists() or path.read_text().strip() != text:
        secrets.put(cfg.secrets_dir, DEFINITIONS, text)
    return path


def spec(cfg: Config, collectors: Iterable[str] | None = None) -> stack.ServiceSpec:
    """The broker's container: its volume, a fixed hostname, the certificate, key and CA and the definitions
    file read-only, AMQPS published on broker.bind:broker.port. The definitions' digest is in its environment,
    so a changed file (a collector added, a password changed) makes start_one replace the container."""
    files = {"broker.crt": certs.cert_path(cfg, "broker"), "broker.key": certs.key_path(cfg, "broker"),
             "ca.crt": certs.cert_path(cfg, certs.CA)}
    for name, path in files.items():
        if not path.is_file():
            raise ServiceError(f"the broker's TLS file {path} is missing: `invoke certs` makes it")
    defs = write_definitions(cfg, collectors)
    files[DEFINITIONS] = defs
    digest = hashlib.sha256(defs.read_bytes()).hexdigest()
    volumes = {volume_name(cfg): {"bind": STATE, "mode": "rw"}}
    volumes.update({str(path): {"bind": f"{MOUNTED}/{name}", "mode": "ro"} for name, path in files.items()})
    return stack.ServiceSpec(SERVICE, cfg.image(SERVICE), dict(
        hostname=hostname(cfg),
        environment={"BROKER_DEFINITIONS_SHA256": digest},
        volumes=volumes,
        ports={f"{broker.PORT}/tcp": (cfg.broker.bind, cfg.broker.port)},
    ), named_volumes=(volume_name(cfg),))


def ctl(cfg: Config, *args: str) -> str:
    """rabbitmqctl in the broker's container (over the Erlang distribution, with the cookie in its volume);
    its output. ServiceError when it fails."""
    c = docker_api.container_or_none(stack.container_name(cfg, SERVICE))
    if c is None or c.status != "running":
        raise ServiceError(f"the broker {stack.container_name(cfg, SERVICE)} is not running")
    code, out = c.exec_run(["rabbitmqctl", "-q", *args])
    text = out.decode(errors="replace")
    if code != 0:
        raise ServiceError(f"rabbitmqctl {' '.join(args)} failed (exit {code}): {text.strip()[-500:]}")
    return text


def queue_depths(cfg: Config) -> dict[str, tuple[int, int]]:
    """{queue: (messages ready, messages delivered and not yet acknowledged)} of the broker's virtual host, from
    rabbitmqctl in its container; ServiceError when it is not running or does not answer."""
    out = ctl(cfg, "list_queues", "-p", broker.VHOST, "name", "messages_ready", "messages_unacknowledged",
              "--formatter", "json")
    try:
        rows = json.loads(out or "[]")
        return {r["name"]: (int(r["messages_ready"]), int(r["messages_unacknowledged"])) for r in rows}
    except (ValueError, KeyError, TypeError) as exc:
        raise ServiceError(f"rabbitmqctl list_queues said what this version cannot read ({exc}): {out[:300]}")


def prune_users(cfg: Config, collectors: Iterable[str] | None = None) -> list[str]:
    """Delete the collector users the definitions no longer name (an import adds and updates, never removes):
    a collector taken out of the configuration can no longer publish. Returns those deleted."""
    names = collector_names(cfg) if collectors is None else tuple(collectors)
    wanted = set(users(names))
    present = [u["user"] for u in json.loads(ctl(cfg, "list_users", "--formatter", "json") or "[]")]
    stale = sorted(u for u in present if u.startswith(broker.COLLECTOR_PREFIX) and u not in wanted)
    for user in stale:
        _log.info("broker: deleting user %s (no such collector configured)", user)
        ctl(cfg, "delete_user", user)
    return stale


def start(cfg: Config, collectors: Iterable[str] | None = None) -> str:
    """Start (or keep) the broker and wait until it is healthy; delete users of collectors no longer configured.
    "started" or "running"."""
    names = collector_names(cfg) if collectors is None else tuple(collectors)
    state = stack.start_one(cfg, spec(cfg, names))
    wait_healthy(cfg)
    prune_users(cfg, names)
    return state


def wait_healthy(cfg: Config, timeout: float | None = None) -> None:
    """Until the broker's health check passes (its node runs and its AMQPS listener accepts connections)."""
    stack.wait_one(cfg, SERVICE, time.monotonic() + (cfg.host.health_timeout if timeout is None else timeout))


def stop(cfg: Config, remove_data: bool = False) -> None:
    """Stop (RabbitMQ shuts down cleanly) and remove the broker's container; remove_data: its volume too (the
    queues and the messages in them are lost)."""
    stack.stop(cfg, (SERVICE,))
    if remove_data:
        docker_api.remove_volume(volume_name(cfg))


@dataclass
class BrokerService(Record):
    """`invoke broker`: the broker's container and its state ("started", "running", "stopped"), and with
    --purge-dead how many dead-lettered messages were purged."""
    state: str
    container: str
    purged: int | None = optional()

    def render(self) -> str:
        line = f"broker {self.state}: {self.container}"
        return line + (f"; {self.purged} dead-lettered message(s) purged from {broker.DEAD_QUEUE}"
                       if self.purged is not None else "")


def purge_dead(cfg: Config) -> int:
    """Empty the dead-letter queue (the operator has read the reasons: `invoke status`); how many went."""
    out = ctl(cfg, "purge_queue", "-p", broker.VHOST, broker.DEAD_QUEUE)
    found = re.search(r"(\d+)", out)
    return int(found.group(1)) if found else 0


def service(cfg: Config, stop_it: bool = False, purge: bool = False) -> BrokerService:
    """`invoke broker [--stop] [--purge-dead]`: start (or keep) the broker for the configured collectors, stop it
    (its volume stays), or purge its dead-letter queue."""
    name = stack.container_name(cfg, SERVICE)
    if stop_it:
        stop(cfg)
        return BrokerService("stopped", name)
    if purge:
        return BrokerService("running", name, purge_dead(cfg))
    certs.make(cfg)
    return BrokerService(start(cfg), name)
