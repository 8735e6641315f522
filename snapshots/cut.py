"""A snapshot set's cut: the data root as it was at one instant, made in time per file, not per byte.

Every file the pipeline writes is written once, under a new name, and never changed in place (the journal
aside: it only grows). So a consistent cut needs the names, not the bytes: under the pipeline's exclusive
lock, `make` gives every file of the data root that the files snapshot holds a second name (a hard link) in
`<root>/.cut/tree/`, at the same path, with each folder's mode, owner and times; the journal is not linked
but copied afterwards, up to the position the manifest records (the bytes before it never change). The lock
is then released, and the set hashes and backs up the tree (the backup container sees it at the path the
data root had, so the snapshot is as before), then `clear` removes it. What a pipeline move changes after
the cut (a rename, a new file, a removal) changes a name the cut does not share; the content stays.

The index (`<root>/.cut/inodes`, stages/cut.py) is written before the first link, so a stage never meets a
second name it cannot explain, even from a cut a killed set left half made; the next set (or a restore)
clears such a cut first. A cut costs metadata only: a directory entry per file and an inode per folder,
no data blocks; while it exists, the files the pipeline deletes meanwhile keep their blocks until `clear`.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from common import atomic
from common.errors import DrError
from snapshots import manifest
from stages import cut
from stages.layout import DataRoot

JOURNAL = "journal.jsonl"


class CutError(DrError):
    pass


@dataclass
class Made:
    files: int = 0        # names given
    folders: int = 0
    seconds: float = 0.0
    journal_mode: int = 0o600
    journal_owner: tuple[int, int] = (0, 0)
    journal_mtime_ns: int = 0
    root: os.stat_result | None = None  # the data root's own lstat at the cut


def clear(root: Path | str) -> int:
    """Remove what a cut holds (the files' second names first, then its folders, the index last), keeping the
    tree's folder (the backup container's mount point). Safe while stages run, idempotent; returns the
    names removed."""
    tree = cut.tree(root)
    removed = 0
    if tree.is_dir() and not tree.is_symlink():
        for here, dirs, files in os.walk(tree, topdown=False):
            for name in files:
                os.unlink(os.path.join(here, name))
                removed += 1
            for name in dirs:
                path = os.path.join(here, name)
                if os.path.islink(path):
                    os.unlink(path)
                    removed += 1
                else:
                    os.rmdir(path)
    try:
        os.unlink(cut.index_path(root))
    except FileNotFoundError:
        pass
    return removed


def _held(rel_dir: str, name: str) -> bool:
    """manifest.backed_up for an entry of the folder rel_dir ("" the data root), asked only where an exclusion
    can apply (the root's entries, raw/'s, a dot-name anywhere: the temporaries), so a walk of many files
    stays a walk."""
    if rel_dir and rel_dir != "raw" and not name.startswith("."):
        return True
    return manifest.backed_up(f"{rel_dir}/{name}" if rel_dir else name)


def _walk(root: Path) -> list[tuple[str, os.stat_result, list[tuple[str, int]]]]:
    """[(folder rel ("" the data root), its lstat, [(file name, inode)])] of what the files snapshot holds,
    parents before children, the journal aside; one scandir per folder (the inode comes with the name)."""
    folders = []
    todo = [("", os.lstat(root))]
    while todo:
        rel_dir, st = todo.pop()
        names: list[tuple[str, int]] = []
        with os.scandir(os.path.join(root, rel_dir) if rel_dir else root) as it:
            for entry in it:
                if not _held(rel_dir, entry.name) or (not rel_dir and entry.name == JOURNAL):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    todo.append((f"{rel_dir}/{entry.name}" if rel_dir else entry.name, entry.stat(follow_symlinks=False)))
                else:
                    names.append((entry.name, entry.inode()))
        folders.append((rel_dir, st, names))
    return folders


def _mirror(path: Path | str, st: os.stat_result) -> None:
    os.chown(path, st.st_uid, st.st_gid, follow_symlinks=False)
    os.chmod(path, stat.S_IMODE(st.st_mode))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _link_all(root: Path, tree: Path, rel_dir: str, names: list[tuple[str, int]]) -> int:
    """Give each file of one folder its second name in the tree's folder (through both folders' descriptors:
    no path walked per file); the names given."""
    src = os.open(os.path.join(root, rel_dir) if rel_dir else root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        dst = os.open(os.path.join(tree, rel_dir) if rel_dir else tree, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            given = 0
            for name, _ in names:
                try:
                    os.link(name, name, src_dir_fd=src, dst_dir_fd=dst, follow_symlinks=False)
                except FileNotFoundError:
                    continue  # gone since the walk: nothing moves under the lock, but a hand may delete
                except OSError as exc:
                    if exc.errno in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP):
                        raise CutError(f"cannot give {os.path.join(root, rel_dir, name)} a second name in {tree} "
                                       f"({exc.strerror}): the data root's file system must allow hard links for a "
                                       "set's cut; set backup.cut = false to back up under the pipeline's lock "
                                       "instead (it then pauses while restic reads what is new)") from None
                    raise
                given += 1
            return given
        finally:
            os.close(dst)
    finally:
        os.close(src)


def make(dr: DataRoot) -> Made:
    """The cut of the data root (under its exclusive lock; any earlier cut cleared). CutError when the data
    root's file system cannot give a file a second name."""
    started = time.monotonic()
    root, tree = dr.root, cut.tree(dr.root)
    tree.mkdir(parents=True, exist_ok=True)
    os.chmod(cut.folder(root), 0o755)
    if any(tree.iterdir()):
        raise CutError(f"{tree} is not empty: a cut is already there (cut.clear first)")
    folders = _walk(root)
    atomic.write_bytes(cut.index_path(root), "".join(
        f"{ino} {rel_dir}/{name}\n" if rel_dir else f"{ino} {name}\n"
        for rel_dir, _, names in folders for name, ino in names).encode())
    made = Made(folders=len(folders), root=folders[0][1])
    for rel_dir, _, names in folders:  # parents before children
        if rel_dir:
            os.mkdir(os.path.join(tree, rel_dir))
        made.files += _link_all(root, tree, rel_dir, names)
    for rel_dir, st, _ in reversed(folders):  # children first: a folder's times are set after its entries
        _mirror(os.path.join(tree, rel_dir) if rel_dir else tree, st)
    try:
        jst = os.lstat(dr.journal)
        made.journal_mode, made.journal_owner = stat.S_IMODE(jst.st_mode), (jst.st_uid, jst.st_gid)
        made.journal_mtime_ns = jst.st_mtime_ns
    except FileNotFoundError:
        made.journal_mtime_ns = 0
    made.seconds = round(time.monotonic() - started, 3)
    return made


def copy_journal(dr: DataRoot, position: int, made: Made) -> None:
    """The journal's first position bytes into the tree (after the lock: they never change), with the mode,
    owner and modification time it had at the cut. No journal at the cut: none in the tree."""
    if not made.journal_mtime_ns:
        return
    tree = cut.tree(dr.root)
    target = tree / JOURNAL
    with open(dr.journal, "rb") as src, open(target, "xb") as out:
        left = position
        while left > 0:
            chunk = src.read(min(left, 1 << 20))
            if not chunk:
                raise CutError(f"{dr.journal} is shorter than its position at the cut ({position} bytes)")
            out.write(chunk)
            left -= len(chunk)
    os.chown(target, *made.journal_owner)
    os.chmod(target, made.journal_mode)
    os.utime(target, ns=(made.journal_mtime_ns, made.journal_mtime_ns))
    if made.root is not None:  # the journal's arrival changed the tree's own times: the data root's at the cut
        _mirror(tree, made.root)
