"""Host side of snapshot sets: run `python -m snapshots.cli` in the backup image with only what the action
needs: the data root (read-write: the lock file lives there) for `take`, the primary repository when it is a
local folder, a restic cache, the secrets as read-only files, and a network: the instance's (to reach the
database) for `take`, the off-site one for off-site actions, Docker's default bridge otherwise."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from common import log, secrets
from common.config import Config
from common.errors import DrError
from dr import containers, services
from snapshots.restic import BACKUP_HOSTNAME

_log = log.get("backup")


def _is_local(repository: str) -> bool:
    return repository.startswith("/")


def _secret_mount(cfg: Config, name: str, volumes: dict) -> None:
    secrets.read(cfg.secrets_dir, name)  # a clear error here, before any container starts
    volumes[str(secrets.path(cfg.secrets_dir, name))] = {"bind": f"/run/secrets/{name}", "mode": "ro"}


def run(cfg: Config, action: str, dry_run: bool = False, extra: tuple[str, ...] = (),
        offsite: bool = False, files: bool = True, db: bool = True) -> tuple[int, object]:
    """(exit code, parsed JSON result or None) of one snapshots.cli action (init, take, list, forget, check,
    copy, restore, artifacts-restore); offsite: the action works on the off-site repository; extra: more arguments
    (--read-data-subset, --snapshot-set, --force); files, db: restore the state directories, the database."""
    uses_primary = action == "copy" or not offsite
    uses_offsite = action == "copy" or offsite
    if action == "init":
        secrets.ensure(cfg.secrets_dir, secrets.OFFSITE_RESTIC_PASSWORD if offsite else secrets.RESTIC_PASSWORD)
    (cfg.cache_path / "restic").mkdir(parents=True, exist_ok=True)
    volumes = {str(cfg.cache_path / "restic"): {"bind": "/cache/restic", "mode": "rw"}}
    overrides = ["data_root=/data", "cache_dir=/cache", "secrets_dir=/run/secrets",
                 f"backup.lock_timeout={cfg.backup.lock_timeout}",
                 f"backup.dump_under_lock={'true' if cfg.backup.dump_under_lock else 'false'}"]
    overrides += [f"retention.{k}={v}" for k, v in cfg.retention.as_dict().items()]
    networks: list[str] = []
    if action == "take" or (action == "restore" and files):
        cfg.data_root_path.mkdir(parents=True, exist_ok=True)
        volumes[str(cfg.data_root_path)] = {"bind": "/data", "mode": "rw"}
    artifacts = cfg.cache_path / "go"
    if action == "take" and artifacts.is_dir():
        volumes[str(artifacts)] = {"bind": "/artifacts", "mode": "ro"}
    if action == "artifacts-restore":
        artifacts.mkdir(parents=True, exist_ok=True)
        volumes[str(artifacts)] = {"bind": "/artifacts", "mode": "rw"}
    if action == "take" or (action == "restore" and db):
        overrides += [f"db.host={services.container_name(cfg, 'db')}", "db.port=27017",
                      f"db.database={cfg.db.database}", f"db.user={cfg.db.user}"]
        _secret_mount(cfg, secrets.DB_PASSWORD, volumes)
        networks.append(services.network_name(cfg))
    if uses_primary:
        repo = cfg.backup.repository
        if _is_local(repo):
            Path(repo).mkdir(parents=True, exist_ok=True, mode=0o700)
            volumes[repo] = {"bind": "/repo", "mode": "rw"}
            repo = "/repo"
        overrides.append(f"backup.repository={repo}")
        _secret_mount(cfg, secrets.RESTIC_PASSWORD, volumes)
    if uses_offsite:
        if not cfg.offsite.repository:
            raise DrError("no off-site repository is configured: set offsite.repository (and offsite.network "
                          "when the rest-server runs on this Docker host; see `invoke offsite-server`)")
        overrides += [f"offsite.repository={cfg.offsite.repository}", f"offsite.user={cfg.offsite.user}"]
        _secret_mount(cfg, secrets.OFFSITE_RESTIC_PASSWORD, volumes)
        _secret_mount(cfg, secrets.OFFSITE_HTTP_PASSWORD, volumes)
        if cfg.offsite.network:
            networks.append(cfg.offsite.network)
    cmd = ["python3", "-m", "snapshots.cli", action, "--host", socket.gethostname()]
    if offsite:
        cmd.append("--offsite")
    if dry_run:
        cmd.append("--dry-run")
    if action == "restore":
        cmd += ([] if files else ["--no-files"]) + ([] if db else ["--no-db"])
    cmd += list(extra)
    for o in overrides:
        cmd += ["--set", o]
    code, out = containers.run_tool(cfg, "backup", cmd, volumes, networks, f"snapshot-{action}",
                                    hostname=BACKUP_HOSTNAME)
    try:
        return code, json.loads(out)
    except ValueError:
        if code != 0:
            return code, None
        raise DrError(f"snapshots {action} printed no result:\n{out[-1000:]}") from None
