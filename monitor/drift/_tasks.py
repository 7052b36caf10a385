"""A window's independent pieces of work, run by the calling thread and helpers that pull them.

Why not numba's ``prange`` for the window: its workqueue layer splits a loop
into one fixed share per thread and the caller waits for the slowest; on a
2-core machine shared with other work a helper that does not get a core for
a few milliseconds stalls the whole launch (F=256 10k x 10k: 102-153 ms on
two threads against 62-108 ms on one, in 4 of 10 benchmark processes).
Here the caller works through the same list as its helpers and takes the
next piece as soon as it is free, so a helper that is not scheduled costs
nothing but the pieces it never takes, and the caller waits only for pieces
already started. Pieces are also of different kinds (the cross-moment
product beside the KS blocks' sort and merge), which a ``prange`` loop cannot
overlap.

Each piece writes its own outputs and computes them the same way whichever
thread runs it, so results do not depend on the thread count. The pieces
must release the GIL for the threads to help (numba ``nogil`` kernels,
numpy's sort, BLAS).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache

__all__ = ["run"]


@cache
def _helpers(count: int) -> ThreadPoolExecutor:
    """``count`` helper threads (created at first use; the thread budget is fixed per process)."""
    return ThreadPoolExecutor(max_workers=count, thread_name_prefix="drift-window")


def run(tasks: Sequence[Callable[[], None]], threads: int) -> None:
    """Run every task once, on the calling thread and up to ``threads - 1`` helpers,
    each taking the next task in list order when it is free.

    Put the longest task first: the caller takes it, the helpers the rest.
    Returns when every task has finished; the first exception raised by a
    task is raised here (the other tasks still run).
    """
    if not tasks:
        return
    helpers = min(threads, len(tasks)) - 1
    lock = threading.Lock()
    finished = threading.Event()
    state = {"next": 0, "done": 0}
    errors: list[BaseException] = []

    def drain() -> None:
        while True:
            with lock:
                i = state["next"]
                if i >= len(tasks):
                    return
                state["next"] = i + 1
            try:
                tasks[i]()
            except BaseException as exc:  # handed to the caller below
                errors.append(exc)
            with lock:
                state["done"] += 1
                if state["done"] == len(tasks):
                    finished.set()

    if helpers > 0:
        pool = _helpers(threads - 1)
        for _ in range(helpers):
            pool.submit(drain)
    drain()
    # Wait for the tasks, not for the helpers: one that wakes late finds nothing left and returns.
    finished.wait()
    if errors:
        raise errors[0]
