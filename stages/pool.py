"""A pool of spawned worker processes in which a worker that dies costs only the item it had.

Workers are spawned, not forked: a worker must not inherit the parent's lock descriptors, or one outliving a
killed parent would keep the stage lock. A worker that dies (killed, out of memory, crashed in C code)
breaks the pool: the items it had in flight are then run one at a time in a pool of their own, so that
only the item that kills a worker fails. Used by the sanitizer, which runs its workers here even with one
worker, for that isolation."""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures.process import BrokenProcessPool


class WorkerDied(Exception):
    """An item on which the worker process died, alone in its pool."""


def run_isolated(worker: Callable, items: Iterable, args: tuple, workers: int,
                 collect: Callable[[object], None], died: Callable[[object], None],
                 stopped: Callable[[], bool]) -> None:
    """Run worker(item, *args) for every item in `workers` spawned processes and hand each result to
    collect, in the parent. died(item) is called for an item on which a worker died even when run alone.
    Stops starting work as soon as stopped() is true (checked after each result)."""
    pending = list(items)
    while pending and not stopped():
        suspects, pending = _pass(worker, pending, args, workers, collect, stopped)
        for item in suspects:
            if stopped():
                break
            died_again, _ = _pass(worker, [item], args, 1, collect, stopped)
            if died_again:
                died(item)


def _pass(worker: Callable, todo: list, args: tuple, workers: int, collect: Callable[[object], None],
          stopped: Callable[[], bool]) -> tuple[list, list]:
    """Run todo through one pool, collecting results. Returns (the items in flight when a worker died,
    the items not started then); both empty when the pool stayed whole.

    A pool can break at any moment: while a result is being read, or between two results, in which case
    the next submit raises. Either way nothing more is submitted, what is in flight is drained (results
    that arrived are collected, the others become suspects), and the items never started are returned."""
    ctx = multiprocessing.get_context("spawn")
    queue = deque(todo)
    inflight: dict[cf.Future, object] = {}
    suspects: list = []
    broken = False
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        while True:
            while queue and not broken and len(inflight) < 2 * workers:
                item = queue.popleft()
                try:
                    inflight[pool.submit(worker, item, *args)] = item
                except BrokenProcessPool:
                    queue.appendleft(item)  # never started
                    broken = True
            if not inflight:
                break
            done, _ = cf.wait(inflight, return_when=cf.FIRST_COMPLETED)
            for fut in done:
                item = inflight.pop(fut)
                try:
                    result = fut.result()
                except BrokenProcessPool:
                    # Which of the items in flight killed the worker is not known yet.
                    suspects.append(item)
                    broken = True
                    continue
                collect(result)
                if stopped():
                    return [], []
    if broken:
        return suspects, list(queue)
    return [], []
