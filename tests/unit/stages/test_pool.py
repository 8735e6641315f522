"""The spawned worker pool (stages/pool.py): every result reaches the parent, a worker that dies costs only
the item it died on, and nothing more is started once the parent says stop."""

from __future__ import annotations

import os
import time

from stages import pool

DIE = 13
DIE_SOON = 17


def square(n: int, offset: int) -> int:
    """A worker (importable by spawned processes): dies on DIE, and a moment later on DIE_SOON."""
    if n == DIE:
        os._exit(9)
    if n == DIE_SOON:
        time.sleep(0.2)
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


def test_a_pool_that_breaks_between_two_results_loses_nothing():
    """The worker dies while the parent handles a result, so the parent's next submit finds the pool broken
    (CI once failed on exactly that): the items never started still run, the one that killed its worker
    is the only one lost."""
    results, died = [], []

    def slow_collect(result):
        results.append(result)
        if len(results) == 1:
            time.sleep(1.5)  # DIE_SOON kills its worker meanwhile

    pool.run_isolated(square, [1, DIE_SOON, 2, 3, 4, 5, 6], (1,), 2, slow_collect, died.append,
                      lambda: False)
    assert died == [DIE_SOON]
    assert sorted(results) == [n * n + 1 for n in (1, 2, 3, 4, 5, 6)]
