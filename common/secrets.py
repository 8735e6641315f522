"""Secrets live in files in the secrets directory (mode 0700, files 0600), never in images, logs or argv."""

from __future__ import annotations

import os
import secrets as _random
import stat
from pathlib import Path

from common import log
from common.errors import SecretError

_log = log.get("secrets")

RESTIC_PASSWORD = "restic-password"
OFFSITE_RESTIC_PASSWORD = "offsite-restic-password"  # the off-site repository's own encryption password
OFFSITE_HTTP_PASSWORD = "offsite-http-password"  # the rest-server user's password


def path(secrets_dir: str | os.PathLike, name: str) -> Path:
    return Path(secrets_dir) / name


def read(secrets_dir: str | os.PathLike, name: str) -> str:
    """Read one secret; clear errors for missing, unreadable, empty or world-readable files."""
    p = path(secrets_dir, name)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise SecretError(f"secret file {p} does not exist") from None
    except PermissionError:
        raise SecretError(f"secret file {p} is not accessible (permission denied)") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretError(f"secret file {p} must not be readable by group or others (chmod 600 {p})")
    try:
        value = p.read_text(encoding="utf-8").strip()
    except PermissionError:
        raise SecretError(f"secret file {p} is not readable (permission denied)") from None
    if not value:
        raise SecretError(f"secret file {p} is empty")
    return value


def put(secrets_dir: str | os.PathLike, name: str, value: str) -> Path:
    """Write one secret (mode 0600, in a 0700 folder), atomically; returns its path."""
    d = Path(secrets_dir)
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(d, 0o700)
    p = d / name
    tmp = d / f".{name}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.rename(tmp, p)
    return p


def ensure(secrets_dir: str | os.PathLike, name: str) -> tuple[Path, bool]:
    """Create a random secret when none exists; return (path, created). An existing one is never changed."""
    p = path(secrets_dir, name)
    if p.exists():
        read(secrets_dir, name)  # validates mode and content
        return p, False
    put(secrets_dir, name, _random.token_urlsafe(32))
    _log.info("created secret %s (mode 0600)", p)
    return p, True
