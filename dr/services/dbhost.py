"""`invoke db-host-kit`: what the database's own host needs from the Aggregator's host, copied into a folder
the operator carries over (docs/runbook.md, section 12).

The kit is a secrets folder: every database role's password (PostgreSQL sets them at start), the restic
password (the database host restores its part of a set), the CA's certificate and the database's and
PostgreSQL's certificates and keys. Never the CA's key: it stays on the host that made it. Files keep mode
0600 in 0700 folders; the kit is written beside the destination and renamed into place, so a half-written
kit is never taken for a whole one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from common import log, secrets
from common.config import Config
from common.errors import DrError
from common.records import Record
from database import db
from dr.services import certs

_log = log.get("db-host")


@dataclass
class KitWritten(Record):
    """The kit written: its folder and the names of the files in it."""
    folder: str
    files: list[str]

    def render(self) -> str:
        return f"{len(self.files)} files in {self.folder}: {', '.join(self.files)}"


def kit_files(cfg: Config) -> list[tuple[Path, str]]:
    """(file on this host, its name in the kit) for everything the database's host needs."""
    out = [(secrets.path(cfg.secrets_dir, db.password_name(role)), db.password_name(role)) for role in db.ROLES]
    out.append((secrets.path(cfg.secrets_dir, secrets.RESTIC_PASSWORD), secrets.RESTIC_PASSWORD))
    out.append((certs.cert_path(cfg, certs.CA), f"tls/{certs.CA}.crt"))
    for name in ("db", "postgres"):
        out += [(certs.cert_path(cfg, name), f"tls/{name}.crt"), (certs.key_path(cfg, name), f"tls/{name}.key")]
    return out


def write_kit(cfg: Config, dest: str | os.PathLike) -> KitWritten:
    """Copy the kit into dest (which must not exist yet). DrError naming what is missing (nothing is written
    then)."""
    folder = os.fspath(dest)
    dest = Path(dest)
    if dest.exists():
        raise DrError(f"{dest} exists already: name a new folder for the kit")
    files = kit_files(cfg)
    missing = [str(src) for src, _ in files if not src.is_file()]
    if missing:
        raise DrError("the kit cannot be made, missing: " + ", ".join(missing)
                      + " (with db.tls on, `invoke certs` makes the certificates; `invoke rebuild` the passwords)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        for src, name in files:
            target = tmp / name
            target.parent.mkdir(mode=0o700, exist_ok=True)
            shutil.copyfile(src, target)
            os.chmod(target, 0o644 if name.endswith(".crt") else 0o600)
        os.chmod(tmp, 0o700)
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _log.info("database host kit in %s: %s", dest, ", ".join(name for _, name in files))
    return KitWritten(folder, [name for _, name in files])
