"""Handing the data root to the stages' unprivileged user (uid/gid 990) before a stage container runs.

The stages write in place (journal, locks, failure records, the state directories' files) and read what an
operator dropped into raw/ as root. So every real folder and every regular file with one name in the data
root becomes owned by the stages' user, and nothing else: a symbolic link, a hard link (a regular file with
more than one name, which may be /etc/shadow), a FIFO, a socket or a device is never changed and never
followed (stages/layout.kind_of: the stages quarantine such entries unread). Each file is opened with
O_NOFOLLOW relative to its folder's descriptor and changed through that descriptor after checking it is still
a regular file with one name, so an entry swapped for a link between the look and the change is not followed.
Only what is not already owned is changed: a warm run is one walk of lstat calls.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from common import log
from common.errors import DrError
from stages import cut

_log = log.get("ownership")
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)


def _owned(st: os.stat_result, uid: int, gid: int) -> bool:
    return st.st_uid == uid and st.st_gid == gid


def _file(name: str, dirfd: int, uid: int, gid: int, names: cut.Names) -> bool:
    """Give one directory entry to uid:gid when it is a regular file with one name (a snapshot set's cut's
    name aside: stages/cut.py); True if it changed."""
    try:
        st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    if not stat.S_ISREG(st.st_mode) or _owned(st, uid, gid):
        return False
    one = names.outside(st, lambda: os.stat(name, dir_fd=dirfd, follow_symlinks=False))
    if one != 1:
        return False
    try:
        fd = os.open(name, _OPEN_FLAGS, dir_fd=dirfd)
    except (FileNotFoundError, OSError):
        return False  # gone, or swapped for a symbolic link (ELOOP): left alone
    try:
        now = os.fstat(fd)
        if not stat.S_ISREG(now.st_mode) or (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) \
                or names.outside(now, lambda: os.fstat(fd)) != 1:
            return False
        os.fchown(fd, uid, gid)
        return True
    finally:
        os.close(fd)


def hand_over(root: str | os.PathLike, uid: int, gid: int) -> int:
    """Make root (created when missing, mode 0755), every folder and every regular single-name file under it
    owned by uid:gid, never following or changing a link or a special file; returns how many entries changed.
    root itself is the operator's path and may be reached through links; nothing below it is."""
    top = Path(root)
    top.mkdir(parents=True, exist_ok=True)
    top = top.resolve()
    changed = 0
    names = cut.Names(top)
    try:
        for here, dirs, files, dirfd in os.fwalk(top, follow_symlinks=False):
            if here == str(top) and cut.CUT in dirs:
                dirs.remove(cut.CUT)  # a snapshot set's cut: the backup container's (stages/cut.py)
            st = os.fstat(dirfd)
            if not _owned(st, uid, gid):
                os.fchown(dirfd, uid, gid)
                changed += 1
            # a link to a folder is listed in dirs but not descended into (follow_symlinks=False): left alone
            for name in files:
                changed += _file(name, dirfd, uid, gid, names)
    except PermissionError as exc:
        raise DrError(f"cannot give {top} to the stages' user {uid}:{gid} ({exc}); the pipeline must run as "
                      "root on the host") from None
    if changed:
        _log.info("gave %d entr%s in %s to the stages' user %d:%d", changed, "y" if changed == 1 else "ies",
                  top, uid, gid)
    return changed
