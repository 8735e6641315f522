"""sync: pull closed reports from each configured collector into raw/<collector>/, with rsync over SSH.

For each collector:
1. list its archive folder over SSH (regular files; dot-files and dot-folders are in-flight and skipped);
   unsafe names (`..`, absolute, control characters, odd characters) are refused, reported, never written;
2. choose the files that fit above the free-space reserve (sync.reserve_mb); when the next one does not
   fit, stop cleanly after this round (exit 1, nothing of the rest is touched on the collector);
3. rsync them into raw/.incoming/<collector>/ (a partial-dir makes an interrupted pull resume; the temporary
   files of a pull killed outright are removed first; nothing half-written is ever in raw/<collector>/);
4. verify each copy: size and sha256 here against sha256 computed on the collector now; a file that changed
   since it was listed is left there (and its copy dropped) for the next run;
5. fsync, then move each verified file into raw/<collector>/ in a journal transaction;
6. only then remove it from the collector, and only if its sha256 there still matches.
The collector's host key is pinned from the configuration (StrictHostKeyChecking, no other known_hosts).

    python -m stages.sync --data-root DIR [--config FILE] [--json]
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from common import atomic, digest, runner
from common.errors import CommandError
from stages import failures, journal, lock, stage
from stages.cli import CollectorPull, Summary
from stages.cli import main as cli_main
from stages.layout import DataRoot

STAGE = "sync"
_COMPONENT = re.compile(r"^[A-Za-z0-9_+@=:,][A-Za-z0-9._+@=:,-]{0,254}$")  # no leading "-" or "."
MAX_DEPTH = 6
PARTIAL_TRANSFER = (23, 24)  # rsync: some files could not be transferred / vanished during the transfer


@dataclass(frozen=True)
class RemoteFile:
    rel: str
    size: int


def safe_name(rel: str) -> bool:
    if not rel or rel.startswith("/") or len(rel) > 1024:
        return False
    parts = rel.split("/")
    return len(parts) <= MAX_DEPTH and all(p not in (".", "..") and _COMPONENT.match(p) for p in parts)


class Remote:
    """SSH and rsync to one collector, with its host key pinned."""

    def __init__(self, collector, timeout: int, workdir: Path):
        self.c = collector
        self.timeout = timeout
        self.known_hosts = workdir / f"known_hosts-{collector.name}"
        host = collector.host if collector.port == 22 else f"[{collector.host}]:{collector.port}"
        self.known_hosts.write_text(f"{host} {collector.host_key.strip()}\n")

    def ssh_command(self) -> list[str]:
        return ["ssh", "-F", "/dev/null", "-i", self.c.key_file, "-p", str(self.c.port),
                "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=yes",
                "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null",
                "-o", f"ConnectTimeout={self.timeout}", "-o", "ServerAliveInterval=15", "-o", "LogLevel=ERROR"]

    def target(self) -> str:
        return f"{self.c.user}@{self.c.host}"

    def run(self, script: str, stdin=None) -> str:
        return runner.run([*self.ssh_command(), self.target(), script], capture=True, stdin=stdin, quiet=True,
                          timeout=self.timeout * 20)

    def list(self) -> list[tuple[str, int]]:
        archive = shlex.quote(self.c.archive_path)
        out = self.run(f"cd {archive} && find . -path '*/.*' -prune -o -type f -printf '%s\\t%P\\0'")
        files = []
        for item in out.split("\0"):
            if not item:
                continue
            size, _, rel = item.partition("\t")
            files.append((rel, int(size)))
        return files

    def sha256(self, names: list[str]) -> dict[str, str]:
        """sha256 of files on the collector now (names already validated as safe)."""
        if not names:
            return {}
        archive = shlex.quote(self.c.archive_path)
        with tempfile.TemporaryFile() as fh:
            fh.write(b"\0".join(n.encode() for n in names) + b"\0")
            fh.seek(0)
            out = self.run(f"cd {archive} && xargs -0 -r sha256sum -- 2>/dev/null; true", stdin=fh)
        result = {}
        for line in out.splitlines():
            digest, _, name = line.partition("  ")
            if len(digest) == 64:
                result[name] = digest
        return result

    def pull(self, names: list[str], dest: Path) -> str:
        """Pull names into dest. Returns rsync's complaint when some files could not be pulled (exit 23:
        unreadable there, 24: vanished): those are missing from dest, the others are pulled."""
        with tempfile.NamedTemporaryFile("wb", delete=False) as fh:
            fh.write(b"\0".join(n.encode() for n in names) + b"\0")
            listing = fh.name
        try:
            runner.run(["rsync", "--from0", f"--files-from={listing}", "--times", "--no-perms",
                        "--chmod=F600,D700", "--partial-dir=.rsync-partial", f"--timeout={self.timeout * 4}",
                        "-e", shlex.join(self.ssh_command()),
                        f"{self.target()}:{self.c.archive_path.rstrip('/')}/", f"{dest}/"])
            return ""
        except CommandError as exc:
            if exc.returncode in PARTIAL_TRANSFER:
                return exc.stderr_tail.strip()[-500:]
            raise
        finally:
            os.unlink(listing)

    def remove_if_unchanged(self, verified: dict[str, str]) -> list[str]:
        """Delete files whose sha256 on the collector still matches; returns the names deleted."""
        if not verified:
            return []
        archive = shlex.quote(self.c.archive_path)
        script = (f"cd {archive} && while IFS=' ' read -r sum name; do "
                  "[ -f \"$name\" ] && [ \"$(sha256sum < \"$name\" | cut -d' ' -f1)\" = \"$sum\" ] "
                  "&& rm -f -- \"$name\" && printf '%s\\n' \"$name\"; done; true")
        with tempfile.TemporaryFile() as fh:
            fh.write("".join(f"{sha} {name}\n" for name, sha in verified.items()).encode())
            fh.seek(0)
            out = self.run(script, stdin=fh)
        return [line for line in out.splitlines() if line]


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fits(dr: DataRoot, reserve: int, size: int) -> bool:
    return shutil.disk_usage(dr.root).free - size >= reserve


def poison_note(dr: DataRoot, collector: str, rel: str) -> Path:
    """The reason file of a collector's file that sync gave up on; while it exists the file is skipped
    (left on the collector). Remove it to try again."""
    return dr.state("quarantine") / failures.POISON / STAGE / collector / (rel + ".reason.json")


def set_aside_remote(dr: DataRoot, collector: str, rel: str, previous: dict, complaint: str,
                     summary: Summary) -> None:
    """A file on a collector that could not be pulled twice for the same reason: it stays there, and its
    reason file (which makes later runs skip it) says why."""
    note = poison_note(dr, collector, rel)
    body = {"reason": failures.POISON, "collector": collector, "remote": rel, "left_on_collector": True,
            **failures.details(STAGE, previous, "not_pulled", f"not pulled: {complaint}"), "time": journal.now()}
    atomic.write_bytes(note, (json.dumps(body, indent=2) + "\n").encode())
    summary.quarantine(f"{collector}:{rel}", failures.POISON, f"not pulled: {complaint}", dr.relative(note))


RSYNC_TEMPORARY = re.compile(r"^\..+\.[A-Za-z0-9]{6}$")  # rsync's `.<name>.XXXXXX` while it writes <name>


def rsync_leftovers(incoming: Path) -> list[Path]:
    """rsync's temporary files in incoming that a pull killed outright left behind (SIGKILL gives rsync no chance
    to move them into its partial-dir). Safe to remove: sync holds its stage lock, so no rsync runs now, and the
    collector's dot-files are never listed, so a dot-file named like rsync's temporaries here is one of them."""
    return sorted(p for p in incoming.rglob(".*") if p.is_file() and not p.is_symlink()
                  and RSYNC_TEMPORARY.match(p.name) and ".rsync-partial" not in p.relative_to(incoming).parts)


def sync_collector(cfg, dr: DataRoot, collector, summary: Summary, workdir: Path,
                   fails: failures.Failures, pull: CollectorPull) -> bool:
    """Pull one collector, telling pull what it found there and did. Returns False when it stopped short of the
    free-space reserve."""
    remote = Remote(collector, cfg.sync.ssh_timeout, workdir)
    incoming = dr.state("raw") / ".incoming" / collector.name
    incoming.mkdir(parents=True, exist_ok=True)
    os.chmod(dr.state("raw") / ".incoming", 0o700)
    leftovers = rsync_leftovers(incoming)
    for p in leftovers:
        atomic.remove(p)
    if leftovers:
        summary.notes.append(f"{collector.name}: removed {len(leftovers)} temporary file(s) of a pull that was killed")
    raw_dir = dr.state("raw") / collector.name
    reserve = cfg.sync.reserve_mb << 20
    listing = remote.list()
    pull.reached, pull.listed, pull.left = True, len(listing), len(listing)
    wanted: list[RemoteFile] = []
    for rel, size in listing:
        if not safe_name(rel):
            summary.count("refused:unsafe_name")
            summary.notes.append(f"{collector.name}: refused unsafe name {rel!r}")
            continue
        if poison_note(dr, collector.name, rel).exists():
            summary.count("skipped:poison")
            continue
        wanted.append(RemoteFile(rel, size))
    todo, short = [], False
    planned = 0
    for f in wanted:
        have = incoming / f.rel
        need = f.size - (have.stat().st_size if have.exists() else 0)
        if not _fits(dr, reserve, planned + max(need, 0)):
            short = True
            break
        planned += max(need, 0)
        todo.append(f)
    if short:
        summary.notes.append(f"{collector.name}: stopped: the next report does not fit above the "
                             f"{cfg.sync.reserve_mb} MB reserve on {dr.root} ({len(wanted) - len(todo)} left)")
    if not todo:
        return not short
    complaint = remote.pull([f.rel for f in todo], incoming)
    sums = remote.sha256([f.rel for f in todo])
    verified: dict[str, str] = {}
    batch = []
    for f in todo:
        local = incoming / f.rel
        source = f"{collector.name}:{f.rel}"
        if not local.is_file():
            if complaint:  # rsync said it could not pull some files: this file's failure
                failures.handle(fails, summary, source, "not_pulled", f"{source}: not pulled: {complaint}",
                                lambda previous, f=f: set_aside_remote(dr, collector.name, f.rel, previous,
                                                                       complaint, summary))
            else:
                summary.notes.append(f"{collector.name}: {f.rel} was not pulled (gone from the collector?)")
            continue
        fails.clear(source)
        sha = digest.sha256_file(local)
        if sums.get(f.rel) != sha or local.stat().st_size != f.size:
            summary.count("changed")
            summary.notes.append(f"{collector.name}: {f.rel} changed since it was listed; left for the next run")
            atomic.remove(local)
            continue
        _fsync(local)
        batch.append((f, local, sha))
    with lock.shared(dr, cfg.pipeline.lock_timeout):
        for f, local, sha in batch:
            target = raw_dir / f.rel
            n = 1
            while target.exists() and digest.sha256_file(target) != sha:
                n += 1
                target = raw_dir / f"{f.rel}.{n}"
            tx = journal.Transaction(STAGE, "pulled", f"{collector.name}:{f.rel}",
                                     info={"collector": collector.name, "remote": f.rel})
            if target.exists():
                tx.outcome = "duplicate"
                tx.remove(local)
            else:
                tx.rename(local, target, sha, f.size)
            journal.run(dr, tx)
            verified[f.rel] = sha
            summary.count("pulled" if tx.outcome == "pulled" else "duplicate")
            summary.bytes_in += f.size
            pull.pulled += tx.outcome == "pulled"
            pull.bytes += f.size
    removed = remote.remove_if_unchanged(verified)
    pull.left -= len(removed)
    if removed:
        journal.append(dr, {"time": journal.now(), "op": "note", "stage": STAGE, "event": "removed_from_collector",
                            "collector": collector.name, "files": removed})
    if removed:
        summary.count("removed_from_collector", len(removed))
    return not short


def run(cfg, dr: DataRoot) -> Summary:
    with stage.running(cfg, dr, STAGE) as summary, tempfile.TemporaryDirectory(prefix="sync-") as tmp:
        fails = failures.Failures.load(dr, STAGE)
        for collector in cfg.collectors:
            pull = CollectorPull(collector.name)
            summary.collectors.append(pull)
            try:
                if not sync_collector(cfg, dr, collector, summary, Path(tmp), fails, pull):
                    summary.errors.append(summary.notes[-1])
                    break  # the disk is short: no other collector fits either
            except CommandError as exc:
                pull.error = (f"{exc.argv[0]} failed (exit {exc.returncode}): "
                              f"{exc.stderr_tail.strip()[-300:]}")
                summary.errors.append(f"{collector.name}: {pull.error}")
            finally:
                fails.save()
    with contextlib.suppress(OSError):
        for d in (dr.state("raw") / ".incoming").glob("*/.rsync-partial"):
            if not any(d.iterdir()):
                d.rmdir()
    return summary


def main(argv=None) -> int:
    return cli_main(STAGE, "pull closed reports from the collectors into raw/", run, argv)


if __name__ == "__main__":
    sys.exit(main())
