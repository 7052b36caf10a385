"""The monitor's background work: consume, and report windows as they fill.

One ``MonitorWorker`` runs inside each monitor process next to its HTTP API.
Shutdown is an ``asyncio.Event``: the loop finishes the batch in hand (state
updated, entries acked) and returns, and cancellation is never caught, so no
``except Exception`` can swallow a stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import redis.asyncio as aioredis

from monitor.consumer import StreamConsumer
from monitor.performance_report import performance_report
from monitor.reports import DriftReporter, ModelCatalog, ReferencePolicy, WindowDriftReport, drift_config
from monitor.window_state import WindowState
from monitor.windows import WindowIndex, WindowPolicy
from shared.keys import CONSUMER_GROUP, Keys
from shared.settings import MonitorSettings
from shared.telemetry import MonitorMetrics

log = logging.getLogger(__name__)

ReportsListener = Callable[[list[WindowDriftReport]], Awaitable[None]]
StatsListener = Callable[[], Awaitable[None]]


class MonitorWorker:
    def __init__(
        self,
        client: aioredis.Redis,
        settings: MonitorSettings,
        consumer_name: str,
        metrics: MonitorMetrics | None = None,
        stats_interval_s: float = 5.0,
        on_reports: ReportsListener | None = None,
        on_stats: StatsListener | None = None,
    ) -> None:
        """``on_reports`` runs after new window reports are stored (alert evaluation);
        ``on_stats`` after each periodic stats refresh (alerts on lag)."""
        self.client = client
        self.on_reports = on_reports
        self.on_stats = on_stats
        self.metrics = metrics
        self.stats_interval_s = stats_interval_s
        self.stream_stats: dict[str, dict[str, int | None]] = {}
        self._reported_counts = {"predictions": 0, "feedback": 0}
        # Refreshed with the stream stats: DLQ length, events/s, lag near the cap (for /readyz).
        self.health: dict[str, Any] = {}
        self._rate_mark: tuple[float, int] | None = None
        self.keys = Keys(settings.model_name)
        self.settings = settings
        self.catalog = ModelCatalog(client, self.keys, drift_config(settings), ReferencePolicy.from_settings(settings))
        self.windows = WindowPolicy.from_settings(settings)
        self.window_index = WindowIndex(client, self.keys, self.windows)
        self.reporter = DriftReporter(client, self.keys, self.catalog, settings.history_max, windows=self.windows)
        self.reporter.time_grace_ms = int(settings.window_grace_s * 1000)
        self.state = WindowState(
            client, self.keys, settings.window_size, settings.join_retention_s, window_ms=self.windows.window_ms
        )
        self.consumer = StreamConsumer(
            client,
            self.keys,
            self.state,
            consumer=consumer_name,
            read_count=settings.read_count,
            block_ms=settings.read_block_ms,
            claim_idle_ms=settings.claim_idle_ms,
            max_deliveries=settings.max_deliveries,
            on_windows_closed=self._on_windows_closed,
            expected_features=self.catalog.n_features,
        )
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stats_task: asyncio.Task[None] | None = None
        if metrics is not None:
            for stream in ("predictions", "feedback"):
                metrics.set_stream_stats_callback(partial(self._cached_stream_stats, stream), stream=stream)
            metrics.set_dlq_length_callback(lambda: self.health.get("dlq_length"))

    def _cached_stream_stats(self, stream: str) -> dict[str, int | None]:
        return self.stream_stats.get(stream, {})

    async def _on_windows_closed(self, windows: list[int]) -> None:
        await self._publish_reports(await self.reporter.report_pending())

    async def _publish_reports(self, reports: list[WindowDriftReport]) -> None:
        if not reports:
            return
        if self.metrics is not None:
            for report in reports:
                self.metrics.update_drift(report.model_dump(mode="json"), model_version=report.model_version)
        if self.on_reports is not None:
            await self.on_reports(reports)

    async def refresh_stats(self) -> None:
        """Lag and pending per stream (XINFO GROUPS), events processed, performance:
        read here, in the event loop, and cached for the exporter thread."""
        for name, stream in (("predictions", self.keys.predictions), ("feedback", self.keys.feedback)):
            groups = await self.client.xinfo_groups(stream)
            group = next((g for g in groups if g["name"] in (CONSUMER_GROUP, CONSUMER_GROUP.encode())), None)
            if group is not None:
                self.stream_stats[name] = {"lag": group.get("lag"), "pending": group.get("pending")}
        await self._refresh_health()
        if self.metrics is None:
            return
        stats = self.consumer.stats
        for name, total in (("predictions", stats.predictions), ("feedback", stats.feedback)):
            self.metrics.processed(total - self._reported_counts[name], stream=name)
            self._reported_counts[name] = total
        metadata = await self.catalog.latest_metadata()
        if metadata is not None:
            perf = await performance_report(self.client, self.keys, metadata.class_names, self.window_index)
            self.metrics.update_performance(
                perf.accuracy, perf.label_coverage, perf.labelled, model_version=metadata.version
            )

    async def _refresh_health(self) -> None:
        """DLQ length, events/s since the last refresh, and whether lag nears the stream cap."""
        now = time.monotonic()
        stats = self.consumer.stats
        total = stats.predictions + stats.feedback + stats.duplicates
        rate = None
        if self._rate_mark is not None:
            then, before = self._rate_mark
            rate = (total - before) / (now - then) if now > then else None
        self._rate_mark = (now, total)
        threshold = self.settings.lag_warn_ratio * self.settings.stream_maxlen
        lags = [s.get("lag") for s in self.stream_stats.values()]
        near_cap = any(lag is not None and lag >= threshold for lag in lags)
        if near_cap and not self.health.get("lag_near_cap"):
            log.warning("monitor: stream lag %s is near the stream cap (%d): events may be trimmed unseen",
                        lags, self.settings.stream_maxlen)
        self.health = {
            "streams": {name: dict(values) for name, values in self.stream_stats.items()},
            "dlq_length": int(await self.client.xlen(self.keys.dlq)),
            "events_per_second": None if rate is None else round(rate, 1),
            "lag_near_cap": near_cap,
            "lag_warn_threshold": int(threshold),
        }

    async def _stats_loop(self) -> None:
        while not self._stop.is_set():
            try:
                if self.windows.timed:
                    # A quiet time window closes when its time is over, not only
                    # when a later prediction arrives.
                    await self._publish_reports(await self.reporter.report_pending())
                await self.refresh_stats()
                if self.on_stats is not None:
                    await self.on_stats()
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
        await self._publish_reports(await self.reporter.report_pending())
        await self.consumer.run(self._stop)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="monitor-worker")
        self._stats_task = asyncio.create_task(self._stats_loop(), name="monitor-stats")

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        for task in (self._task, self._stats_task):
            if task is None:
                continue
            try:
                await asyncio.wait_for(task, timeout_s)
            except TimeoutError:
                log.error("monitor task %s did not stop within %.0fs", task.get_name(), timeout_s)
