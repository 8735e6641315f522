"""What each container gets, as data: one table for the pipeline's stages (STAGES), the backup actions' table
(snapshots/actions.ACTIONS: what each action needs), and `stage_spec`/`backup_spec` that turn a row and the
host's configuration into a ContainerSpec: the image, the command, the mounts (host path -> container path,
ro/rw), the secrets (always read-only), the networks, the user, and the one configuration file the container
reads (`container_config`).

Pure: nothing here starts a container, writes a file or reads a secret (containers.run_spec does, from a
spec). The only question asked of the host is whether the Go artifacts folder exists (`take` mounts it
read-only when it does), and it can be answered by the caller (`artifacts=`).

Stages run as the unprivileged user `aggregator` (STAGE_USER, made by their Dockerfiles); the backup
container runs as root, because restic must read and restore every file with its owner.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import broker as broker_names
from common import config as dr_config
from common import secrets
from common.config import Config
from common.errors import DrError
from database import db as dbconn
from database import pgroles, pgsql
from dr.machine import configfile, roles
from dr.services import stack
from snapshots import actions
from snapshots.actions import ACTIONS
from snapshots.restic import BACKUP_HOSTNAME
from stages import cut, sync

STAGE_UID = STAGE_GID = 990
STAGE_USER = f"{STAGE_UID}:{STAGE_GID}"
ROOT_USER = "0:0"
CONFIG_PATH = "/run/aggregator-dr.toml"  # where every container finds its configuration file
SECRETS = "/run/secrets"
DATA, CACHE, REPO = "/data", "/cache", "/repo"
LIVE = "/data-live"  # the data root, for a set that backs up its cut at DATA (Action.cut)
ARTIFACTS = str(actions.ARTIFACTS)  # the host's <cache_dir>/go: the Go build artifacts
PG_VOLUME = str(actions.PG_VOLUME)  # PostgreSQL's volume, where pg-restore puts a set's physical copy
BRIDGE_DB = "/run/bridge_db.json"
DB_CA = "/run/tls/db-ca.crt"  # the CA a container verifies the database with (db.tls; public, 0644)
OFFSITE_CA = "/run/tls/offsite-ca.crt"  # the CA restic verifies a rest:https:// off-site server with

# The network a stage's row asks for: the instance's (reaches <instance>-db and the sample collector), or none.
INSTANCE, NONE = "instance", "none"


@dataclass(frozen=True)
class Mount:
    source: str   # host path
    target: str   # container path
    mode: str = "ro"
    create: int | None = None  # make the host folder (this mode) before the container starts; None: it must exist


@dataclass(frozen=True)
class Secret:
    """A private file the container reads (mounted read-only). For a container not run as root the host
    hands over a private copy owned by the container's user (launch.run_spec), never the original."""

    source: str   # host path (root-owned, 0600)
    target: str   # container path


@dataclass(frozen=True)
class ContainerSpec:
    label: str                       # names the container's log lines and its tool label
    component: str                   # image component
    command: tuple[str, ...]         # ends with --config CONFIG_PATH
    user: str                        # uid:gid
    mounts: tuple[Mount, ...]
    secrets: tuple[Secret, ...]
    networks: tuple[str, ...]        # Docker network names; () with isolated=False: the default bridge
    isolated: bool = False           # no network at all
    hostname: str | None = None
    config_keys: tuple[str, ...] = ()              # top-level keys/sections of the host's configuration it gets
    config_values: tuple[tuple[str, Any], ...] = ()  # dotted keys set to the container's view (paths, db host)

    @property
    def runs_as_root(self) -> bool:
        return self.user.split(":")[0] == "0"

    @property
    def data_root(self) -> Mount | None:
        return next((m for m in self.mounts if m.target == DATA), None)

    def binds(self) -> dict[str, str]:
        """{container path: host path} of everything the container may name in its output."""
        out = {m.target: m.source for m in self.mounts}
        out.update({s.target: s.source for s in self.secrets})
        return {k: v for k, v in out.items() if k != v}


# --- the stages ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StageRow:
    component: str
    network: str                   # INSTANCE or NONE
    config_keys: tuple[str, ...]
    db_role: str = ""              # the database role whose password it gets (and the database's host)


STAGES: dict[str, StageRow] = {  # in pipeline order
    "sync": StageRow("sync", INSTANCE, ("data_root", "pipeline", "sync", "collectors")),
    "sanitize": StageRow("sanitizer", NONE, ("data_root", "pipeline")),
    "importer": StageRow("importer", INSTANCE, ("data_root", "secrets_dir", "pipeline", "db"), db_role="importer"),
}


# --- the backup actions: one row each in snapshots/actions.ACTIONS -------------------------------------------

def roles_to_name(action: str) -> tuple[str, ...]:
    """The roles a caller may name for action (backup_spec's role): every role for db-password, else only
    "" (the action has its own, or none)."""
    return tuple(dbconn.ROLES) if ACTIONS[action].db_role == "any" else ("",)


BACKUP_KEYS = ("data_root", "cache_dir", "secrets_dir", "backup", "retention")


def _secret(cfg: Config, name: str) -> Secret:
    return Secret(str(secrets.path(cfg.secrets_dir, name)), f"{SECRETS}/{name}")


def _db_access(cfg: Config, role: str) -> tuple[list[Secret], list[tuple[str, Any]]]:
    """What a container that logs in as role gets: the role's password (and, with db.tls, the CA it verifies
    the database with), and its [db] keys: the database's addresses inside the instance network (or on its
    own host, host.role aggregator), TLS, and the role itself (the container's code never names one)."""
    files = [_secret(cfg, dbconn.password_name(role))]
    if roles.of(cfg).database_elsewhere:  # the database's own host, at its published ports
        where = [("db.host", cfg.db.host), ("db.port", cfg.db.port), ("db.postgres_host", cfg.db.host),
                 ("db.postgres_port", cfg.db.postgres_port)]
    else:
        where = [("db.host", stack.container_name(cfg, "db")), ("db.port", stack.db_port_inside(cfg)),
                 ("db.postgres_host", stack.container_name(cfg, "postgres")), ("db.postgres_port", pgsql.PG_PORT)]
    values: list[tuple[str, Any]] = [("db.role", role), *where, ("db.tls", cfg.db.tls),
                                     ("db.ca_file", DB_CA if cfg.db.tls else "")]
    if cfg.db.tls:
        ca = dbconn.ca_file_of(cfg.db, cfg.secrets_dir)
        if not Path(ca).is_file():
            raise DrError(f"db.tls is on but the database's CA certificate {ca} is missing: `invoke certs` makes "
                          "it (or set db.ca_file)")
        files.append(Secret(ca, DB_CA))
    return files, values


def _network(cfg: Config) -> str:
    return stack.network_name(cfg)


def stage_spec(cfg: Config, stage: str, extra: tuple[str, ...] = ()) -> ContainerSpec:
    """The container of one stage's run; extra: more arguments (the importer's --catch-up)."""
    if stage not in STAGES:
        raise DrError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
    row = STAGES[stage]
    mounts = [Mount(str(cfg.data_root_path), DATA, "rw", create=0o755)]
    secret_files: list[Secret] = []
    values: list[tuple[str, Any]] = [("data_root", DATA)]
    if stage == "sync":
        if not cfg.collectors:
            raise DrError("no collectors are configured ([[collectors]] in the configuration)")
        for n, c in enumerate(cfg.collectors):
            target = f"{SECRETS}/collector-{c.name}"
            secret_files.append(Secret(c.key_file, target))
            values.append((f"collectors.{n}.key_file", target))
        values.append(("sync.release", sync.release_mode(cfg)))  # resolved here: the container has no [offsite]
    if stage == "sanitize" and cfg.pipeline.bridge_db:
        secret_files.append(Secret(cfg.pipeline.bridge_db, BRIDGE_DB))  # private: probes' bridges
        values.append(("pipeline.bridge_db", BRIDGE_DB))
    if row.db_role:
        db_secrets, db_values = _db_access(cfg, row.db_role)
        secret_files += db_secrets
        values += [("secrets_dir", SECRETS), *db_values]
    return ContainerSpec(
        label=stage, component=row.component,
        command=("python3", "-m", f"stages.{stage}", "--json", *extra, "--config", CONFIG_PATH),
        user=STAGE_USER, mounts=tuple(mounts), secrets=tuple(secret_files),
        networks=(_network(cfg),) if row.network == INSTANCE else (), isolated=row.network == NONE,
        config_keys=row.config_keys, config_values=tuple(values))


BROKER_CA = "/run/tls/broker-ca.crt"  # the CA the subscriber verifies the broker with (public)


def subscriber_spec(cfg: Config) -> ContainerSpec:
    """The subscriber's service container (stages/subscribe.py, docs/broker.md): sync's image, mounts and
    collector keys, and the broker's Aggregator password and CA; it reaches the broker on the instance
    network as <instance>-broker:5671, whatever broker.host says on this host."""
    sync_spec = stage_spec(cfg, "sync")
    password = broker_names.password_name(broker_names.AGGREGATOR_USER)
    ca = broker_names.ca_file(cfg)
    if not ca.is_file():
        raise DrError(f"the broker's CA certificate {ca} is missing: `invoke certs` makes it (or set broker.ca_file)")
    host, port = broker_names.address(dr_config.derive(cfg, {"broker.host": ""}))  # on the instance network
    return ContainerSpec(
        label="subscriber", component="sync",
        command=("python3", "-m", "stages.subscribe", "--config", CONFIG_PATH),
        user=STAGE_USER, mounts=sync_spec.mounts,
        secrets=(*sync_spec.secrets, _secret(cfg, password), Secret(str(ca), BROKER_CA)),
        networks=sync_spec.networks, config_keys=(*sync_spec.config_keys, "instance", "broker"),
        config_values=(*sync_spec.config_values, ("secrets_dir", SECRETS), ("broker.host", host),
                       ("broker.port", port), ("broker.ca_file", BROKER_CA)))


FOLLOWERS = ("sanitize", "importer")  # the stages that run as services in follow mode (stages/follow.py)


def follower_spec(cfg: Config, stage: str) -> ContainerSpec:
    """A stage's container in follow mode (a service: a run whenever inputs wait): the stage's own container,
    command `--follow` instead of `--json`."""
    if stage not in FOLLOWERS:
        raise DrError(f"stage {stage!r} has no follow mode; those that do: {', '.join(FOLLOWERS)}")
    spec = stage_spec(cfg, stage)
    command = ("python3", "-m", f"stages.{stage}", "--follow", "--config", CONFIG_PATH)
    return dataclasses.replace(spec, label=f"follow-{stage}", command=command)


def backup_spec(cfg: Config, action: str, host: str, offsite: bool = False, files: bool = True, db: bool = True,
                dry_run: bool = False, extra: tuple[str, ...] = (), artifacts: bool | None = None,
                copy: bool = False, role: str = "") -> ContainerSpec:
    """The backup container of one snapshots.cli action. offsite: the action works on the off-site repository
    (copy uses both); files, db: what restore restores; copy: restore also puts the set's physical copy
    into PostgreSQL's volume (stopped: a drill's new volume), side by side with the files; artifacts:
    whether <cache_dir>/go exists (asked of the host when None); role: the database role of an action that
    works as any one (db-password), and only of such an action."""
    if action not in ACTIONS:
        raise DrError(f"unknown snapshot action {action!r}; actions: {', '.join(ACTIONS)}")
    row = ACTIONS[action]
    if role not in roles_to_name(action):
        raise DrError(f"snapshot action {action} " + (f"works as one of the roles {', '.join(dbconn.ROLES)}, "
                      f"not {role!r}" if row.db_role == "any" else "has its own role"))
    db_role = role or row.db_role
    if copy and (not row.files_flag or db):
        raise DrError("only a restore without the portable dump (db=False) puts the physical copy in place "
                      f"beside the files, not {action}" + (" with db" if row.files_flag else ""))
    uses_primary = row.repository and (row.both_repositories or not offsite)
    uses_offsite = row.repository and (row.both_repositories or offsite)
    wants_data = row.data and (files or not row.files_flag)
    wants_db = bool(row.db_role) and (db or not row.files_flag)
    mounts = [Mount(str(cfg.cache_path / "restic"), f"{CACHE}/restic", "rw", create=0o755)] if row.repository else []
    secret_files: list[Secret] = []
    networks: list[str] = []
    keys = list(BACKUP_KEYS) if row.repository else ["secrets_dir"]
    values: list[tuple[str, Any]] = [("data_root", DATA), ("cache_dir", CACHE), ("secrets_dir", SECRETS)]
    cut_view = wants_data and row.cut and cfg.backup.cut
    if cut_view:
        # The set backs up the data root's cut (snapshots/cut.py), seen where the data root is seen elsewhere
        # (/data: the snapshots' paths stay as they were); the data root itself is at LIVE.
        mounts.append(Mount(str(cfg.data_root_path), LIVE, "rw", create=0o755))
        mounts.append(Mount(str(cut.tree(cfg.data_root_path)), DATA, "rw", create=0o755))
        values[0] = ("data_root", LIVE)
    elif wants_data:
        mounts.append(Mount(str(cfg.data_root_path), DATA, "rw", create=0o755))
    if row.pg_volume or copy:
        mounts.append(Mount(stack.pg_volume_name(cfg), PG_VOLUME, "rw"))
    go = cfg.cache_path / "go"
    if row.artifacts == "ro-if-present" and (go.is_dir() if artifacts is None else artifacts):
        mounts.append(Mount(str(go), ARTIFACTS, "ro"))
    elif row.artifacts == "rw":
        mounts.append(Mount(str(go), ARTIFACTS, "rw", create=0o755))
    if wants_db:
        keys.append("db")
        db_secrets, db_values = _db_access(cfg, db_role)
        secret_files += db_secrets
        values += db_values
        networks.append(_network(cfg))
    if row.pending:
        secret_files.append(_secret(cfg, pgroles.pending_name(db_role)))
    if uses_primary:
        repo = cfg.backup.repository
        if dr_config.is_local_repository(repo):
            mounts.append(Mount(repo, REPO, "rw", create=0o700))
            values.append(("backup.repository", REPO))
        secret_files.append(_secret(cfg, secrets.RESTIC_PASSWORD))
    if uses_offsite:
        if not cfg.offsite.repository:
            raise DrError("no off-site repository is configured: set offsite.repository (and offsite.network "
                          "when the rest-server runs on this Docker host; see `invoke offsite-server`)")
        keys.append("offsite")
        secret_files += [_secret(cfg, secrets.OFFSITE_RESTIC_PASSWORD), _secret(cfg, secrets.OFFSITE_HTTP_PASSWORD)]
        if cfg.offsite.repository.startswith("rest:https:"):  # restic verifies the server against our CA
            ca = dbconn.ca_file_of(cfg.offsite, cfg.secrets_dir)
            if not Path(ca).is_file():
                raise DrError(f"the off-site repository is https but the CA certificate {ca} is missing: "
                              "`invoke certs` makes it (or set offsite.ca_file)")
            secret_files.append(Secret(ca, OFFSITE_CA))
            values.append(("offsite.ca_file", OFFSITE_CA))
        if cfg.offsite.network:
            networks.append(cfg.offsite.network)
    command = ["python3", "-m", "snapshots.cli", action, "--host", host]
    command += ["--offsite"] if offsite else []
    command += ["--dry-run"] if dry_run else []
    if row.files_flag:
        command += ([] if files else ["--no-files"]) + ([] if db else ["--no-db"]) + (["--with-copy"] if copy else [])
    command += ["--cut-view", DATA] if cut_view else []
    command += [*extra, "--config", CONFIG_PATH]
    return ContainerSpec(
        label=f"snapshot-{action}", component="backup", command=tuple(command), user=ROOT_USER,
        mounts=tuple(mounts), secrets=tuple(secret_files), networks=tuple(networks), hostname=BACKUP_HOSTNAME,
        config_keys=tuple(keys), config_values=tuple(values))


def container_config(cfg: Config, spec: ContainerSpec) -> str:
    """The configuration file (TOML) the container gets: only the keys and sections it needs, from the
    host's configuration, with the container's paths and database address. No secret value: secrets are
    files, named by their container paths."""
    values = {k: v for k, v in cfg.as_dict().items() if k in spec.config_keys}
    for dotted, value in spec.config_values:
        node: Any = values
        *parents, last = dotted.split(".")
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        node[last] = value
    return configfile.to_toml(values)

