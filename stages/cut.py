"""A snapshot set's cut, as the stages see it: while a set backs up the data root, `<root>/.cut/tree/` holds a
second name (a hard link) of every file the data root held when the set took the pipeline's lock
(snapshots/cut.py makes and removes it). So a report file may have two names: its own and the cut's.

The stages refuse a regular file with more than one name (it may be a hard link to a file outside the data
root: stages/layout.kind_of), so they count a file's names outside the cut: a name is the cut's only when the
cut's index (`<root>/.cut/inodes`, written before any link is made) names a path for the file's inode and that
path in the tree is that very file now. The cut is removed while stages run, so a file the index does not
explain is looked at again (its link may have just gone); a new cut is only made under the exclusive lock.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

CUT = ".cut"            # in the data root; never a state directory, never in a snapshot or the publication
TREE = "tree"           # the cut's files, at the paths they have under the data root
INDEX = "inodes"        # "<inode> <path under tree>" per line, written whole before the first link


def folder(root: Path | str) -> Path:
    return Path(root) / CUT


def tree(root: Path | str) -> Path:
    return folder(root) / TREE


def index_path(root: Path | str) -> Path:
    return folder(root) / INDEX


def _is_cut(folder_: Path) -> bool:
    """A cut is a real folder made by root (the backup container): no stage, and nothing a collector sends,
    can make one (the stages run as their own user)."""
    try:
        st = os.lstat(folder_)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == 0


def read_index(root: Path | str) -> dict[int, str]:
    """The cut's index ({} when there is no cut, or it is being removed)."""
    if not _is_cut(folder(root)):
        return {}
    try:
        text = index_path(root).read_text()
    except (FileNotFoundError, NotADirectoryError):
        return {}
    out = {}
    for line in text.splitlines():
        ino, _, rel = line.partition(" ")
        if ino.isdigit() and rel:
            out[int(ino)] = rel
    return out


class Names:
    """Counts a data root's files' names outside its cut; the cut's index is read once, and again when it
    does not explain a file (a newer cut, or none)."""

    def __init__(self, root: Path | str):
        self.root = Path(root)
        self._index: dict[int, str] | None = None

    def _in_cut(self, st: os.stat_result) -> bool:
        if self._index is None:
            self._index = read_index(self.root)
        rel = self._index.get(st.st_ino)
        if rel is None:
            return False
        try:
            there = os.lstat(tree(self.root) / rel)
        except OSError:
            return False
        return (there.st_dev, there.st_ino) == (st.st_dev, st.st_ino)

    def outside(self, st: os.stat_result, restat) -> int:
        """The names of the file st describes that are not the cut's; restat() stats it again."""
        if st.st_nlink == 1 or not stat.S_ISREG(st.st_mode):
            return st.st_nlink
        if self._in_cut(st):
            return st.st_nlink - 1
        self._index = None
        fresh = restat()
        if fresh.st_nlink == 1:
            return 1
        return fresh.st_nlink - (1 if self._in_cut(fresh) else 0)


_names: dict[Path, Names] = {}


def names_of(path: Path) -> Names | None:
    """The Names of the data root that holds path (a state directory's file: the root is the first folder
    above it with a cut), or None when no folder above it has one."""
    for parent in Path(path).parents:
        if _is_cut(parent / CUT):
            if parent not in _names:
                _names[parent] = Names(parent)
            return _names[parent]
    return None
