"""Quarantine: rejected input goes to quarantine/<reason>/ with a `<name>.reason.json` beside it (reason,
error, line, source, versions). Quarantine is private: never published, kept for a later re-run."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

from common import atomic, digest
from stages import journal
from stages.layout import DataRoot


def free_path(path: Path, sha256: str | None) -> tuple[Path, bool]:
    """A path for a file: itself if free, (itself, True) if it holds identical content, else path.N.
    Only regular files are ever read to compare (sha256 None: never the same)."""
    candidate, n = path, 1
    while os.path.lexists(candidate):
        if sha256 is not None and _regular(candidate) and digest.sha256_file(candidate) == sha256:
            return candidate, True
        n += 1
        candidate = path.with_name(f"{path.name}.{n}")
    return candidate, False


NOT_REGULAR = "not_a_regular_file"


def node(dr: DataRoot, stage: str, path: Path, kind: str, summary, details: dict | None = None) -> None:
    """Something where inputs wait that is not a regular file (a link, FIFO, socket, device, or a file with
    more than one name): moved to quarantine/not_a_regular_file/ as it is, in a journal transaction of its
    own, never opened; the summary names it."""
    rel = dr.relative(path)
    tx = journal.Transaction(stage, "quarantined", rel)
    error = f"{rel} is a {kind}; stages read only regular files inside the data root"
    target, _ = add(tx, dr, path, path.name, None, 0, NOT_REGULAR,
                    {"error": error, "kind": kind, "source": rel, **(details or {})})
    journal.run(dr, tx)
    summary.quarantine(rel, NOT_REGULAR, error, dr.relative(target))


def _regular(path: Path) -> bool:
    return stat.S_ISREG(os.lstat(path).st_mode)


def add(tx: journal.Transaction, dr: DataRoot, src: Path, name: str, sha256: str | None, size: int,
        reason: str, details: dict) -> tuple[Path, bool]:
    """Add the steps that put src in quarantine/<reason>/<name> with its reason file to a transaction.
    Returns (target, already there). When identical content is already quarantined, src is removed
    unless it is the transaction's input (the caller removes inputs). sha256 None: src is not a regular
    file and is moved as it is, never opened."""
    target, same = free_path(dr.state("quarantine") / reason / name, sha256)
    sidecar = target.with_name(target.name + ".reason.json")
    body = (json.dumps({"reason": reason, **details, "time": journal.now()}, indent=2) + "\n").encode()
    side_tmp = atomic.temp_path(sidecar)
    with atomic.writing(side_tmp) as fh:
        fh.write(body)
    tx.rename(side_tmp, sidecar, hashlib.sha256(body).hexdigest(), len(body))
    if sha256 is None:
        tx.move(src, target)
    elif not same:
        tx.rename(src, target, sha256, size)
    return target, same
