"""The manifest of a snapshot set: what the set must restore to.

Per state directory: files, reports, bytes and a digest = sha256 over the sorted lines
"<relative path>\\t<size>\\t<sha256>\\n" of every file the file snapshot holds there. Per database
collection: the document count of the dump. Plus the journal position, times and the paused seconds.
The same function computes the digest of a restored folder, so verification is one comparison.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from dr.digest import sha256_file
from stages import atomic
from stages.layout import STATE_DIRS

FORMAT = 1
# What the file snapshot leaves out: in-flight temporaries, unverified pulls, lock files.
EXCLUDES = (".*.tmp-*", "raw/.incoming", ".lock", ".lock-*")
SIDECARS = (".jsonl", ".reason.json")


def _skipped(rel: str) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return atomic.is_temporary(Path(name)) or rel.startswith("raw/.incoming/") or rel == "raw/.incoming"


def directory_summary(root: Path, state: str) -> dict:
    base = root / state
    lines = []
    files = reports = size = 0
    for dirpath, dirs, names in os.walk(base):
        rel_dir = os.path.relpath(dirpath, root)
        dirs[:] = sorted(d for d in dirs if not _skipped(f"{rel_dir}/{d}"))
        for name in sorted(names):
            rel = f"{rel_dir}/{name}"
            if _skipped(rel):
                continue
            p = Path(dirpath) / name
            st = p.stat()
            lines.append(f"{rel}\t{st.st_size}\t{sha256_file(p)}\n")
            files += 1
            size += st.st_size
            if not name.endswith(SIDECARS) and not name.startswith("."):
                reports += 1
    digest = hashlib.sha256("".join(sorted(lines)).encode()).hexdigest()
    return {"files": files, "reports": reports, "bytes": size, "digest": digest}


def directories(root: Path) -> dict:
    return {state: directory_summary(root, state) for state in STATE_DIRS}


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
    return problems
