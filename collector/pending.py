"""What the publisher has to publish, without AMQP: the scan of the archive folder (which files are complete
reports), the state file (what the broker confirmed), the claim check of a report, and the retry schedule.

A report is complete once it is a regular file under the archive folder under a name sync would take: the
collector writes it under a dot-name (or in a dot-folder) and renames it into place. So the scan follows the
rules of sync's listing (stages/sync.py: `find -path '*/.*' -prune -o -type f`, then `safe_name`): dot-files and
dot-folders (`.pulled/`, temporaries) are never looked into, symbolic links are no reports, and a name sync
would refuse (an unsafe character, deeper than MAX_DEPTH) is never announced.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from common import atomic, digest
from common.broker import ClaimCheck
from common.paths import MAX_DEPTH, safe_name

STATE_VERSION = 1


@dataclass(frozen=True)
class Seen:
    """A report as the scan saw it: its name in the archive folder, size and modification time."""
    path: str
    size: int
    mtime_ns: int


@dataclass
class Scan:
    """The complete reports of the archive folder, and the names sync would refuse (never published)."""
    files: list[Seen] = field(default_factory=list)
    unsafe: list[str] = field(default_factory=list)


def scan(archive: Path) -> Scan:
    """Every complete report under archive, sorted by name. A folder that vanishes or cannot be read while it
    is walked is skipped (the next scan sees it again)."""
    found = Scan()

    def walk(folder: Path, prefix: str, depth: int) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue  # in flight, or held (.pulled/): not a report to announce
            rel = prefix + entry.name
            try:
                if entry.is_dir(follow_symlinks=False):
                    if depth + 1 >= MAX_DEPTH or not safe_name(rel):
                        found.unsafe.append(rel + "/")  # what it holds is deeper than sync goes, or unsafe
                    else:
                        walk(Path(entry.path), rel + "/", depth + 1)
                elif entry.is_file(follow_symlinks=False):
                    if safe_name(rel):
                        st = entry.stat(follow_symlinks=False)
                        found.files.append(Seen(rel, st.st_size, st.st_mtime_ns))
                    else:
                        found.unsafe.append(rel)
            except FileNotFoundError:
                continue

    walk(archive, "", 0)
    return found


# --- the state file: what the broker confirmed ---------------------------------------------------------------------

@dataclass(frozen=True)
class Published:
    """A report the broker confirmed: its size and modification time when it was read, and its sha256."""
    size: int
    mtime_ns: int
    sha256: str


State = dict[str, Published]


def load_state(path: Path) -> State:
    """The state file's {report name: Published}; {} when there is none. ValueError when it does not read."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"the state file {path} does not read: {exc}") from None
    try:
        if data["version"] != STATE_VERSION:
            raise ValueError(f"the state file {path} has version {data['version']!r}, not {STATE_VERSION}")
        return {name: Published(int(p["size"]), int(p["mtime_ns"]), str(p["sha256"]))
                for name, p in data["published"].items()}
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"the state file {path} is not a publisher's state: {exc!r}") from None


def save_state(path: Path, state: State) -> None:
    """Write the state file atomically (a crash leaves the old one or the new one, never a torn one)."""
    data = {"version": STATE_VERSION,
            "published": {name: {"size": p.size, "mtime_ns": p.mtime_ns, "sha256": p.sha256}
                          for name, p in sorted(state.items())}}
    atomic.write_bytes(path, (json.dumps(data, indent=1) + "\n").encode(), mode=0o600)


def to_publish(files: list[Seen], state: State) -> list[Seen]:
    """The reports to publish: those the broker never confirmed, and those whose size or modification time
    changed since (a report written again)."""
    return [f for f in files if (p := state.get(f.path)) is None or (p.size, p.mtime_ns) != (f.size, f.mtime_ns)]


def forget_gone(state: State, files: list[Seen]) -> State:
    """The state without the reports no longer in the archive folder (released, or held in .pulled/): the file
    stays as small as what the collector holds."""
    here = {f.path for f in files}
    return {name: p for name, p in state.items() if name in here}


def read_digest(archive: Path, seen: Seen) -> str | None:
    """The report's sha256, or None when it changed or vanished while it was read (the next scan sees it
    again)."""
    path = archive / seen.path
    try:
        sha256 = digest.sha256_file(path)
        st = path.stat(follow_symlinks=False)
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        return None
    return sha256 if (st.st_size, st.st_mtime_ns) == (seen.size, seen.mtime_ns) else None


def completed(mtime_ns: int) -> str:
    """A modification time as ClaimCheck.completed: UTC, ISO 8601 with microseconds, Z."""
    when = datetime.fromtimestamp(mtime_ns // 10**9, timezone.utc).replace(microsecond=mtime_ns // 1000 % 10**6)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def claim(collector: str, seen: Seen, sha256: str) -> ClaimCheck:
    """The claim check announcing this report."""
    return ClaimCheck(collector=collector, path=seen.path, size=seen.size, sha256=sha256,
                      completed=completed(seen.mtime_ns))


# --- retry schedule --------------------------------------------------------------------------------------------------

FIRST_DELAY = 0.5
MAX_DELAY = 30.0


def backoff(attempt: int, first: float = FIRST_DELAY, cap: float = MAX_DELAY,
            rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait before retry number attempt (0 for the first): exponential from first, capped at cap,
    jittered down by up to half (so collectors that lost the broker together do not come back together),
    never under first."""
    ceiling = min(cap, first * 2 ** min(attempt, 64))
    return max(first, ceiling * (0.5 + rand() / 2))
