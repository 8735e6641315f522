"""Host side of snapshot sets: run `python -m snapshots.cli` in the backup image with what it needs:
the data root (read-write: the lock file lives there), the repository (when it is a local folder), a restic
cache, the restic password and the database password (read-only files), and the project network."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from dr import containers, log, secrets, services
from dr.config import Config
from dr.errors import DrError

_log = log.get("backup")

RESTIC_PASSWORD = "restic-password"


def _is_local(repository: str) -> bool:
    return repository.startswith("/")


def run(cfg: Config, action: str, dry_run: bool = False) -> tuple[int, object]:
    """(exit code, parsed JSON result) of one snapshots.cli action (init, take, list, forget)."""
    if action == "init":
        secrets.ensure(cfg.secrets_dir, RESTIC_PASSWORD)
    volumes = {str(cfg.data_root_path): {"bind": "/data", "mode": "rw"},
               str(cfg.cache_path / "restic"): {"bind": "/cache/restic", "mode": "rw"}}
    overrides = ["data_root=/data", "cache_dir=/cache", "secrets_dir=/run/secrets",
                 f"db.host={services.container_name(cfg, 'db')}", "db.port=27017",
                 f"db.database={cfg.db.database}", f"db.user={cfg.db.user}",
                 f"backup.lock_timeout={cfg.backup.lock_timeout}"]
    overrides += [f"retention.{k}={v}" for k, v in cfg.retention.as_dict().items()]
    repo = cfg.backup.repository
    if _is_local(repo):
        Path(repo).mkdir(parents=True, exist_ok=True, mode=0o700)
        volumes[repo] = {"bind": "/repo", "mode": "rw"}
        overrides.append("backup.repository=/repo")
    else:
        overrides.append(f"backup.repository={repo}")
    for name in (RESTIC_PASSWORD, secrets.DB_PASSWORD):
        path = secrets.path(cfg.secrets_dir, name)
        if name == RESTIC_PASSWORD or action == "take":
            secrets.read(cfg.secrets_dir, name)  # a clear error here, before any container starts
            volumes[str(path)] = {"bind": f"/run/secrets/{name}", "mode": "ro"}
    (cfg.cache_path / "restic").mkdir(parents=True, exist_ok=True)
    cmd = ["python3", "-m", "snapshots.cli", action, "--host", socket.gethostname()]
    if dry_run:
        cmd.append("--dry-run")
    for o in overrides:
        cmd += ["--set", o]
    code, out = containers.run_tool(cfg, "backup", cmd, volumes, services.network_name(cfg), f"snapshot-{action}")
    if code != 0:
        return code, None
    try:
        return code, json.loads(out)
    except ValueError:
        raise DrError(f"snapshots {action} printed no result:\n{out[-1000:]}") from None
