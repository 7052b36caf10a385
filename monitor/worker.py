"""The monitor's background work: consume, and report windows as they fill.

One ``MonitorWorker`` runs inside each monitor process next to its HTTP API.
It is built with its collaborators (:func:`monitor.assembly.assemble_monitor`)
and owns only the two loops. Shutdown is an ``asyncio.Event``: the loop
finishes the batch in hand (state updated, entries acked) and returns, and
cancellation is never caught, so no ``except Exception`` can swallow a stop.
Both loops run under a :class:`shared.supervision.TaskSupervisor`: a loop that
raises is logged with its traceback, shown in ``/readyz`` (``worker_error``),
counted, and started again with backoff, instead of dying unobserved.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

import redis.asyncio as aioredis

from monitor.consumer import StreamConsumer
from monitor.reports import DriftReporter, WindowDriftReport
from monitor.stream_health import StreamHealth
from shared.supervision import TaskSupervisor

log = logging.getLogger(__name__)

WORKER_TASK = "monitor-worker"
STATS_TASK = "monitor-stats"

ReportsListener = Callable[[list[WindowDriftReport]], Awaitable[None]]
StatsListener = Callable[[], Awaitable[None]]


class ReportDispatch:
    """Reports every pending window and hands the new reports to each listener, in order
    (metric gauges, then alert evaluation)."""

    def __init__(self, reporter: DriftReporter, listeners: Sequence[ReportsListener] = ()) -> None:
        self.reporter = reporter
        self.listeners = tuple(listeners)

    async def report_pending(self) -> None:
        # A window that could not be tested is stored with its reason (status "error"):
        # it has no values to export and no drift to alert on.
        reports = [r for r in await self.reporter.report_pending() if r.status != "error"]
        if not reports:
            return
        for listener in self.listeners:
            await listener(reports)

    async def on_windows_closed(self, windows: list[int]) -> None:
        """The consumer's callback when its ingest closed ``windows``."""
        await self.report_pending()


class MonitorWorker:
    def __init__(
        self,
        consumer: StreamConsumer,
        reports: ReportDispatch,
        stream_health: StreamHealth,
        *,
        timed_windows: bool,
        stats_listeners: Sequence[StatsListener] = (),
        stats_interval_s: float = 5.0,
        supervisor: TaskSupervisor | None = None,
    ) -> None:
        """``stats_listeners`` run after each periodic stream-health refresh (metrics, alerts on lag);
        ``timed_windows``: windows of prediction time also close on the clock, not only on ingest;
        ``supervisor`` restarts either loop when it raises (its listener counts the failure)."""
        self.consumer = consumer
        self.reports = reports
        self.stream_health = stream_health
        self.timed_windows = timed_windows
        self.stats_listeners = tuple(stats_listeners)
        self.stats_interval_s = stats_interval_s
        self.supervisor = supervisor or TaskSupervisor()
        self._stop = self.supervisor.stopping

    async def refresh_stats(self) -> None:
        """Stream health, then every stats listener: read here, in the event loop, and
        cached for the exporter thread and the routes."""
        await self.stream_health.refresh()
        for listener in self.stats_listeners:
            await listener()

    async def _stats_loop(self) -> None:
        while not self._stop.is_set():
            try:
                if self.timed_windows:
                    # A quiet time window closes when its time is over, not only
                    # when a later prediction arrives.
                    await self.reports.report_pending()
                await self.refresh_stats()
            except (aioredis.RedisError, OSError) as exc:
                log.debug("stats refresh failed: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.stats_interval_s)

    async def _run(self) -> None:
        while True:
            try:
                await self.consumer.ensure_groups()
                break
            except (aioredis.ConnectionError, OSError) as exc:
                log.warning("monitor: cannot reach Redis (%s); retrying", exc)
                await asyncio.sleep(1.0)
        # Windows that filled while no monitor could report them (a crash between
        # the ingest script and the report) are reported first.
        await self.reports.report_pending()
        await self.consumer.run(self._stop)

    def start(self) -> None:
        self.supervisor.start(WORKER_TASK, self._run)
        self.supervisor.start(STATS_TASK, self._stats_loop)

    @property
    def running(self) -> bool:
        return self.supervisor.running(WORKER_TASK)

    async def stop(self, timeout_s: float = 10.0) -> None:
        await self.supervisor.stop(timeout_s)
