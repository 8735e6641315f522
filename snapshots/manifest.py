"""The manifest of a snapshot set: what the set must restore to.

Per state directory: files, reports, bytes and a digest = sha256 over the sorted lines
"<relative path>\\t<size>\\t<sha256>\\n" of every file the file snapshot holds there. Per database
collection: the document count of the dump. Plus the journal position, times and the paused seconds.
The same function computes the digest of a restored folder, so verification is one comparison.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import stat
import tarfile
from pathlib import Path
from typing import BinaryIO

from common import atomic
from common.digest import sha256_file
from stages.layout import STATE_DIRS

FORMAT = 1
# What the file snapshot leaves out: in-flight temporaries (a name pattern matched anywhere), and, relative to
# the data root, unverified pulls, lock files, the release lists waiting for sync (host state,
# snapshots/release.py) and a set's cut (snapshots/cut.py).
TEMPORARY = ".*.tmp-*"
AT_ROOT = ("raw/.incoming", ".lock", ".lock-*", "releases", ".cut")
EXCLUDES = (TEMPORARY, *AT_ROOT)


def restic_excludes(root: Path | str) -> list[str]:
    """EXCLUDES as `restic backup` arguments for a data root at root."""
    patterns = [TEMPORARY] + [f"{root}/{p}" for p in AT_ROOT]
    return [a for pattern in patterns for a in ("--exclude", pattern)]
SIDECARS = (".jsonl", ".reason.json")


def backed_up(rel: str) -> bool:
    """Whether the files snapshot holds the path rel (relative to the data root): EXCLUDES as restic reads them."""
    return not skipped(rel) and not any(fnmatch.fnmatchcase(rel, p) or rel.startswith(p + "/") for p in AT_ROOT)


def skipped(rel: str) -> bool:
    """Whether a path under the data root is left out of the manifest (and of the files snapshot): a
    temporary, or an unverified pull in raw/.incoming."""
    name = rel.rsplit("/", 1)[-1]
    return atomic.is_temporary(Path(name)) or rel.startswith("raw/.incoming/") or rel == "raw/.incoming"


class _Tally:
    """Counts, bytes and the digest of one state directory, fed one file at a time in any order."""

    def __init__(self):
        self.lines: list[str] = []
        self.files = self.reports = self.bytes = 0

    def add(self, rel: str, size: int, sha256: str) -> None:
        self.lines.append(f"{rel}\t{size}\t{sha256}\n")
        self.files += 1
        self.bytes += size
        name = rel.rsplit("/", 1)[-1]
        if not name.endswith(SIDECARS) and not name.startswith("."):
            self.reports += 1

    def summary(self) -> dict:
        digest = hashlib.sha256("".join(sorted(self.lines)).encode()).hexdigest()
        return {"files": self.files, "reports": self.reports, "bytes": self.bytes, "digest": digest}


class Digests:
    """The sha256 of the data root's files from the last set, by path and the metadata restic's own change
    detection reads with --ignore-ctime (size, mtime, inode; and the device): a file whose metadata is unchanged
    is not read again. restic makes the same judgement for the file snapshot (an unchanged file is not read
    again), so the manifest and the snapshot agree. The change time is left out by both: a set's cut (a second
    name, snapshots/cut.py) changes it, and the pipeline never changes a file in place. Kept as one JSON file in the restic cache folder, written whole (atomically) after each set; a
    missing or unreadable one only means every file is read. Restores never use it: they read every file."""

    def __init__(self, path: Path | None = None):
        self.path = path
        self.known: dict = {}
        self.seen: dict[str, list] = {}
        self.read = 0  # files read (not found unchanged)
        self.read_bytes = 0
        if path is not None:
            try:
                loaded = json.loads(path.read_text())
                self.known = loaded if isinstance(loaded, dict) else {}
            except (OSError, ValueError):
                pass

    def sha256(self, path: Path, rel: str, st: os.stat_result) -> str:
        key = [st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev]
        known = self.known.get(rel)
        if isinstance(known, list) and len(known) == 5 and known[:4] == key and isinstance(known[4], str):
            digest = known[4]
        else:
            digest = sha256_file(path)
            self.read += 1
            self.read_bytes += st.st_size
        self.seen[rel] = [*key, digest]
        return digest

    def save(self) -> None:
        """Keep what this walk saw (files gone since are dropped)."""
        if self.path is not None:
            atomic.write_bytes(self.path, json.dumps(self.seen, separators=(",", ":")).encode())


def directory_summary(root: Path, state: str, digests: Digests | None = None) -> dict:
    tally = _Tally()
    for dirpath, dirs, names in os.walk(root / state):
        rel_dir = os.path.relpath(dirpath, root)
        dirs[:] = sorted(d for d in dirs if not skipped(f"{rel_dir}/{d}"))
        for name in sorted(names):
            rel = f"{rel_dir}/{name}"
            if not skipped(rel):
                p = Path(dirpath) / name
                st = os.lstat(p)
                if stat.S_ISREG(st.st_mode):  # a link, FIFO or device is never opened (the tar side skips them too)
                    tally.add(rel, st.st_size, digests.sha256(p, rel, st) if digests else sha256_file(p))
    return tally.summary()


def directories(root: Path, digests: Digests | None = None) -> dict:
    """Every state directory's summary; with digests, files unchanged since they were last seen are not
    read again (taking a set), without, every file is read (verifying a restore)."""
    return {state: directory_summary(root, state, digests) for state in STATE_DIRS}


def tar_files(stream: BinaryIO, prefix: str):
    """(path under prefix, size, content stream) of every regular file of a tar stream (`restic dump -a
    tar`) whose members are named `<prefix>/...`, read as it streams past: nothing is written."""
    prefix = prefix.strip("/") + "/"
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            if member.isfile() and member.name.startswith(prefix):
                yield member.name[len(prefix):], member.size, tar.extractfile(member)


def directories_from_tar(stream: BinaryIO, prefix: str) -> dict:
    """The same summary as directories(), computed from a tar stream whose members are named
    `<prefix>/<state>/...`: the content is hashed as it streams past, nothing is written."""
    tallies = {state: _Tally() for state in STATE_DIRS}
    for rel, size, fh in tar_files(stream, prefix):
        state = rel.split("/", 1)[0]
        if state in tallies and not skipped(rel):
            tallies[state].add(rel, size, hashlib.file_digest(fh, "sha256").hexdigest())
    return {state: t.summary() for state, t in tallies.items()}


def compare(expected: dict, actual: dict) -> list[str]:
    """Differences between a manifest's directories/collections and what is actually there."""
    problems = []
    for state, want in expected.get("directories", {}).items():
        have = actual.get("directories", {}).get(state)
        if have is None:
            problems.append(f"{state}/: missing")
            continue
        for key in ("files", "bytes", "digest"):
            if want[key] != have[key]:
                problems.append(f"{state}/: {key} is {have[key]}, the manifest says {want[key]}")
    want_db = expected.get("database", {}).get("collections", {})
    have_db = actual.get("database", {}).get("collections")
    if have_db is not None:
        for coll, n in want_db.items():
            if have_db.get(coll, 0) != n:
                problems.append(f"database {coll}: {have_db.get(coll, 0)} documents, the manifest says {n}")
    want_tally = expected.get("database", {}).get("reports_by_test_country")
    have_tally = actual.get("database", {}).get("reports_by_test_country")
    if want_tally is not None and have_tally is not None:
        for key in sorted(set(want_tally) | set(have_tally)):
            want, have = want_tally.get(key, [0, 0]), have_tally.get(key, [0, 0])
            if list(want) != list(have):
                problems.append(f"reports of {key}: {have[0]} reports with {have[1]} measurements, the manifest "
                                f"says {want[0]} with {want[1]}")
    return problems


REPORTS = "reports"  # the collection with one document per report: test_name, probe_cc, entries


def tally_report(tally: dict, doc) -> None:
    """Add one report document to the per test_name/country tally: {"<test_name> <cc>": [reports, entries]}."""
    key = f"{doc.get('test_name')} {doc.get('probe_cc')}"
    row = tally.setdefault(key, [0, 0])
    row[0] += 1
    row[1] += int(doc.get("entries") or 0)


def report_tally(db) -> dict:
    """The same tally read from a database (one pass over the reports collection: one small document per
    report; FerretDB 1.x's $group does not sum these fields reliably, so the sums are made here)."""
    tally: dict = {}
    for doc in db[REPORTS].find({}, {"test_name": 1, "probe_cc": 1, "entries": 1}):
        tally_report(tally, doc)
    return tally
