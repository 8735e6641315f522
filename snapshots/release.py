"""Release lists (issue 22): the reports pulled from the collectors that a verified set holds, so that sync
lets the collectors' copies go (`python -m stages.sync --release`; docs/snapshots.md, docs/pipeline.md).

A report pulled by sync is a journal transaction (stage sync, outcome pulled or duplicate; info: collector,
remote, and the name it is held under in the collector's .pulled/ when it differs, held_as). Following the
journal up to the set's position (stages/journal.committed, the walk `invoke where` follows: a later move's
source is an earlier move's destination) says where the report's bytes were when the set was taken:
raw/<collector>/... (as pulled), quarantine/<reason>/... (moved whole: the same sha256), originals/...
(sanitize's compressed copy of the original). The set holds those bytes when one of these paths is in its
files snapshot (restic ls): raw/ and quarantine/ with the size pulled, originals/ present. A report is held
when the set holds bytes with its sha256 (so a duplicate pull is held when the report it duplicates is).
Reports the journal says were released already (or removed at pull time, release "pulled") are left out.

Only a complete set counts, and only when its files snapshot verifies against its manifest (the same number
of files and bytes in raw/, originals/ and quarantine/); an off-site set only when it was taken from this
data root's journal (`take` notes each set in the journal, `set_taken`: a data root restored from an older
set has no note of a newer one, whose journal positions are another history's). The list is written
atomically as <data_root>/releases/<set>-<local|offsite>.json.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

from common import atomic
from common.errors import DrError
from snapshots import manifest, sets
from snapshots.restic import Restic, json_args, ls_args, snapshots_args
from stages import journal
from stages.layout import DataRoot
from stages.release import FORMAT, path  # the list's format and place: the reader's, one copy
from stages.where import MOVES

HOLDING = ("raw", "originals", "quarantine")  # where a report's original bytes can be in a set
SAME_BYTES = ("raw/", "quarantine/")  # places that hold them unchanged (checked by size); originals/ by presence
GONE = ("released", "removed_from_collector")  # sync's notes: these files are gone from the collector
SET_TAKEN = "set_taken"  # take's note: a set of this data root and its journal position


class ReleaseError(DrError):
    """No release list for this set: why (the set is fine; the next one tries again)."""


@dataclass(eq=False)  # compared and hashed by identity: each is one pull
class Pull:
    """One report pulled from a collector: the name it is held under there (in .pulled/), its sha256 and the
    places its bytes were in the data root ({path: size, None for originals/: present is enough})."""
    collector: str
    remote: str
    sha256: str
    places: dict[str, int | None] = field(default_factory=dict)
    gone: bool = False  # a later note says it is gone from the collector (released, or removed at pull time)


def _pull(entry: dict) -> Pull | None:
    """A sync transaction's pull (None when it names no collector, file or sha256); a pulled one's place."""
    info = entry.get("info") or {}
    renames = [s for s in entry["steps"] if s["op"] == "rename"]
    sha = info.get("sha256") or (renames[0]["sha256"] if renames else None)
    remote = info.get("held_as") or info.get("remote")
    if not (info.get("collector") and remote and sha):
        return None
    return Pull(info["collector"], remote, sha, {s["dst"]: s["size"] for s in renames})


def pulls(entries, position: int) -> list[Pull]:
    """The reports pulled before the journal position, with the places their bytes were at the position and
    whether a note says they are gone from their collector since, from the journal's (offset, entry) in order
    (journal.committed). Pure."""
    at: dict[str, list[tuple[Pull, int | None]]] = {}  # path -> the pulls whose bytes are there, and the size
    every: list[Pull] = []
    outstanding: dict[tuple[str, str], Pull] = {}  # (collector, name held under): the pull still there
    for offset, entry in entries:
        if entry.get("op") == "note":
            if entry.get("stage") == "sync" and entry.get("event") in GONE:
                for name in entry.get("files") or []:
                    gone = outstanding.pop((entry.get("collector"), name), None)
                    if gone is not None:
                        gone.gone = True
            continue
        if offset > position:
            continue
        if entry["stage"] == "sync" and entry["outcome"] in ("pulled", "duplicate"):
            pull = _pull(entry)
            if pull is not None:
                every.append(pull)
                before = outstanding.get((pull.collector, pull.remote))
                if before is not None:  # the name held under is this pull's now: the earlier one left it
                    before.gone = True
                outstanding[(pull.collector, pull.remote)] = pull
                for path, size in pull.places.items():
                    at.setdefault(path, []).append((pull, size))
            continue
        _follow(entry, at)
    for pull in every:
        pull.places = {}
    for path, there in at.items():
        for pull, size in there:
            pull.places[path] = size
    return every


def _follow(entry: dict, at: dict[str, list[tuple[Pull, int | None]]]) -> None:
    """One committed transaction of another stage: the pulls whose place it takes (a move's source, a removal)
    are where it puts them (a rename with the same sha256 into raw/ or quarantine/, anything into originals/,
    and sanitize's original), and only there; a place it overwrites holds none of the earlier pulls."""
    steps = entry["steps"]
    taken = [s["src"] for s in steps if s["op"] in MOVES] + [s["path"] for s in steps if s["op"] == "remove"]
    moving = list(dict.fromkeys(p for path in taken for p, _ in at.pop(path, [])))
    for s in steps:
        if s["op"] in MOVES:
            at.pop(s["dst"], None)
    for s in steps:
        dst = s.get("dst", "")
        if s["op"] not in MOVES or dst.endswith(".reason.json") or atomic.is_temporary(Path(dst)):
            continue
        for pull in moving:
            if dst.startswith("originals/"):
                at.setdefault(dst, []).append((pull, None))
            elif dst.startswith(SAME_BYTES) and s.get("sha256") == pull.sha256:
                at.setdefault(dst, []).append((pull, s["size"]))
    original = (entry.get("info") or {}).get("original")
    if moving and isinstance(original, str) and original.startswith("originals/"):
        there = at.setdefault(original, [])
        there += [(pull, None) for pull in moving if all(pull is not p for p, _ in there)]


def held(pulled: list[Pull], files: dict[str, int]) -> list[Pull]:
    """The pulls not gone from their collector whose bytes the files snapshot holds (files: {path: size}): one
    of their places is there (with its size), or a pull with the same sha256 has one there. Pure."""
    def holds(path: str, size: int | None) -> bool:
        return path in files and (size is None or files[path] == size)

    shas = {p.sha256 for p in pulled if any(holds(path, size) for path, size in p.places.items())}
    return [p for p in pulled if not p.gone and p.sha256 in shas]


class Listing:
    """A files snapshot's regular files as `restic ls --json` prints them, one line at a time (`add`): the
    snapshot's root (its one path) and {absolute path: size}."""

    def __init__(self):
        self.roots: list[str] = []
        self.sizes: dict[str, int] = {}

    def add(self, line: str) -> None:
        try:
            msg = json.loads(line)
        except ValueError:
            return
        if not isinstance(msg, dict):
            return
        kind = msg.get("message_type") or msg.get("struct_type")
        if kind == "snapshot":
            self.roots = [str(p).rstrip("/") for p in msg.get("paths") or []]
        elif kind == "node" and msg.get("type") == "file" and isinstance(msg.get("path"), str):
            self.sizes[msg["path"]] = int(msg.get("size") or 0)

    def files(self) -> dict[str, int]:
        """{path relative to the snapshot's root: size}; ReleaseError when the snapshot has not one root."""
        if len(self.roots) != 1:
            raise ReleaseError(f"the files snapshot has {len(self.roots)} paths, not one (the data root)")
        prefix = self.roots[0] + "/"
        return {p[len(prefix):]: size for p, size in self.sizes.items() if p.startswith(prefix)}


def problems(directories: dict, files: dict[str, int]) -> list[str]:
    """Where the listed files differ from what the manifest's directories say of raw/, originals/ and
    quarantine/ (files, bytes). Pure."""
    out = []
    for state in HOLDING:
        sizes = [size for path, size in files.items()
                 if path.startswith(state + "/") and not manifest.skipped(path)]
        want = directories.get(state) or {}
        have = {"files": len(sizes), "bytes": sum(sizes)}
        for k in ("files", "bytes"):
            if want.get(k) != have[k]:
                out.append(f"{state}/: {have[k]} {k} in the snapshot, the manifest says {want.get(k)}")
    return out


def taken_here(entries, set_id: str, position: int) -> bool:
    """Whether the journal's notes say this data root took the set at this position. Pure."""
    return any(e.get("op") == "note" and e.get("event") == SET_TAKEN and e.get("set") == set_id
               and e.get("journal_position") == position for _, e in entries)


def taken_note(set_id: str, position: int) -> dict:
    """take's journal note of a set (SET_TAKEN). No "time" key (the set's id is its time): a set moves no
    report, and the status's "last move" is the newest journal entry with a time (dr/watch/folders.py)."""
    return {"op": "note", "stage": "snapshot", "event": SET_TAKEN, "set": set_id, "journal_position": position}


def release_list(set_id: str, repository: str, reports: list[Pull], written: str | None = None) -> dict:
    """A release list (docs/snapshots.md), its reports sorted and each named once. Pure."""
    rows = sorted({(p.collector, p.remote, p.sha256) for p in reports})
    return {"format": FORMAT, "set": set_id, "repository": repository,
            "written": written or dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "reports": [{"collector": c, "remote": r, "sha256": s} for c, r, s in rows]}


def write(dr: DataRoot, body: dict) -> Path:
    """The list in place, atomically: <data_root>/releases/<set>-<repository>.json."""
    target = path(dr, body["set"], body["repository"])
    target.parent.mkdir(mode=0o755, exist_ok=True)
    atomic.write_bytes(target, (json.dumps(body, indent=1, sort_keys=True) + "\n").encode())
    return target


def files_of(restic: Restic, snapshot: dict) -> dict[str, int]:
    """{path under the data root: size} of a files snapshot's regular files in raw/, originals/, quarantine/."""
    roots = snapshot.get("paths") or []
    if len(roots) != 1:
        raise ReleaseError(f"the files snapshot {snapshot.get('short_id')} has {len(roots)} paths, not one")
    listing = Listing()
    root = str(roots[0]).rstrip("/")
    restic.run(*json_args(*ls_args(snapshot["id"], *(f"{root}/{s}" for s in HOLDING))), on_stdout=listing.add,
               quiet=True)
    return listing.files()


def for_set(restic: Restic, dr: DataRoot, set_id: str, repository: str) -> tuple[Path, int]:
    """Write the release list of a set of restic's repository (repository: "local" or "offsite"): (its path,
    the reports it names). ReleaseError when the set is not complete there, its files snapshot does not
    verify against its manifest, or (off-site) this data root did not take it."""
    parts = sets.group(restic.json(*snapshots_args(f"set:{set_id}")) or []).get(set_id, {})
    if not sets.is_complete(parts):
        raise ReleaseError(f"set {set_id} is not complete in the {repository} repository")
    m = sets.read_manifest(restic, parts["manifest"]["id"])
    position = m["journal_position"]
    if repository == "offsite" and not taken_here(journal.committed(dr), set_id, position):
        raise ReleaseError(f"set {set_id} was not taken from this data root's journal (restored from an older "
                           "set?): the next set taken here releases its reports")
    files = files_of(restic, parts["files"])
    wrong = problems(m["directories"], files)
    if wrong:
        raise ReleaseError(f"set {set_id}'s files snapshot does not verify against its manifest: "
                           + "; ".join(wrong))
    reports = held(pulls(journal.committed(dr), position), files)
    body = release_list(set_id, repository, reports)
    return write(dr, body), len(body["reports"])


def newest_offsite(restic: Restic) -> str:
    """The newest set complete in the (off-site) repository; ReleaseError when there is none."""
    complete = [sid for sid, parts in sets.grouped(restic).items() if sets.is_complete(parts)]
    if not complete:
        raise ReleaseError("no complete set in the off-site repository")
    return max(complete)
