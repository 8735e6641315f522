"""The spawned worker pool (stages/pool.py): every result reaches the parent, a worker that dies costs only
the item it died on, and nothing more is started once the parent says stop."""

from __future__ import annotations

import os

from stages import pool

DIE = 13


def square(n: int, offset: int) -> int:
    """A worker (importable by spawned processes): dies on DIE."""
    if n == DIE:
        os._exit(9)
    return n * n + offset


def run(items, workers=2, stop_after=None):
    results, died = [], []

    def stopped():
        return stop_after is not None and len(results) >= stop_after

    pool.run_isolated(square, items, (1,), workers, results.append, died.append, stopped)
    return sorted(results), died


def test_every_item_is_run_once():
    assert run(range(10)) == ([n * n + 1 for n in range(10)], [])


def test_a_worker_that_dies_costs_only_its_item():
    results, died = run([1, 2, DIE, 3, 4, 5, 6, 7])
    assert died == [DIE]
    assert results == [n * n + 1 for n in (1, 2, 3, 4, 5, 6, 7)]


def test_with_one_worker_too():
    assert run([DIE, 2], workers=1) == ([5], [DIE])


def test_stopped_starts_nothing_more():
    results, died = run(range(20), workers=1, stop_after=1)
    assert len(results) == 1 and died == []
