"""The one configuration loader: a TOML file, validated against SCHEMA, with defaults for one machine.

Where the file comes from, first match wins: the explicit path, $AGGREGATOR_DR_CONFIG,
/etc/aggregator-dr/config.toml; with none of them the defaults apply. Every error names the bad key.
Tasks, stages (on the host and in images) and tests all load their settings here.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from common.errors import ConfigError

# The database roles PostgreSQL enforces (dockerfiles/postgres/roles.sql).
DB_ROLES = ("owner", "importer", "reader", "backup")
HOST_ROLES = ("all", "aggregator", "database")
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")

ENV_VAR = "AGGREGATOR_DR_CONFIG"
PORTABLE_DUMP = ("every", "daily", "never")
WEBMIRROR_STATUS = ("loopback", "public", "off")
SYNC_RELEASE = ("pulled", "set", "offsite", "auto")  # stages/sync.py release_mode() resolves "auto"
DEFAULT_FILE = Path("/etc/aggregator-dr/config.toml")


@dataclass(frozen=True)
class Field:
    kind: type
    default: Any
    check: Callable[[Any], str | None] | None = None  # returns an explanation when the value is bad
    doc: str = ""


def _port(v):
    return None if 1 <= v <= 65535 else "must be a TCP port between 1 and 65535"


def _positive(v):
    return None if v > 0 else "must be greater than 0"


def _absolute(v):
    return None if os.path.isabs(v) else "must be an absolute path"


def _absolute_or_empty(v):
    return None if v == "" or os.path.isabs(v) else "must be an absolute path or empty"


def _ip(v):
    try:
        ipaddress.ip_address(v)
    except ValueError:
        return "must be an IP address such as 127.0.0.1"
    return None


_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")


def _name(v):
    return None if _NAME_RE.match(v) else "must be lower-case letters, digits, '.', '_' or '-'"


def is_loopback(address: str) -> bool:
    """An IP address of this host's loopback interface (127.0.0.0/8, ::1)."""
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _image_ref(v):
    return None if re.match(r"^[a-z0-9][a-z0-9._/-]*$", v) else "must be a lower-case image repository name"


def _suite(v):
    return None if re.match(r"^[a-z]+$", v) else "must be a Debian suite name such as trixie"


def _url(v):
    return None if re.match(r"^https?://\S+$", v) else "must be an http:// or https:// URL"


def _host(v):
    return None if re.match(r"^[A-Za-z0-9.:_-]+$", v) else "must be a host name or address"


_DNS_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")


def _tls_names(v):
    """A list of DNS names and IP addresses for a certificate's subjectAltName."""
    for item in v:
        if not isinstance(item, str):
            return "must be a list of DNS names or IP addresses (strings)"
        try:
            ipaddress.ip_address(item)
        except ValueError:
            if not _DNS_RE.match(item):
                return f"{item!r} is neither a DNS name (such as db.example.org) nor an IP address"
    return None


def _host_key(v):
    return None if re.match(r"^(ssh-ed25519|ecdsa-sha2-nistp\d+|ssh-rsa) [A-Za-z0-9+/=]+$", v.strip()) else \
        "must be a public host key line such as 'ssh-ed25519 AAAA...'"


PERIODS = ("hourly", "daily", "weekly")
EVERY_MINUTES = (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30)  # "<n>min": n divides the hour, so runs stay evenly spaced


def every_minutes(period: str) -> int | None:
    """n for a period "<n>min", else None."""
    m = re.fullmatch(r"([1-9]\d*)min", period)
    return int(m.group(1)) if m else None


def _period(v):
    if v in PERIODS or every_minutes(v) in EVERY_MINUTES:
        return None
    return f"must be {', '.join(PERIODS)} or <n>min with n one of {', '.join(map(str, EVERY_MINUTES))}"


COLLECTOR = {
    "name": Field(str, "", _name, "raw/<name>/ receives this collector's reports"),
    "host": Field(str, "", _host),
    "port": Field(int, 22, _port),
    "user": Field(str, "", _name),
    "key_file": Field(str, "", _absolute, "private key (a secret file, mode 0600)"),
    "host_key": Field(str, "", _host_key, "the collector's pinned public host key"),
    "archive_path": Field(str, "", _absolute, "folder of closed reports on the collector"),
}

SCHEMA: dict[str, Any] = {
    "instance": Field(str, "aggregator-dr", _name,
                      "prefix of container, network and volume names; tests use their own"),
    "data_root": Field(str, "/data", _absolute, "state directories (raw, staging, reports, archive, ...)"),
    "secrets_dir": Field(str, "/etc/aggregator-dr/secrets", _absolute, "secret files, mode 0600"),
    "cache_dir": Field(str, "/var/cache/aggregator-dr", _absolute, "Go builds and other rebuildable artifacts"),
    "images": {
        "prefix": Field(str, "aggregator-dr", _image_ref, "images are named <prefix>/<component>:<tag>"),
        "tag": Field(str, "latest", _name),
        "suite": Field(str, "trixie", _suite, "Debian suite of the base image"),
        "mirror": Field(str, "http://deb.debian.org/debian", _url, "Debian archive for debootstrap and apt"),
        "security_mirror": Field(str, "http://deb.debian.org/debian-security", _url),
    },
    "db": {
        "bind": Field(str, "127.0.0.1", _ip, "host address the database port is published on"),
        "host": Field(str, "127.0.0.1", _host, "where clients (stages, tools) reach the database"),
        "port": Field(int, 27017, _port),
        "database": Field(str, "aggregator", _name,
                          "the MongoDB database (a PostgreSQL schema); roles: database/db.py ROLES"),
        "postgres_host": Field(str, "", lambda v: None if v == "" else _host(v),
                               "where psql reaches PostgreSQL (the backup container: <instance>-postgres); "
                               "empty: not reachable from here"),
        "postgres_port": Field(int, 5432, _port),
        "role": Field(str, "", lambda v: None if v in ("", *DB_ROLES) else f"must be one of {', '.join(DB_ROLES)}",
                      "the role this container logs in as: dr/jobs/contract.py writes it into a container's "
                      "configuration; empty on the host (which names the role for each client)"),
        "tls": Field(bool, False, None, "clients reach the database over TLS, verifying its certificate against "
                     "ca_file (off: the one-machine default, the port on loopback only)"),
        "ca_file": Field(str, "", _absolute_or_empty, "the CA certificate clients trust for the database; empty: "
                         "<secrets_dir>/tls/ca.crt (made by `invoke certs`)"),
        "cert_file": Field(str, "", _absolute_or_empty, "the database's TLS certificate (FerretDB's listener); "
                           "empty: <secrets_dir>/tls/db.crt"),
        "key_file": Field(str, "", _absolute_or_empty, "its private key (a secret file, mode 0600); empty: "
                          "<secrets_dir>/tls/db.key"),
    },
    "certs": {
        "ca_days": Field(int, 3650, _positive, "days the private CA made by `invoke certs` is valid"),
        "leaf_days": Field(int, 397, _positive, "days the server and client certificates it signs are valid "
                           "(less than ca_days)"),
        "warn_days": Field(int, 30, _positive, "`invoke status` warns this many days before a certificate expires"),
        "db_names": Field(list, [], _tls_names, "more DNS names and IP addresses for the database's and "
                          "PostgreSQL's certificates (a database on its own host: that host's name and address)"),
        "offsite_names": Field(list, [], _tls_names, "more DNS names and IP addresses for the off-site "
                               "rest-server's certificate"),
        "broker_names": Field(list, [], _tls_names, "more DNS names and IP addresses for the broker's "
                              "certificate (the names collectors on other hosts reach it by: broker.host there)"),
    },
    "webmirror": {
        "bind": Field(str, "127.0.0.1", _ip, "host address the mirror's port is published on (0.0.0.0: every "
                      "interface)"),
        "port": Field(int, 8080, _port),
        "status": Field(str, "loopback", lambda v: None if v in WEBMIRROR_STATUS else
                        "must be one of " + ", ".join(WEBMIRROR_STATUS),
                        "who reads the status page at /status/ (it names this host, its collectors and their "
                        "failures): loopback (default) only this host, on bind:port when bind is a loopback "
                        "address, else on 127.0.0.1:status_port; public: anyone who reaches bind:port, like "
                        "the archive; off: nobody (docs/status.md)"),
        "status_port": Field(int, 8081, _port, "host port of the loopback-only listener of the status page "
                             "(status = loopback with a bind that is not a loopback address), on 127.0.0.1"),
    },
    "pipeline": {
        "workers": Field(int, 0, lambda v: None if v >= 0 else "must be 0 (every core) or more",
                         "parallel worker processes of a stage; 0 = one per core"),
        "batch_size": Field(int, 20, _positive, "reports committed per shared-lock hold"),
        "lock_timeout": Field(int, 600, _positive, "seconds a stage waits for the shared lock"),
        "max_report_mb": Field(int, 1024, _positive, "larger reports (after decompression) are quarantined"),
        "max_document_mb": Field(int, 64, _positive, "larger documents quarantine their report"),
        "bridge_db": Field(str, "", _absolute_or_empty,
                           "private bridge database (JSON); empty: every bridge is private"),
    },
    "sync": {
        "reserve_mb": Field(int, 1024, lambda v: None if v >= 0 else "must be 0 or more",
                            "free space to keep on the data root; sync stops before going below it"),
        "ssh_timeout": Field(int, 30, _positive, "seconds for an SSH connection to a collector"),
        "release": Field(str, "auto", lambda v: None if v in SYNC_RELEASE else
                         "must be one of " + ", ".join(SYNC_RELEASE),
                         "when a collector may delete a pulled report: pulled (once the copy here is verified), "
                         "set (sync moves it into .pulled/ on the collector, and `python -m stages.sync "
                         "--release` deletes it once a complete snapshot set holds it), offsite (the same, once "
                         "the off-site repository holds such a set), auto (offsite when offsite.repository is "
                         "set, else set)"),
    },
    # [[collectors]] tables, each validated against COLLECTOR; every key is required.
    "collectors": [COLLECTOR],
    "backup": {
        "repository": Field(str, "/var/lib/aggregator-dr/restic", lambda v: None if v.strip() else "must not be empty",
                            "restic repository: a local folder, or any restic URL (rest:, sftp:, s3:, ...)"),
        "lock_timeout": Field(int, 600, _positive, "seconds a snapshot waits for the exclusive lock"),
        "cut": Field(bool, True, None, "hold the pipeline's lock only while a cut of the data root is made (a "
                     "hard link per file: snapshots/cut.py), then back it up (false: hold it during the whole files "
                     "snapshot; needed where the data root's file system has no hard links)"),
        "dump_under_lock": Field(bool, False, None, "hold the pipeline's lock during the database copy and dump "
                                 "too (false: only during the cut, or the files snapshot; they run beside or after "
                                 "it)"),
        "beside_files_mb": Field(int, 256, lambda v: None if v >= 0 else "must be 0 or more",
                                 "the database copy runs beside the files snapshot when at most this many MB "
                                 "of files changed since the last set, else after it (0: always after)"),
        "portable_dump": Field(str, "daily", lambda v: None if v in PORTABLE_DUMP else
                               "must be one of " + ", ".join(PORTABLE_DUMP),
                               "which sets carry the portable dump (mongodump's archive format) besides the "
                               "physical copy: every set, the first set of each day (daily), or never"),
    },
    "offsite": {
        "repository": Field(str, "", lambda v: None if v == "" or re.match(r"^(rest|sftp|s3|b2|azure|gs|rclone):\S+$", v)
                            else "must be a restic URL such as rest:http://backup-host:8000/aggregator, or empty",
                            "restic URL of the off-site copy (an append-only rest-server); empty: none"),
        "user": Field(str, "aggregator", _name, "rest-server user; its password is the secret offsite-http-password"),
        "network": Field(str, "", lambda v: None if v == "" or re.match(r"^[a-z0-9][a-z0-9_.-]*$", v)
                         else "must be a Docker network name or empty",
                         "Docker network the backup container joins to reach it; empty: the default bridge"),
        "ca_file": Field(str, "", _absolute_or_empty, "the CA restic verifies a rest:https:// repository with; "
                         "empty: <secrets_dir>/tls/ca.crt (made by `invoke certs`)"),
        "serve_tls": Field(bool, False, None, "`invoke offsite-server`: serve HTTPS only, with the certificate "
                           "tls/offsite.crt and its key (made by `invoke certs`)"),
        "serve_bind": Field(str, "127.0.0.1", _ip, "`invoke offsite-server`: address its port is published on"),
        "serve_port": Field(int, 8000, _port, "`invoke offsite-server`: published port"),
    },
    "broker": {
        "enabled": Field(bool, False, None, "run the broker (RabbitMQ, docs/broker.md) the collectors publish "
                         "their finished reports to; off: the scheduled pull alone brings them"),
        "bind": Field(str, "127.0.0.1", _ip, "host address the broker's AMQPS port is published on (collectors "
                      "on other hosts: an address of this host they reach; TLS only, whatever the address)"),
        "port": Field(int, 5671, _port, "published AMQPS port of the broker"),
        "host": Field(str, "", lambda v: None if v == "" else _host(v),
                      "where clients reach the broker: empty, its container <instance>-broker on the instance "
                      "network (port 5671: the Aggregator's consumer, the sample collector); else this name or "
                      "address at broker.port (a collector on another host; it must be in the broker's "
                      "certificate: certs.broker_names)"),
        "ca_file": Field(str, "", _absolute_or_empty, "the CA clients verify the broker's certificate with; "
                         "empty: <secrets_dir>/tls/ca.crt (made by `invoke certs`)"),
    },
    "retention": {
        "keep_last": Field(int, 3, lambda v: None if v >= 1 else "must be 1 or more", "newest sets to keep"),
        "keep_hourly": Field(int, 24, lambda v: None if v >= 0 else "must be 0 or more"),
        "keep_daily": Field(int, 7, lambda v: None if v >= 0 else "must be 0 or more"),
        "keep_weekly": Field(int, 4, lambda v: None if v >= 0 else "must be 0 or more"),
        "keep_monthly": Field(int, 12, lambda v: None if v >= 0 else "must be 0 or more"),
    },
    "drill": {
        "history_dir": Field(str, "/var/lib/aggregator-dr/drills", _absolute, "drill reports (JSON and Markdown)"),
        "keep": Field(int, 30, _positive, "drill reports kept in history_dir"),
        "work_dir": Field(str, "", _absolute_or_empty,
                          "where a drill restores its throwaway data folder; empty: <cache_dir>/drill"),
    },
    "schedule": {
        "pipeline": Field(str, "5min", _period, "how often `invoke pipeline` runs (sync, sanitize, import); one run "
                          "at a time"),
        "snapshot": Field(str, "hourly", _period, "how often `invoke snapshot` runs"),
        "maintenance": Field(str, "daily", _period, "how often `invoke forget`, `invoke check` and `invoke offsite` run"),
        "drill": Field(str, "weekly", _period, "how often `invoke drill` runs"),
        "check_read_data_subset": Field(str, "5%", lambda v: None if re.match(r"^(\d+(\.\d+)?%|\d+/\d+|\d+[KMGT]?)$", v)
                                        else "must be restic's syntax: 5%, 1/7 or 500M",
                                        "share of the packs the scheduled check reads back"),
    },
    "history": {
        "dir": Field(str, "/var/lib/aggregator-dr/history", _absolute,
                     "every job's runs and their results, one JSON line each (dr/jobs/history.py); host state, "
                     "in no snapshot set"),
        "keep_days": Field(int, 90, _positive, "runs older than this are dropped, a month's file at a time"),
        "max_mb": Field(int, 64, _positive, "the history's files together stay under this; the oldest go first"),
    },
    "status": {
        "stall_minutes": Field(int, 60, _positive, "inputs waiting and no report moved for this long: a stall"),
        "collector_minutes": Field(int, 120, _positive, "a collector not reached for this long: a stall"),
        "recovery_point_minutes": Field(int, 180, _positive, "the objective: the newest complete snapshot set "
                                        "older than this is a risk"),
        "check_days": Field(int, 3, _positive, "no passing `invoke check` for this long: a risk"),
        "drill_days": Field(int, 8, _positive, "no passing restore drill for this long: a risk"),
        "disk_days": Field(int, 14, _positive, "the data root's disk full within this many days at the recent "
                           "rate of growth: a risk"),
        "collector_held_mb": Field(int, 2048, _positive, "a collector holding more than this many MB of pulled "
                                   "reports not yet released (its .pulled/, [sync] release): a risk"),
        "collector_held_hours": Field(int, 30, _positive, "a collector whose oldest pulled report not yet released "
                                      "is older than this: a risk (the default: the daily off-site copy, the "
                                      "hourly set it copies, and a margin for the maintenance job)"),
        "dead_letters_max": Field(int, 0, lambda v: None if v >= 0 else "must be 0 or more",
                                  "more messages than this in the broker's dead-letter queue (reports.dead; "
                                  "purged once looked at): a risk"),
        "broker_backlog_max": Field(int, 1000, _positive, "more claim checks than this ready in the broker's "
                                    "queue (reports), waiting for the subscriber: a stall"),
        "drills_shown": Field(int, 20, _positive, "the last N drills in the trends of the status page"),
        "page_dir": Field(str, "/var/lib/aggregator-dr/status", _absolute_or_empty,
                          "the status page (index.html) is written here after every job, for the web mirror to "
                          "serve; empty: no page"),
    },
    "monitoring": {
        "textfile_dir": Field(str, "/var/lib/prometheus/node-exporter", _absolute_or_empty,
                              "Prometheus textfile-collector folder; each job writes aggregator_dr_<job>.prom "
                              "there; empty: no metrics"),
        "healthcheck_url": Field(str, "", lambda v: None if v == "" or re.match(r"^https?://\S+$", v)
                                 else "must be an http:// or https:// URL, or empty",
                                 "pinged when a job starts (<url>/start), succeeds (<url>) or fails (<url>/fail); "
                                 "{job} in it is replaced by the job's name; empty: no pings"),
    },
    "host": {
        "role": Field(str, "all", lambda v: None if v in HOST_ROLES else "must be one of " + ", ".join(HOST_ROLES),
                      "what runs on this host: all (the Aggregator and its database), aggregator (the "
                      "database is on another host, at db.host, over TLS), database (only the database, "
                      "for an Aggregator elsewhere)"),
        "min_free_gb": Field(int, 10, _positive, "free disk needed on the data root and Docker's folder"),
        "dockerd_timeout": Field(int, 60, _positive, "seconds to wait for a daemon we start"),
        "health_timeout": Field(int, 90, _positive, "seconds to wait for services to become healthy"),
    },
}


@dataclass(frozen=True)
class Section:
    """A validated table; attribute access to its keys."""

    _values: dict

    def __getattr__(self, key):
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(key) from None

    def as_dict(self) -> dict:
        def plain(v):
            if isinstance(v, Section):
                return v.as_dict()
            if isinstance(v, tuple):
                return [plain(i) for i in v]
            return v
        return {k: plain(v) for k, v in self._values.items()}


class Config(Section):
    source: str

    @property
    def data_root_path(self) -> Path:
        return Path(self.data_root)

    @property
    def secrets_path(self) -> Path:
        return Path(self.secrets_dir)

    @property
    def cache_path(self) -> Path:
        return Path(self.cache_dir)

    def image(self, component: str) -> str:
        return f"{self.images.prefix}/{component}:{self.images.tag}"

    @property
    def base_image(self) -> str:
        return f"{self.images.prefix}/base:{self.images.suite}"


def _validate(table: dict, schema: dict, where: str) -> dict:
    out = {}
    for key in table:
        if key not in schema:
            known = ", ".join(sorted(schema))
            raise ConfigError(f"{where}{key}: unknown key (known keys here: {known})")
    for key, spec in schema.items():
        dotted = f"{where}{key}"
        if isinstance(spec, list):
            items = table.get(key, [])
            if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                raise ConfigError(f"{dotted}: must be a list of tables ([[{dotted}]])")
            out[key] = tuple(Section(_validate_item(i, spec[0], f"{dotted}[{n}].")) for n, i in enumerate(items))
            names = [c.name for c in out[key] if hasattr(c, "name")]
            if len(set(names)) != len(names):
                raise ConfigError(f"{dotted}: names must be unique, got {names}")
            continue
        if isinstance(spec, dict):
            value = table.get(key, {})
            if not isinstance(value, dict):
                raise ConfigError(f"{dotted}: must be a table ([{dotted}])")
            out[key] = Section(_validate(value, spec, dotted + "."))
            continue
        value = table.get(key, spec.default)
        # bool is an int in Python; refuse it where an integer is expected.
        if not isinstance(value, spec.kind) or (spec.kind is int and isinstance(value, bool)):
            raise ConfigError(f"{dotted}: must be {spec.kind.__name__}, got {value!r}")
        problem = spec.check(value) if spec.check else None
        if problem:
            raise ConfigError(f"{dotted}: {problem}, got {value!r}")
        out[key] = tuple(value) if spec.kind is list else value  # immutable, like the rest of a Section
    return out


def _validate_item(item: dict, schema: dict, where: str) -> dict:
    missing = [k for k, f in schema.items() if f.default in ("", None) and k not in item]
    if missing:
        raise ConfigError(f"{where}{missing[0]}: required")
    return _validate(item, schema, where)


def _apply_overrides(table: dict, overrides: dict[str, Any]) -> dict:
    for dotted, value in overrides.items():
        node = table
        parts = dotted.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{dotted}: cannot override inside a non-table value")
        node[parts[-1]] = value
    return table


def _check_roles(values: dict) -> dict:
    """What host.role asks of [db], on the host (a container's configuration names its db.role): a database
    on another host is reached over TLS only, and one published beyond loopback listens for TLS only."""
    role, dbv = values["host"].role, values["db"]
    if dbv.role:
        return values
    remote = dbv.host not in LOOPBACK_NAMES
    if role == "aggregator":
        if not remote:
            raise ConfigError(f"db.host: host.role is aggregator, so the database is on another host; db.host "
                              f"must name it, got {dbv.host!r}")
        if not dbv.tls:
            raise ConfigError("db.tls: host.role is aggregator (the database on another host): it must be true, "
                              "no password crosses the network in plaintext")
    elif remote:
        raise ConfigError(f"host.role: db.host {dbv.host!r} is another host; set host.role = \"aggregator\" "
                          "(or db.host to 127.0.0.1 for the database on this host)")
    if role == "database" and dbv.bind not in LOOPBACK_NAMES and not dbv.tls:
        raise ConfigError(f"db.tls: host.role is database and db.bind {dbv.bind!r} publishes the database "
                          "beyond loopback: it must be true")
    return values


def _check_webmirror(values: dict) -> dict:
    """The status page's loopback-only listener needs a port of its own."""
    mirror = values["webmirror"]
    if mirror.status == "loopback" and not is_loopback(mirror.bind) and mirror.status_port == mirror.port:
        raise ConfigError(f"webmirror.status_port: the status page's loopback-only listener (webmirror.status = "
                          f"\"loopback\", webmirror.bind {mirror.bind!r}) needs a port other than webmirror.port, "
                          f"got {mirror.status_port!r}")
    return values


def _check_across(values: dict) -> dict:
    """What one key asks of another, once every key is valid on its own."""
    return _check_webmirror(_check_roles(values))


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """KEY=VALUE strings (command line --set) -> overrides for load(); digits become integers, true and
    false booleans."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE")
        v = value.strip()
        out[key.strip()] = int(v) if v.lstrip("-").isdigit() else {"true": True, "false": False}.get(v, value)
    return out


def find_file(path: str | os.PathLike | None = None) -> Path | None:
    if path:
        return Path(path)
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    if DEFAULT_FILE.is_file():
        return DEFAULT_FILE
    return None


def load(path: str | os.PathLike | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Load and validate the configuration. overrides use dotted keys: {"db.port": 27018}."""
    file = find_file(path)
    table: dict = {}
    source = "built-in defaults"
    if file is not None:
        try:
            with open(file, "rb") as fh:
                table = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"configuration file {file} does not exist") from None
        except PermissionError:
            raise ConfigError(f"configuration file {file} is not readable") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"configuration file {file} is not valid TOML: {exc}") from None
        source = str(file)
    if overrides:
        table = _apply_overrides(table, dict(overrides))
    cfg = Config(_check_across(_validate(table, SCHEMA, "")))
    object.__setattr__(cfg, "source", source)
    return cfg


def derive(cfg: Config, overrides: dict[str, Any]) -> Config:
    """A configuration like cfg with some keys changed (dotted keys), validated; no file is read again."""
    derived = Config(_check_across(_validate(_apply_overrides(cfg.as_dict(), dict(overrides)), SCHEMA, "")))
    object.__setattr__(derived, "source", cfg.source)
    return derived


def defaults() -> dict:
    def walk(schema):
        return {k: (walk(v) if isinstance(v, dict) else [] if isinstance(v, list) else v.default)
                for k, v in schema.items()}
    return walk(SCHEMA)



def is_local_repository(repository: str) -> bool:
    """A restic repository is local when it is a folder on this host (an absolute path); any other value is a
    restic URL (rest:, sftp:, s3:, ...) reached over the network."""
    return os.path.isabs(repository)
