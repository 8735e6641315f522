"""The host-wide lock of our restic runs: one snapshots.cli run at a time per host (the restic cache folder is
the host's, shared by every backup container), so a scheduled snapshot waits for a running check instead of
failing on restic's lock, and whatever restic lock of ours exists while we hold this one is stale. The
bare-host drill holds it too while it copies the repository (dr/drills/bare_host.py)."""

from __future__ import annotations

from pathlib import Path

from stages.lock import Lock

LOCK_NAME = ".aggregator-dr.lock"  # in <cache_dir>/restic


def repo_lock(cfg) -> Lock:
    """The exclusive lock of our restic runs under cfg.cache_dir, waiting at most backup.lock_timeout."""
    return Lock(Path(cfg.cache_dir) / "restic" / LOCK_NAME, exclusive=True,
                timeout=cfg.backup.lock_timeout, what="lock of our restic runs")
