"""The data root and its state directories. Every path the pipeline touches is made here."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from common.errors import DrError
from stages import cut

# Where a report can be, in pipeline order, and the private folders beside them.
REPORT_STATES = ("raw", "staging", "reports", "archive", "quarantine")
STATE_DIRS = REPORT_STATES + ("originals",)
PRIVATE = ("raw", "originals", "quarantine")
WAITING = ("raw", "staging", "reports")  # where inputs wait for the pipeline, in its order


@dataclass(frozen=True)
class DataRoot:
    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    def state(self, name: str) -> Path:
        if name not in STATE_DIRS:
            raise ValueError(f"unknown state directory {name!r}")
        return self.root / name

    @property
    def journal(self) -> Path:
        return self.root / "journal.jsonl"

    @property
    def lock_file(self) -> Path:
        return self.root / ".lock"

    def stage_lock_file(self, stage: str) -> Path:
        return self.root / f".lock-{stage}"

    def ensure(self) -> "DataRoot":
        self.root.mkdir(parents=True, exist_ok=True)
        for name in STATE_DIRS:
            d = self.state(name)
            if d.is_symlink():  # a stage must never read or write outside the data root
                raise DrError(f"{d} is a symbolic link; every state directory must be a real folder "
                              "inside the data root")
            d.mkdir(exist_ok=True)
            os.chmod(d, 0o700 if name in PRIVATE else 0o755)
        return self

    def relative(self, path: Path) -> str:
        return str(Path(path).relative_to(self.root))

    def files(self, name: str) -> list[Path]:
        """Every report file in a state directory (temporaries and sidecars excluded), sorted. Only regular
        files: a link is never followed, and nothing that is not a regular file is listed (see `entries`)."""
        return [p for p, kind in self.entries(name) if kind == REGULAR]

    def waiting(self, name: str) -> list[float]:
        """The modification times of the inputs waiting in a state directory (one of WAITING): each report
        file as `files` lists them (raw/: as pulled, sync keeps the collector's time; staging/: sanitized), in
        reports/ only the .yaml (its .jsonl is the same report). One walk, an lstat per entry; an input that
        moved on meanwhile is left out."""
        paths = self.files(name)
        if name == "reports":
            paths = [p for p in paths if p.suffix == ".yaml"]
        times = []
        for p in paths:
            try:
                times.append(os.lstat(p).st_mtime)
            except FileNotFoundError:  # moved on meanwhile
                continue
        return times

    def inputs(self, name: str) -> tuple[list[Path], list[tuple[Path, str]]]:
        """(regular files, [(path, kind) of everything else]) in a state directory: what a stage reads, and
        what it quarantines unread."""
        regular, others = [], []
        for p, kind in self.entries(name):
            if kind == REGULAR:
                regular.append(p)
            else:
                others.append((p, kind))
        return regular, others

    def entries(self, name: str) -> list[tuple[Path, str]]:
        """(path, kind) of everything a stage may find in a state directory, sorted, without following
        links: kind is REGULAR, or what else it is (symbolic link, FIFO, socket, device, hard link: a
        regular file with more than one name, which may be a file outside the data root)."""
        base = self.state(name)
        names = cut.Names(self.root)  # a file's second name may be a snapshot set's cut (stages/cut.py)
        out = []
        for dirpath, dirs, files in os.walk(base):
            here = Path(dirpath)
            links = [d for d in dirs if (here / d).is_symlink()]
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in links)
            for f in sorted(files + links):
                if f.startswith(".") or f.endswith(".reason.json"):
                    continue
                p = here / f
                try:
                    st = os.lstat(p)
                    out.append((p, kind_of(st, names.outside(st, lambda: os.lstat(p)))))
                except FileNotFoundError:
                    continue
        return sorted(out)


REGULAR = "regular file"


def kind_of(st: os.stat_result, names: int | None = None) -> str:
    """What a directory entry is, from its lstat (REGULAR only for a regular file with one name); names: how
    many names it has outside a snapshot set's cut (stages/cut.py), when not st_nlink."""
    mode = st.st_mode
    if stat.S_ISREG(mode):
        names = st.st_nlink if names is None else names
        return REGULAR if names == 1 else f"hard link ({names} names)"
    for test, kind in ((stat.S_ISLNK, "symbolic link"), (stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket"),
                       (stat.S_ISBLK, "block device"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISDIR, "directory")):
        if test(mode):
            return kind
    return "special file"
