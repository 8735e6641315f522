"""The physical copy of the database: PostgreSQL's own base backup (`pg_basebackup`) as one tar stream into
restic, and back into PostgreSQL's volume.

Taking: `python3 -m snapshots.pgcopy copy ...` runs `pg_basebackup --format=tar --wal-method=fetch
--checkpoint=fast` as the `backup` role (REPLICATION) and writes its tar to stdout, so restic takes it with
`--stdin-from-command` (no file on disk; a failing pg_basebackup fails the snapshot). The stream passes
through unchanged (splice(2), in the kernel); its size goes to the info file (the set's manifest). The copy
is consistent as of its end (PostgreSQL replays the WAL it carries) and is taken while the pipeline runs.
It holds pg_basebackup's `backup_manifest` (a checksum per file, and one over the manifest itself). Nothing
here hashes the stream: restic content-addresses it (a sha256 per chunk, checked on every read back), and
hashing it again cost a third of the copy's time on this machine's two cores (docs/benchmarks.md).

Restoring (`unpack`, `swap_in`): the stream from `restic dump` is unpacked into `restore-<set>/` beside the
live data directory, inside the same volume. Only when it is a whole base backup, its PG_VERSION is this
PostgreSQL's major version and `pg_verifybackup` finds every file as the backup manifest lists it (and, for
a set taken before 2026-11-29 whose manifest records the stream's sha256, the sha256 matches), does it take
the place of `data/`; the previous data directory is renamed to
`replaced-<set>-<time>/`, never deleted. A copy restores only into the same PostgreSQL major version
(`check_major`): across versions, the portable dump (snapshots/dbdump.py) is the way.

The volume's layout (dockerfiles/postgres/entrypoint.sh): the data directory is `data/` in the volume.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
from pathlib import Path
from typing import BinaryIO

from common import atomic, log, runner
from common.errors import CommandError, DrError
from database import pgsql
from snapshots import gate

_log = log.get("pgcopy")

PG_MAJOR = 17          # the PostgreSQL of dockerfiles/postgres (postgresql-17) and of the backup image's tools
COPY_NAME = "postgres.tar"  # the file name of the copy in its restic snapshot
DATA = "data"          # the data directory inside PostgreSQL's volume
CHUNK = 1 << 20
REQUIRED = ("PG_VERSION", "backup_label", "backup_manifest")  # what every base backup holds


class CopyError(DrError):
    """The copy cannot be taken, read or put in place; nothing was changed in the volume."""


def basebackup_argv(host: str, port: int, role: str, label: str) -> list[str]:
    """pg_basebackup writing one tar (WAL included) to stdout, starting at once (fast checkpoint)."""
    return ["pg_basebackup", f"--host={host}", f"--port={port}", f"--username={role}", "--no-password",
            "--pgdata=-", "--format=tar", "--wal-method=fetch", "--checkpoint=fast", f"--label={label}"]


def verify_argv(directory: Path) -> list[str]:
    """pg_verifybackup of an unpacked copy against its backup_manifest (the WAL is checked by PostgreSQL's
    own recovery when it starts: every record carries a CRC)."""
    return ["pg_verifybackup", "--no-parse-wal", "--quiet", str(directory)]


def major_of(version_num: int) -> int:
    """PostgreSQL's major version from server_version_num (170006 -> 17)."""
    return version_num // 10000


def check_major(copy_major: int, target_major: int = PG_MAJOR) -> None:
    if copy_major != target_major:
        raise CopyError(f"the set's physical copy is of PostgreSQL {copy_major}, this host runs PostgreSQL "
                        f"{target_major}: a physical copy restores only into the same major version. Restore "
                        "the portable dump instead (`invoke restore --from-dump`, docs/runbook.md section "
                        "\"Moving to another PostgreSQL major version\")")


# --- taking -------------------------------------------------------------------------------------------------

def _pass_through(stream: BinaryIO, out: BinaryIO) -> dict:
    """Move pg_basebackup's stream to out unchanged, counting it: with splice(2) (pipe to pipe, in the
    kernel: restic's side is a pipe), else read and write. Nothing hashes it here: restic content-addresses
    every chunk (sha256) and checks each one it reads back, and pg_verifybackup checks every file of a
    restored copy against the checksums in PostgreSQL's backup_manifest."""
    size = 0
    out.flush()
    try:
        fds = stream.fileno(), out.fileno()
        moved = os.splice(*fds, CHUNK)
    except (OSError, AttributeError, ValueError, io.UnsupportedOperation):
        fds = None  # not a pipe or not a file descriptor at all (tests): copied the plain way below
    if fds is not None:
        while moved:
            size += moved
            moved = os.splice(*fds, CHUNK)
        return {"bytes": size}
    while chunk := stream.read(CHUNK):
        size += len(chunk)
        out.write(chunk)
    out.flush()
    return {"bytes": size}


def copy(host: str, port: int, role: str, password_file: str, label: str, out: BinaryIO, ca_file: str = "") -> dict:
    """Run pg_basebackup and write its tar to out; {bytes} written. CopyError (with
    pg_basebackup's reason) when it fails."""
    with pgsql.pgpass_env(host, port, role, password_file, ca_file) as env:
        try:
            return runner.read(basebackup_argv(host, port, role, label), lambda s: _pass_through(s, out), env=env)
        except CommandError as exc:
            raise CopyError(f"pg_basebackup from {host}:{port} as {role} failed: "
                            f"{exc.stderr_tail.strip() or f'exit {exc.returncode}'}") from None


# --- restoring ----------------------------------------------------------------------------------------------

class _Hashing:
    """A read-only stream that counts (and, when asked, hashes) what is read through it."""

    def __init__(self, stream: BinaryIO, hashing: bool = True):
        self.stream = stream
        self.sha256 = hashlib.sha256() if hashing else None
        self.bytes = 0

    def read(self, n: int = -1) -> bytes:
        data = self.stream.read(n)
        if self.sha256 is not None:
            self.sha256.update(data)
        self.bytes += len(data)
        return data

    def hexdigest(self) -> str | None:
        return self.sha256.hexdigest() if self.sha256 is not None else None

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


def staging_dir(volume: Path, set_id: str) -> Path:
    return volume / f"restore-{set_id}"


def unpack(stream: BinaryIO, dest: Path, expect_sha256: str | None) -> dict:
    """Unpack a copy's tar stream into dest (made empty first; it is ours); CopyError, with dest removed,
    when it is not a whole base backup, or, for a copy whose manifest records the stream's sha256 (sets
    taken before 2026-11-29), not the stream the manifest names."""
    if dest.exists():
        shutil.rmtree(dest)  # the remains of an interrupted restore of the same set
    dest.mkdir(mode=0o700, parents=True)
    reader = _Hashing(stream, hashing=bool(expect_sha256))
    try:
        with tarfile.open(fileobj=reader, mode="r|", bufsize=CHUNK, copybufsize=CHUNK) as tar:
            # "data": no absolute paths, nothing outside dest, no device files (a damaged or hostile stream)
            tar.extractall(dest, filter="data")
        reader.drain()
        if expect_sha256 and reader.hexdigest() != expect_sha256:
            raise CopyError(f"the copy read back has sha256 {reader.hexdigest()}, the set's manifest says "
                            f"{expect_sha256}: it is damaged")
        missing = [name for name in REQUIRED if not (dest / name).is_file()]
        if missing:
            raise CopyError(f"the copy is not a whole base backup: it has no {', '.join(missing)}")
    except (tarfile.TarError, OSError, EOFError) as exc:
        shutil.rmtree(dest, ignore_errors=True)
        raise CopyError(f"the copy cannot be unpacked: {type(exc).__name__}: {exc}") from None
    except CopyError:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return {"sha256": reader.hexdigest(), "bytes": reader.bytes}


def verify(directory: Path, target_major: int = PG_MAJOR) -> None:
    """The unpacked copy is of this major version and every file is as its backup_manifest lists it."""
    text = (directory / "PG_VERSION").read_text().strip()
    if not text.isdigit():
        raise CopyError(f"the copy's PG_VERSION says {text[:20]!r}, not a PostgreSQL major version")
    check_major(int(text), target_major)
    try:
        runner.run(verify_argv(directory), quiet=True)
    except CommandError as exc:
        raise CopyError(f"pg_verifybackup finds the unpacked copy damaged: {exc.stderr_tail.strip()}") from None


def read_back(stream: BinaryIO, expect_sha256: str | None) -> list[str]:
    """Problems of a copy's stream read back whole without unpacking it (snapshot checks): a tar that reads
    to its end, the files every base backup holds, and its sha256 against the manifest's when it records one
    (restic checks every chunk it reads against its sha256 in any case)."""
    reader = _Hashing(stream, hashing=bool(expect_sha256))
    found = set()
    try:
        with tarfile.open(fileobj=reader, mode="r|", bufsize=CHUNK, copybufsize=CHUNK) as tar:
            for member in tar:
                if member.name in REQUIRED:
                    found.add(member.name)
        reader.drain()
    except (tarfile.TarError, EOFError) as exc:
        return [f"the physical copy is not a readable tar: {exc}"]
    problems = []
    if expect_sha256 and reader.hexdigest() != expect_sha256:
        problems.append(f"the physical copy has sha256 {reader.hexdigest()}, the manifest says {expect_sha256}")
    missing = sorted(set(REQUIRED) - found)
    if missing:
        problems.append(f"the physical copy has no {', '.join(missing)}")
    return problems


def holds_cluster(volume: Path) -> bool:
    return (volume / DATA / "PG_VERSION").is_file()


def swap_in(volume: Path, set_id: str) -> str | None:
    """Put the unpacked copy in place of the volume's data directory (PostgreSQL must be stopped); the
    previous one is renamed, never deleted. Returns its new name, or None when there was none."""
    data, staged = volume / DATA, staging_dir(volume, set_id)
    if (data / "postmaster.pid").exists():
        raise CopyError(f"PostgreSQL is running on this volume, or was not stopped cleanly ({DATA}/postmaster.pid "
                        "exists): stop it first (`invoke down`); a killed one must be started and stopped once")
    aside = None
    if data.exists():
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        aside = f"replaced-{set_id}-{stamp}"
        data.rename(volume / aside)
    staged.rename(data)
    atomic.fsync_dir(volume)
    return aside


def swap_back(volume: Path, aside: str | None, set_id: str) -> None:
    """Undo swap_in: the restored data directory goes to `failed-<set>`, the previous one back in place."""
    data = volume / DATA
    if data.exists():
        data.rename(volume / f"failed-{set_id}")
    if aside:
        (volume / aside).rename(data)
    atomic.fsync_dir(volume)


# --- command line (the backup image; restic runs `copy` with --stdin-from-command) -------------------------

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m snapshots.pgcopy", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("copy", help="pg_basebackup's tar to stdout")
    c.add_argument("--host", required=True)
    c.add_argument("--port", type=int, default=pgsql.PG_PORT)
    c.add_argument("--user", required=True)
    c.add_argument("--password-file", required=True)
    c.add_argument("--label", default="aggregator-dr")
    c.add_argument("--info-file", required=True, help="write {bytes} of the stream here (JSON)")
    c.add_argument("--ca-file", help="TLS: verify PostgreSQL's certificate and name against this CA")
    c.add_argument("--wait-for", type=Path, help="start pg_basebackup only once this file exists (snapshots/gate.py)")
    c.add_argument("--stop-file", type=Path, help="with --wait-for: exit 1 with no stream when this one appears")
    args = p.parse_args(argv)
    log.setup()
    if sys.stdout.isatty():
        print("error: the copy is a binary stream: send stdout to a file or to restic", file=sys.stderr)
        return 2
    if (args.wait_for is None) != (args.stop_file is None):
        p.error("--wait-for and --stop-file go together")
    if args.wait_for is not None and not gate.wait(args.wait_for, args.stop_file, os.getppid()):
        print("error: the set stopped before its copy started: nothing was copied", file=sys.stderr)
        return 1
    try:
        info = copy(args.host, args.port, args.user, args.password_file, args.label, sys.stdout.buffer,
                    args.ca_file or "")
    except CopyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    atomic.write_bytes(Path(args.info_file), json.dumps(info).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())

