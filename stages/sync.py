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
5. fsync, then move each verified file into raw/<collector>/ in a journal transaction (its info: collector,
   remote, sha256 and, unless [sync] release is "pulled", held_as: its name in the collector's .pulled/);
6. only then, and only if its sha256 there still matches: [sync] release "pulled": delete it on the collector;
   else move it there into `<archive>/.pulled/<held_as>` (a dot-folder: never listed again), where it stays
   until `--release` deletes it (a name already held there: `<name>.<n>`).
Each run also counts what each collector holds in .pulled/ (one find, with the listing), and catches up: a file
held there that this data root's journal does not know (no pull of that collector held under that name, with
its size and modification second) was pulled by a data root that is lost (this one was restored from an older
snapshot set); it is pulled again from .pulled/ (steps 3-5; it stays held there) into raw/<collector>/<name
held under>, and sanitize's duplicate detection keeps a report that the restored set does hold from counting
twice. With release "pulled", what an earlier mode left held there that the journal knows (verified here at its
pull) is deleted like a new pull.

The subscriber (stages/subscribe.py) pulls through the same sync_collector, asking for the files its messages
name (Asked) instead of the whole listing, under this stage's lock and journalled as this stage's pulls.

`--release`: for each collector, delete from .pulled/ exactly the files the release lists (stages/release.py)
accepted by the release mode name with the same sha256; delete each list once it is done.
The collector's host key is pinned from the configuration (StrictHostKeyChecking, no other known_hosts).

    python -m stages.sync --data-root DIR [--config FILE] [--json] [--release]
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import shlex
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from common import atomic, digest, runner
from common.errors import CommandError
from common.paths import safe_name
from stages import failures, journal, lock, release, stage
from stages.cli import CollectorPull, Summary
from stages.cli import main as cli_main
from stages.layout import DataRoot

STAGE = "sync"
PARTIAL_TRANSFER = (23, 24)  # rsync: some files could not be transferred / vanished during the transfer
PULLED = ".pulled"  # on a collector, in its archive folder: pulled reports held until a release deletes them


def release_mode(cfg) -> str:
    """[sync] release resolved: "pulled", "set" or "offsite" ("auto": offsite when an off-site repository is
    configured, else set)."""
    mode = cfg.sync.release
    if mode == "auto":
        return "offsite" if cfg.offsite.repository else "set"
    return mode


@dataclass(frozen=True)
class RemoteFile:
    rel: str  # under the collector's archive folder
    size: int
    held_as: str | None = None  # a file pulled again from .pulled/ (catching up): its name there


Known = dict[tuple[str, str], list[tuple[int | None, int | None, str | None]]]


def known_held(dr: DataRoot) -> Known:
    """{(collector, name held under): [(size, modification second, sha256) of each pull held under it]} from this
    data root's committed sync transactions (None where an older entry did not record it)."""
    known: Known = {}
    for _, entry in journal.committed(dr, stage=STAGE):
        remember(known, entry)
    return known


def remember(known: Known, entry: dict) -> None:
    """Add one committed sync entry (journal.committed's) to known, when it is a pull held under a name."""
    info = entry.get("info") or {}
    if entry.get("op") == "begin" and info.get("collector") and info.get("held_as"):
        known.setdefault((info["collector"], info["held_as"]), []).append(
            (info.get("size"), info.get("mtime"), info.get("sha256")))


def _known_as(known: Known, collector: str, name: str, size: int, mtime: float) -> list[str | None]:
    """The sha256 of each known pull of the collector held under name with that size and modification second."""
    return [sha for s, m, sha in known.get((collector, name), [])
            if (s is None or s == size) and (m is None or m == int(mtime))]


def lost_pulls(known: Known, collector: str, held: dict[str, tuple[int, float]]) -> list[str]:
    """The names in a collector's .pulled/ ({name: (size, mtime)}) that no known pull of it was held under with
    that size and modification second: pulled by a data root that is lost. Pure."""
    return sorted(name for name, (size, mtime) in held.items() if not _known_as(known, collector, name, size, mtime))


def known_pulls(known: Known, collector: str, held: dict[str, tuple[int, float]]) -> dict[str, str]:
    """{name in .pulled/: sha256} of the collector's held files that a known pull was held under (the last such
    pull's sha256, when recorded): verified here at their pull, so release "pulled" deletes them. Pure."""
    out = {}
    for name, (size, mtime) in held.items():
        shas = [sha for sha in _known_as(known, collector, name, size, mtime) if sha]
        if shas:
            out[name] = shas[-1]
    return out


# What became of a file a caller asked for (Asked): in raw/ now (durable, journalled) ...
DONE = ("pulled", "duplicate")
# ... never, whatever is tried again: not on the collector, other bytes there, a name sync refuses, set aside ...
REFUSED = ("missing", "other_bytes", "unsafe_name", "poison")
# ... or not this time: it may be on a later try (the disk short of its reserve, the file changed while it was
# pulled, rsync could not pull it, the collector not reached).
LATER = ("short", "changed", "not_pulled", "unreached")


@dataclass
class Asked:
    """The files a caller asks sync_collector for, instead of the collector's whole listing (the subscriber: one
    per message): {path under the archive folder: (size, sha256) expected}; then what became of each:
    {path: (one of DONE, REFUSED or LATER, why)}. A file asked for is pulled only when it is on the collector
    with that size and sha256."""
    files: dict[str, tuple[int, str]]
    outcome: dict[str, tuple[str, str]] = field(default_factory=dict)

    def tell(self, rel: str, outcome: str, why: str = "") -> None:
        self.outcome[rel] = (outcome, why)

    def narrow(self, listing: list[tuple[str, int]]) -> list[tuple[str, int]]:
        """The listing's entries asked for; the files asked for that are not there, or have another size,
        told so. Pure."""
        sizes = dict(listing)
        kept = []
        for rel, (size, _) in self.files.items():
            if rel not in sizes:
                self.tell(rel, "missing", "not on the collector (nor ever pulled from it)")
            elif sizes[rel] != size:
                self.tell(rel, "other_bytes", f"{sizes[rel]} bytes on the collector, not {size}")
            else:
                kept.append((rel, size))
        return kept


@dataclass
class Survey:
    """What a collector has now: its closed reports (name, size), and what it holds in .pulled/ (name under
    .pulled/ -> size, modification time)."""
    listing: list[tuple[str, int]]
    held: dict[str, tuple[int, float]]

    def tell(self, pull: CollectorPull) -> None:
        pull.reached, pull.listed, pull.left = True, len(self.listing), len(self.listing)
        self.tell_held(pull)

    def tell_held(self, pull: CollectorPull) -> None:
        pull.held, pull.held_bytes = len(self.held), sum(size for size, _ in self.held.values())
        pull.oldest_held = utc(min((t for _, t in self.held.values()), default=None))


def utc(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def held_name(rel: str, held: set[str]) -> str:
    """The name rel gets in .pulled/, where held are the names taken: rel itself when free, else rel.<n> (the
    collector reused a name); when a folder of rel is a file there, that folder becomes <folder>.<n>."""
    def files_and_folders(names):
        return set(names) | {n.rsplit("/", i)[0] for n in names for i in range(1, n.count("/") + 1)}

    taken = files_and_folders(held)
    parts = rel.split("/")
    clash = next((i for i in range(1, len(parts)) if "/".join(parts[:i]) in held), len(parts))
    n = 1
    name = rel
    while name in taken or any(f in held for f in files_and_folders([name]) - {name}):
        n += 1
        name = "/".join([*parts[:clash - 1], f"{parts[clash - 1]}.{n}", *parts[clash:]])
    return name


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

    SURVEY = (f"find . -path '*/.*' -prune -o -type f -printf 'L\\t%s\\t%P\\0' && "
              f"{{ [ ! -d {PULLED} ] || find {PULLED} -type f -printf 'H\\t%s\\t%T@\\t%P\\0'; }}")

    def survey(self) -> Survey:
        """The closed reports (dot-files and dot-folders, .pulled/ among them, are skipped) and .pulled/."""
        return self._records(self.run(f"cd {shlex.quote(self.c.archive_path)} && {self.SURVEY}"))[0]

    @staticmethod
    def _records(out: str) -> tuple[Survey, dict[str, list[tuple[str, str]]]]:
        """A survey's records (L: listed, H: held), and the others by tag ((sha256, name) each)."""
        survey, other = Survey([], {}), {}
        for item in out.split("\0"):
            tag, _, rest = item.partition("\t")
            if tag == "L":
                size, _, rel = rest.partition("\t")
                survey.listing.append((rel, int(size)))
            elif tag == "H":
                size, mtime, name = rest.split("\t", 2)
                survey.held[name] = (int(size), float(mtime))
            elif tag:
                sha, _, name = rest.partition("\t")
                other.setdefault(tag, []).append((name, sha))
        return survey, other

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

    def hold(self, verified: dict[str, tuple[str, str]]) -> list[str]:
        """Move each file rel -> (sha256, held_as) whose sha256 on the collector still matches into
        .pulled/<held_as> (a name not taken there: a rename, atomic); returns the names moved. Safe names
        only (no space, no newline). sync alone writes .pulled/, under its stage lock."""
        if not verified:
            return []
        archive = shlex.quote(self.c.archive_path)
        script = (f"cd {archive} && while IFS=' ' read -r sum name held; do t={PULLED}/$held; "
                  "[ -f \"$name\" ] && [ ! -e \"$t\" ] && [ ! -L \"$t\" ] "
                  "&& [ \"$(sha256sum < \"$name\" | cut -d' ' -f1)\" = \"$sum\" ] "
                  "&& mkdir -p -- \"$(dirname -- \"$t\")\" && mv -- \"$name\" \"$t\" && printf '%s\\n' \"$name\"; "
                  "done; true")
        with tempfile.TemporaryFile() as fh:
            fh.write("".join(f"{sha} {rel} {held}\n" for rel, (sha, held) in verified.items()).encode())
            fh.seek(0)
            out = self.run(script, stdin=fh)
        return [line for line in out.splitlines() if line]

    def release(self, files: list[tuple[str, str]]) -> tuple[dict[str, set[tuple[str, str]]], Survey]:
        """Delete each .pulled/<name> whose sha256 is the one given ((name, sha256), safe names only), then
        survey, in one session. Returns ({"removed": ..., "gone": already not there, "kept": there with other
        bytes}, the survey after)."""
        archive = shlex.quote(self.c.archive_path)
        script = (f"cd {archive} && {{ while IFS=' ' read -r sum name; do t={PULLED}/$name; "
                  "if [ ! -e \"$t\" ] && [ ! -L \"$t\" ]; then printf 'gone\\t%s\\t%s\\0' \"$sum\" \"$name\"; "
                  "elif [ -f \"$t\" ] && [ \"$(sha256sum < \"$t\" | cut -d' ' -f1)\" = \"$sum\" ] && rm -f -- \"$t\"; "
                  "then printf 'removed\\t%s\\t%s\\0' \"$sum\" \"$name\"; "
                  "else printf 'kept\\t%s\\t%s\\0' \"$sum\" \"$name\"; fi; done; "
                  f"find {PULLED} -depth -mindepth 1 -type d -empty -delete 2>/dev/null; true; }} && {self.SURVEY}")
        with tempfile.TemporaryFile() as fh:
            fh.write("".join(f"{sha} {name}\n" for name, sha in files).encode())
            fh.seek(0)
            survey, other = self._records(self.run(script, stdin=fh))
        return {k: set(other.get(k, [])) for k in ("removed", "gone", "kept")}, survey


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
                   fails: failures.Failures, pull: CollectorPull, known: Known, asked: Asked | None = None) -> bool:
    """Pull one collector (and what it holds that known, this data root's pulls, lacks), telling pull what it
    found there and did. Returns False when it stopped short of the free-space reserve. asked: only the files it
    names (nothing caught up), each told what became of it."""
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
    survey = remote.survey()
    if asked is not None:
        survey.listing = asked.narrow(survey.listing)
    survey.tell(pull)
    lost = [] if asked is not None else lost_pulls(known, collector.name, survey.held)
    if lost:
        summary.notes.append(f"{collector.name}: {len(lost)} report(s) held in {PULLED}/ that this data root does "
                             "not know (pulled by a lost one?): pulled again")
    candidates = [(f"{PULLED}/{name}", survey.held[name][0], name) for name in lost]
    wanted: list[RemoteFile] = []
    for rel, size, held_as in candidates + [(rel, size, None) for rel, size in survey.listing]:
        if not safe_name(held_as or rel):
            summary.count("refused:unsafe_name")
            summary.notes.append(f"{collector.name}: refused unsafe name {rel!r}")
            if asked is not None:
                asked.tell(rel, "unsafe_name", "a name sync refuses")
            continue
        if poison_note(dr, collector.name, rel).exists():
            summary.count("skipped:poison")
            if asked is not None:
                asked.tell(rel, "poison", f"set aside as poison ({dr.relative(poison_note(dr, collector.name, rel))})")
            continue
        wanted.append(RemoteFile(rel, size, held_as))
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
        for f in wanted[len(todo):]:
            if asked is not None:
                asked.tell(f.rel, "short", f"does not fit above the {cfg.sync.reserve_mb} MB reserve")
    if not todo:
        return not short
    complaint = remote.pull([f.rel for f in todo], incoming)
    sums = remote.sha256([f.rel for f in todo])
    batch = []
    for f in todo:
        local = incoming / f.rel
        source = f"{collector.name}:{f.rel}"
        if not local.is_file():
            if asked is not None:
                asked.tell(f.rel, "not_pulled", complaint or "not pulled (gone from the collector?)")
            if complaint:  # rsync said it could not pull some files: this file's failure
                failures.handle(fails, summary, source, "not_pulled", f"{source}: not pulled: {complaint}",
                                lambda previous, f=f: set_aside_remote(dr, collector.name, f.rel, previous,
                                                                       complaint, summary))
            else:
                summary.notes.append(f"{collector.name}: {f.rel} was not pulled (gone from the collector?)")
            continue
        fails.clear(source)
        sha = digest.sha256_file(local)
        expected = None if asked is None else asked.files[f.rel][1]
        if expected is not None and sums.get(f.rel, expected) != expected:
            asked.tell(f.rel, "other_bytes", f"sha256 {sums[f.rel]} on the collector, not {expected}")
            atomic.remove(local)
            continue
        if sums.get(f.rel) != sha or local.stat().st_size != f.size:
            if asked is not None:
                asked.tell(f.rel, "changed", "changed while it was pulled")
            summary.count("changed")
            summary.notes.append(f"{collector.name}: {f.rel} changed since it was listed; left for the next run")
            atomic.remove(local)
            continue
        _fsync(local)
        batch.append((f, local, sha))
    holding = release_mode(cfg) != "pulled"
    taken = set(survey.held)
    verified: dict[str, tuple[str, str]] = {}  # rel -> (sha256, its name in .pulled/)
    mtimes: dict[str, float] = {}
    with lock.shared(dr, cfg.pipeline.lock_timeout):
        for f, local, sha in batch:
            name = f.held_as or f.rel
            target = raw_dir / name
            n = 1
            while target.exists() and digest.sha256_file(target) != sha:
                n += 1
                target = raw_dir / f"{name}.{n}"
            mtimes[f.rel] = local.stat().st_mtime  # the collector's (rsync --times), which a move there keeps
            info = {"collector": collector.name, "remote": f.rel, "sha256": sha, "size": f.size,
                    "mtime": int(mtimes[f.rel])}
            if f.held_as:
                info.update(held_as=f.held_as, caught_up=True)
            elif holding:
                info["held_as"] = held_name(f.rel, taken)
                taken.add(info["held_as"])
            tx = journal.Transaction(STAGE, "pulled", f"{collector.name}:{f.rel}", info=info)
            if target.exists():
                tx.outcome = "duplicate"
                tx.remove(local)
            else:
                tx.rename(local, target, sha, f.size)
            journal.run(dr, tx)
            if asked is not None:
                asked.tell(f.rel, tx.outcome)
            summary.count("pulled" if tx.outcome == "pulled" else "duplicate")
            summary.bytes_in += f.size
            pull.pulled += tx.outcome == "pulled"
            pull.bytes += f.size
            if f.held_as:
                summary.count("caught_up")
                if holding:
                    continue  # it stays held where it is
            verified[f.rel] = (sha, info.get("held_as", f.rel))
    if holding:
        moved = remote.hold(verified)
        pull.left -= len(moved)
        if moved:
            journal.append(dr, {"time": journal.now(), "op": "note", "stage": STAGE, "event": "held_on_collector",
                                "collector": collector.name, "files": moved,
                                "held_as": {rel: verified[rel][1] for rel in moved}})
            summary.count("held_on_collector", len(moved))
        sizes = {f.rel: f.size for f, _, _ in batch}
        survey.held.update({verified[rel][1]: (sizes[rel], mtimes[rel]) for rel in moved})
        survey.tell_held(pull)
    else:  # and what an earlier release mode left held that this data root pulled (verified then)
        stale = {f"{PULLED}/{name}": sha for name, sha in known_pulls(known, collector.name, survey.held).items()}
        removed = remote.remove_if_unchanged({**stale, **{rel: sha for rel, (sha, _) in verified.items()}})
        pull.left -= sum(not rel.startswith(PULLED + "/") for rel in removed)
        for rel in removed:
            survey.held.pop(rel.removeprefix(PULLED + "/") if rel.startswith(PULLED + "/") else None, None)
        survey.tell_held(pull)
        if removed:
            journal.append(dr, {"time": journal.now(), "op": "note", "stage": STAGE,
                                "event": "removed_from_collector", "collector": collector.name, "files": removed})
            summary.count("removed_from_collector", len(removed))
    return not short


def run(cfg, dr: DataRoot) -> Summary:
    with stage.running(cfg, dr, STAGE) as summary, tempfile.TemporaryDirectory(prefix="sync-") as tmp:
        fails = failures.Failures.load(dr, STAGE)
        known = known_held(dr)
        for collector in cfg.collectors:
            pull = CollectorPull(collector.name)
            summary.collectors.append(pull)
            try:
                if not sync_collector(cfg, dr, collector, summary, Path(tmp), fails, pull, known):
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


def release_collector(remote: Remote, lists: list[release.ReleaseList], files: list[tuple[str, str]],
                      dr: DataRoot, summary: Summary, pull: CollectorPull) -> set[tuple[str, str]]:
    """Delete from one collector's .pulled/ the files (name, sha256) the lists name there that still hold those
    bytes, in one session, and tell pull what it holds after. Returns the files whose name is no longer there."""
    name = remote.c.name
    unsafe = [f for f in files if not safe_name(f[0])]
    for rel, _ in unsafe:
        summary.errors.append(f"{name}: a release list names the unsafe name {rel!r}; the list is kept")
    outcome, survey = remote.release([f for f in files if f not in unsafe])
    survey.tell(pull)
    removed = outcome["removed"]
    for lst in lists:
        done = release.released(lst, name, removed)
        if done:
            journal.append(dr, {"time": journal.now(), "op": "note", "stage": STAGE, "event": "released",
                                "collector": name, "set": lst.set_id, "files": done})
    if removed:
        summary.count("released", len(removed))
    for rel, _ in sorted(f for f in outcome["kept"] if f[0] in survey.held):
        summary.count("kept:other_bytes")
        summary.notes.append(f"{name}: {PULLED}/{rel} is not the report a release list names (another sha256); "
                             "kept, and so is the list")
    return {f for f in files if f not in unsafe and f[0] not in survey.held}


def run_release(cfg, dr: DataRoot) -> Summary:
    """`--release`: delete from each collector's .pulled/ the reports the release lists accepted by the release
    mode name (each only while its sha256 there matches), then delete each list that is done: every collector
    it names reached and none of its files left there. A collector not reached is named in the summary's errors
    and released on a later run. Every collector is reached, for what it holds."""
    mode = release_mode(cfg)
    with stage.running(cfg, dr, STAGE) as summary, tempfile.TemporaryDirectory(prefix="sync-") as tmp:
        lists, problems = release.read(dr, mode)
        summary.errors += problems
        wanted = release.wanted(lists)
        configured = {c.name for c in cfg.collectors}
        for name in sorted(set(wanted) - configured):
            summary.errors.append(f"release lists name the collector {name!r}, which is not configured; they are kept")
        gone: dict[str, set[tuple[str, str]]] = {}
        for collector in cfg.collectors:
            pull = CollectorPull(collector.name)
            summary.collectors.append(pull)
            try:
                gone[collector.name] = release_collector(Remote(collector, cfg.sync.ssh_timeout, Path(tmp)), lists,
                                                         wanted.get(collector.name, []), dr, summary, pull)
            except CommandError as exc:
                pull.error = f"{exc.argv[0]} failed (exit {exc.returncode}): {exc.stderr_tail.strip()[-300:]}"
                summary.errors.append(f"{collector.name}: {pull.error}; released on a later run")
        for lst in lists:
            if release.done(lst, gone):
                atomic.remove(lst.path)
                summary.count("release_list_done")
    return summary


def main(argv=None) -> int:
    return cli_main(STAGE, "pull closed reports from the collectors into raw/", run, argv,
                    modes={"--release": ("delete from the collectors' .pulled/ the reports the release lists in "
                                         "<data_root>/releases/ name (a verified snapshot set holds them), and "
                                         "only that", run_release)})


if __name__ == "__main__":
    sys.exit(main())
