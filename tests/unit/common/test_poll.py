"""Waiting for something (common/poll.until): the value, the timeout naming what was awaited, final failures."""

import time

import pytest

from common import poll
from common.errors import DrError


def test_returns_what_the_check_returned_once_it_holds():
    answers = iter([None, False, 0, "ready"])
    assert poll.until(lambda: next(answers), "the fourth answer", 5, interval=0.01) == "ready"


def test_gives_up_at_the_timeout_naming_what_it_awaited_and_the_last_error():
    calls = []

    def check():
        calls.append(1)
        raise ConnectionRefusedError(f"refused #{len(calls)}")

    t0 = time.monotonic()
    with pytest.raises(poll.WaitTimeout, match=r"^gave up waiting for the database to answer after 0s "
                                               r"\(last error: refused #\d+\)$") as raised:
        poll.until(check, "the database to answer", 0.2, interval=0.05, retry=(ConnectionRefusedError,))
    assert 0.2 <= time.monotonic() - t0 < 1 and len(calls) >= 3
    assert isinstance(raised.value, DrError)  # tasks print it as one line, no traceback


def test_a_check_that_raises_otherwise_stops_the_wait_at_once():
    def check():
        raise ValueError("the container exited")

    t0 = time.monotonic()
    with pytest.raises(ValueError, match="exited"):
        poll.until(check, "something", 10, retry=(ConnectionError,))
    assert time.monotonic() - t0 < 1


def test_checks_once_even_when_no_time_is_left_and_builds_the_callers_error():
    assert poll.until(lambda: True, "x", 0) is True
    with pytest.raises(RuntimeError, match=r"^gave up waiting for dockerd to answer after 0s; log tail: \.\.\.$"):
        poll.until(lambda: False, "dockerd to answer", -1, error=lambda msg: RuntimeError(msg + "; log tail: ..."))


def test_the_pause_doubles_up_to_max_interval(monkeypatch):
    pauses = []
    monkeypatch.setattr(poll.time, "sleep", pauses.append)
    answers = iter([False] * 6 + [True])
    assert poll.until(lambda: next(answers), "x", 100, interval=0.01, max_interval=0.05)
    assert pauses == [0.01, 0.02, 0.04, 0.05, 0.05, 0.05]
