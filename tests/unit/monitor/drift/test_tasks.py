"""The window's task runner: every task once, on any thread count, errors handed back."""

from __future__ import annotations

import threading

import pytest

from monitor.drift import _tasks


@pytest.mark.parametrize("threads", [1, 2, 8])
def test_every_task_runs_once(threads: int) -> None:
    counts = [0] * 50
    lock = threading.Lock()

    def task(i: int) -> None:
        with lock:
            counts[i] += 1

    _tasks.run([lambda i=i: task(i) for i in range(50)], threads)
    assert counts == [1] * 50


@pytest.mark.parametrize("threads", [1, 2])
def test_the_first_error_is_raised_after_every_task_ran(threads: int) -> None:
    done: list[int] = []

    def fail() -> None:
        raise ValueError("task 0 failed")

    with pytest.raises(ValueError, match="task 0 failed"):
        _tasks.run([fail, *(lambda i=i: done.append(i) for i in range(10))], threads)
    assert sorted(done) == list(range(10))


def test_the_caller_takes_the_first_task() -> None:
    """The longest piece goes first in the list, and the caller (which surely has a core) runs it."""
    who: list[str] = []
    _tasks.run([lambda: who.append(threading.current_thread().name), lambda: None, lambda: None], 2)
    assert who == [threading.current_thread().name]
