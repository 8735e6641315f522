"""A report's path on a collector, relative to its archive folder: the names sync pulls (stages/sync.py), the
publisher announces (collector/pending.py) and a claim check may name (common/broker.py). One rule for all three:
at most MAX_DEPTH components, each a plain name (no leading "-" or ".", no space or control character)."""

from __future__ import annotations

import re

_COMPONENT = re.compile(r"^[A-Za-z0-9_+@=:,][A-Za-z0-9._+@=:,-]{0,254}$")  # no leading "-" or "."
MAX_DEPTH = 6


def safe_name(rel: str) -> bool:
    """Whether sync takes a report under this name (relative to the collector's archive folder)."""
    if not rel or rel.startswith("/") or len(rel) > 1024:
        return False
    parts = rel.split("/")
    return len(parts) <= MAX_DEPTH and all(p not in (".", "..") and _COMPONENT.match(p) for p in parts)
