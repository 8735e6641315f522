"""Retention keeps exactly the sets its policy names (table-driven, over fake set times)."""

import datetime as dt
from types import SimpleNamespace

import pytest

from snapshots import retention


def policy(last=1, hourly=0, daily=0, weekly=0, monthly=0):
    return SimpleNamespace(keep_last=last, keep_hourly=hourly, keep_daily=daily, keep_weekly=weekly,
                           keep_monthly=monthly)


def sid(y, m, d, h=0, mi=0):
    return dt.datetime(y, m, d, h, mi).strftime("%Y%m%dT%H%M%SZ")


HOURLY_DAY = {sid(2026, 11, 28, h, mi): True for h in range(0, 6) for mi in (0, 30)}


@pytest.mark.parametrize("sets, pol, expected", [
    # keep_last only
    (HOURLY_DAY, policy(last=3), {sid(2026, 11, 28, 5, 30), sid(2026, 11, 28, 5, 0), sid(2026, 11, 28, 4, 30)}),
    # the newest of each of the last 2 hours, plus the newest overall
    (HOURLY_DAY, policy(last=1, hourly=2), {sid(2026, 11, 28, 5, 30), sid(2026, 11, 28, 4, 30)}),
    # daily over several days: the newest of each day
    ({sid(2026, 11, d, h): True for d in (25, 26, 27, 28) for h in (1, 13)}, policy(last=1, daily=3),
     {sid(2026, 11, 28, 13), sid(2026, 11, 27, 13), sid(2026, 11, 26, 13)}),
    # weekly: ISO weeks (2026-11-23 is a Monday)
    ({sid(2026, 11, d): True for d in (15, 16, 22, 23, 29)}, policy(last=1, weekly=2),
     {sid(2026, 11, 29), sid(2026, 11, 22)}),
    # monthly
    ({sid(2026, m, d): True for m in (9, 10, 11) for d in (1, 20)}, policy(last=1, monthly=2),
     {sid(2026, 11, 20), sid(2026, 10, 20)}),
    # incomplete sets are never kept for themselves; one newer than the newest complete one is kept
    ({sid(2026, 11, 28, 1): True, sid(2026, 11, 28, 2): False, sid(2026, 11, 28, 3): True,
      sid(2026, 11, 28, 4): False}, policy(last=5), {sid(2026, 11, 28, 1), sid(2026, 11, 28, 3),
                                                     sid(2026, 11, 28, 4)}),
    # nothing complete: only a possibly running set stays
    ({sid(2026, 11, 28, 1): False}, policy(last=3), {sid(2026, 11, 28, 1)}),
    ({}, policy(last=3), set()),
])
def test_policy_keeps_exactly_what_it_names(sets, pol, expected):
    assert retention.keep(sets, pol) == expected


def test_the_newest_complete_set_is_always_kept():
    sets = {sid(2026, 1, 1): True, sid(2026, 6, 1): True}
    assert sid(2026, 6, 1) in retention.keep(sets, policy(last=1))

