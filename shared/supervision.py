"""Background tasks that never die silently.

An ``asyncio`` task that raises keeps its exception to itself until someone
awaits it; a monitor worker killed that way once left ``/readyz`` at 503
forever with nothing in the log. Every long-running task of both services
runs under :func:`supervise` instead: an exception is logged with its
traceback, recorded in the task's :class:`TaskHealth` (shown by ``/readyz``),
counted (``driftwatch.task.failures``), and the task is started again after
a backoff that doubles up to ``backoff_max_s`` and resets once a run has
lasted ``stable_after_s``. Cancellation is never caught, and a run that
returns normally (its own stop condition) ends the supervision.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

FailureListener = Callable[[str, BaseException], None]


@dataclass(slots=True)
class TaskHealth:
    """What ``/readyz`` shows of one supervised task."""

    name: str
    running: bool = False
    failures: int = 0
    last_error: str | None = None
    last_failure_unix: float | None = None


async def supervise(
    name: str,
    run: Callable[[], Awaitable[None]],
    *,
    stop: asyncio.Event,
    health: TaskHealth | None = None,
    on_failure: FailureListener | None = None,
    backoff_initial_s: float = 0.5,
    backoff_max_s: float = 30.0,
    stable_after_s: float = 60.0,
) -> None:
    """Run ``run()`` until it returns, restarting it with backoff when it raises, unless
    ``stop`` is set by then (``run`` itself watches ``stop`` to return).

    >>> import asyncio
    >>> attempts = []
    >>> async def flaky() -> None:
    ...     attempts.append(1)
    ...     if len(attempts) < 3:
    ...         raise RuntimeError("not yet")
    >>> health = TaskHealth("demo")
    >>> asyncio.run(supervise("demo", flaky, stop=asyncio.Event(), health=health, backoff_initial_s=0.001))
    >>> len(attempts), health.failures, health.last_error
    (3, 2, 'RuntimeError: not yet')
    """
    health = health or TaskHealth(name)
    backoff = backoff_initial_s
    while True:  # the first run happens even if stop is already set: a run may have work to finish
        started = time.monotonic()
        health.running = True
        try:
            await run()
            return
        except Exception as exc:  # not BaseException: cancellation and exits propagate
            health.failures += 1
            health.last_error = f"{type(exc).__name__}: {exc}"[:1_000]
            health.last_failure_unix = time.time()
            if time.monotonic() - started >= stable_after_s:
                backoff = backoff_initial_s
            log.exception("background task %s failed (%d so far); restarting in %.1fs",
                          name, health.failures, backoff)
            if on_failure is not None:
                try:
                    on_failure(name, exc)
                except Exception:  # a broken listener must not end the supervision
                    log.exception("failure listener of %s raised", name)
        finally:
            health.running = False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), backoff)
        if stop.is_set():
            return
        backoff = min(backoff * 2, backoff_max_s)


class TaskSupervisor:
    """The supervised tasks of one component, started and stopped together.

    ``stop`` sets the shared stop event (a run that watches it returns at its
    next step), waits up to ``timeout_s`` and cancels whatever is still going.
    """

    def __init__(
        self,
        *,
        on_failure: FailureListener | None = None,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
    ) -> None:
        self.stopping = asyncio.Event()
        self.on_failure = on_failure
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.health: dict[str, TaskHealth] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        health = self.health.setdefault(name, TaskHealth(name))
        self._tasks[name] = asyncio.create_task(
            supervise(
                name,
                run,
                stop=self.stopping,
                health=health,
                on_failure=self._failed,
                backoff_initial_s=self.backoff_initial_s,
                backoff_max_s=self.backoff_max_s,
            ),
            name=name,
        )

    def _failed(self, name: str, exc: BaseException) -> None:
        if self.on_failure is not None:
            self.on_failure(name, exc)

    def running(self, name: str) -> bool:
        """True while ``name`` runs (not between a failure and its restart, not after it ended)."""
        task = self._tasks.get(name)
        return task is not None and not task.done() and self.health[name].running

    @property
    def last_error(self) -> str | None:
        """The most recent failure of any task, as ``"<task>: <Type>: <message>"``."""
        failed = [h for h in self.health.values() if h.last_failure_unix is not None]
        if not failed:
            return None
        latest = max(failed, key=lambda h: h.last_failure_unix or 0.0)
        return f"{latest.name}: {latest.last_error}"

    @property
    def last_error_unix(self) -> float:
        """When :attr:`last_error` happened (0 if never)."""
        return max((h.last_failure_unix or 0.0 for h in self.health.values()), default=0.0)

    @property
    def failures(self) -> int:
        return sum(h.failures for h in self.health.values())

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Stop every task; ``timeout_s=0`` cancels at once, as a task that holds
        nothing half-done asks (the alert notifier), and that is not an error."""
        self.stopping.set()
        tasks = list(self._tasks.values())
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=timeout_s) if timeout_s > 0 else (set(), set(tasks))
        for task in late:
            if timeout_s > 0:  # a stop meant to be graceful that was not: worth an error
                log.error("background task %s did not stop within %.0fs; cancelling it", task.get_name(), timeout_s)
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
