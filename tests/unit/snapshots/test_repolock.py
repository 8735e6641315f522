"""The host-wide lock of our restic runs (snapshots/repolock.py): one holder at a time; a second waits, then
gives up naming the lock."""

from types import SimpleNamespace

import pytest

from snapshots.repolock import LOCK_NAME, repo_lock
from stages.lock import LockTimeout


def test_one_holder_at_a_time(tmp_path):
    cfg = SimpleNamespace(cache_dir=str(tmp_path), backup=SimpleNamespace(lock_timeout=0.2))
    with repo_lock(cfg):
        assert (tmp_path / "restic" / LOCK_NAME).exists()
        with pytest.raises(LockTimeout, match="lock of our restic runs"):
            with repo_lock(cfg):
                pass
    with repo_lock(cfg):  # released: free again
        pass
