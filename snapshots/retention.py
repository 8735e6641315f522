"""Retention over whole snapshot sets: which sets a policy keeps.

A complete set is kept when any rule keeps it (as restic and borg do): the newest `keep_last`; the newest
set in each of the last `keep_hourly` hours, `keep_daily` days, `keep_weekly` ISO weeks and
`keep_monthly` months that have sets. The newest complete set is always kept. Incomplete sets are never
kept on their own, except those newer than the newest complete set (one may be a snapshot in progress).
"""

from __future__ import annotations

import datetime as dt

RULES = (
    ("keep_hourly", lambda t: t.strftime("%Y-%m-%dT%H")),
    ("keep_daily", lambda t: t.strftime("%Y-%m-%d")),
    ("keep_weekly", lambda t: "%04d-W%02d" % t.isocalendar()[:2]),
    ("keep_monthly", lambda t: t.strftime("%Y-%m")),
)


def parse_id(set_id: str) -> dt.datetime:
    return dt.datetime.strptime(set_id, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)


def keep(sets: dict[str, bool], policy) -> set[str]:
    """sets: {set id: complete}. policy: an object with keep_last, keep_hourly, ... (ints)."""
    complete = sorted((s for s, ok in sets.items() if ok), reverse=True)
    kept = set(complete[: max(policy.keep_last, 1)])
    for rule, bucket in RULES:
        n = getattr(policy, rule)
        seen: list[str] = []
        for s in complete:  # newest first: the first set of each bucket is its newest
            b = bucket(parse_id(s))
            if b in seen:
                continue
            if len(seen) >= n:
                break
            seen.append(b)
            kept.add(s)
    newest = complete[0] if complete else ""
    kept.update(s for s, ok in sets.items() if not ok and s > newest)
    return kept
