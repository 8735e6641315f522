"""The off-site copy: whole snapshot sets copied (`restic copy`) from the primary repository into a second
one, served by an append-only rest-server on another host.

Only complete sets are copied, and a set's manifest only after its other parts (files, physical copy, dump) are there,
so an interrupted copy leaves an incomplete set off-site, never a complete one that lacks a part. restic copy
itself skips snapshots the destination already has; the rest-server's append-only mode means the Aggregator
can add sets but never delete or overwrite one (a compromised Aggregator cannot destroy the off-site copy).
"""

from __future__ import annotations

from common import log
from snapshots import sets
from snapshots.restic import Restic, ResticError

_log = log.get("offsite")


def copy(primary: Restic, offsite: Restic) -> dict:
    """Copy every complete primary set the off-site repository lacks (or holds only in part)."""
    source = {sid: parts for sid, parts in sets.grouped(primary).items() if sets.is_complete(parts)}
    there = sets.grouped(offsite)
    todo = {sid: parts for sid, parts in source.items() if not sets.is_complete(there.get(sid, {}))}

    def copy_ids(ids: list[str]) -> None:
        if ids:
            offsite.run("copy", "--from-repo", primary.repository, "--from-password-file", primary.password_file,
                        *ids)

    copy_ids([parts[k]["id"] for sid, parts in sorted(todo.items())
              for k in sets.DATA_KINDS if k in parts and k not in there.get(sid, {})])
    copy_ids([parts["manifest"]["id"] for sid, parts in sorted(todo.items())])
    after = sets.grouped(offsite)
    missing = sorted(sid for sid in todo if not sets.is_complete(after.get(sid, {})))
    if missing:
        raise ResticError(f"after the copy, these sets are still not complete off-site: {', '.join(missing)}")
    return {"copied": sorted(todo, reverse=True), "already_offsite": sorted(set(source) - set(todo), reverse=True),
            "offsite_complete_sets": sum(1 for parts in after.values() if sets.is_complete(parts)),
            "repository": offsite.repository}
