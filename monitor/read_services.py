"""What the monitor's routes read: reports, performance, health.

Each is a small object over Redis and the caches the worker refreshes, built
once per process (:mod:`monitor.assembly`) and handed to routes through the
``Annotated`` dependencies of :mod:`monitor.read_deps`. Routes never reach
into the worker; a new route needs one method here, or one new reader.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import redis.asyncio as aioredis
from pydantic import BaseModel

from monitor.calibrations import CalibrationCatalog
from monitor.consumer import ConsumerStats
from monitor.performance_report import PerformanceReport, PerformanceTotals, performance_report, performance_totals
from monitor.reports import ModelCatalog, WindowDriftReport
from monitor.stream_health import StreamHealth
from monitor.windows import WindowIndex, WindowProgress, series_keys
from shared.keys import Keys
from shared.probes import RedisProbe
from shared.supervision import TaskSupervisor


class ReportReads:
    """Stored drift reports of one version's series, and how far a window is from its report.

    Every read takes ``version``; by default the model's current version (the
    one registered last), whose series the unversioned routes show. Lists and
    "the latest" hold reports of the current window mode only
    (:meth:`WindowIndex.newest`); one window's report is found whatever its mode.
    """

    def __init__(self, client: aioredis.Redis, keys: Keys, windows: WindowIndex) -> None:
        self.client = client
        self.keys = keys
        self.windows = windows

    async def current_version(self) -> str | None:
        """The model's current version (registered last): what reads default to."""
        keys = await series_keys(self.client, self.keys)
        return keys.version if keys is not None else None

    async def latest(self, version: str | None = None) -> WindowDriftReport | None:
        page = await self.history(limit=1, version=version)
        return page[0] if page else None

    async def history(self, limit: int, version: str | None = None) -> list[WindowDriftReport]:
        keys = await series_keys(self.client, self.keys, version)
        if keys is None:
            return []
        windows = await self.windows.newest(keys, keys.drift_index, limit)  # of the current window mode
        if not windows:
            return []
        raw = await self.client.hmget(keys.drift_reports, [str(w) for w in windows])
        return [WindowDriftReport.model_validate_json(r) for r in raw if r is not None]

    async def newest_window(self, version: str | None = None) -> int | None:
        """Index of the newest stored report of the current window mode (no report parsed)."""
        keys = await series_keys(self.client, self.keys, version)
        if keys is None:
            return None
        newest = await self.windows.newest(keys, keys.drift_index, 1)
        return newest[0] if newest else None

    async def stored(self, window: int, version: str | None = None) -> WindowDriftReport | None:
        """The report of one window, while it is kept (the link alerts carry)."""
        keys = await series_keys(self.client, self.keys, version)
        if keys is None:
            return None
        raw = await self.client.hget(keys.drift_reports, str(window))
        return WindowDriftReport.model_validate_json(raw) if raw is not None else None

    async def progress(self, window: int | None = None, version: str | None = None) -> WindowProgress:
        """One window's progress; by default the window being filled."""
        return await self.windows.progress(window, version)


class PerformanceReads:
    """Performance of one version (by default the version served last), on the labels received so far."""

    def __init__(
        self,
        client: aioredis.Redis,
        keys: Keys,
        catalog: ModelCatalog,
        calibrations: CalibrationCatalog,
        windows: WindowIndex,
        *,
        retention_s: int,
    ) -> None:
        self.client = client
        self.keys = keys
        self.catalog = catalog
        self.calibrations = calibrations
        self.windows = windows
        self.retention_s = retention_s

    async def report(
        self, last_windows: int, version: str | None = None, only_windows: Sequence[int] | None = None
    ) -> PerformanceReport | None:
        """The report with ``last_windows`` windows detailed (or exactly ``only_windows``); None
        while no model (or not ``version``) is registered."""
        metadata = await (self.catalog.metadata(version) if version else self.catalog.latest_metadata())
        if metadata is None:
            return None
        calibration = await self.calibrations.get(metadata.version)
        return await performance_report(
            self.client,
            self.keys,
            metadata.class_names,
            self.windows,
            last_windows=last_windows,
            calibration=calibration,
            model_version=metadata.version,
            estimate_unavailable=self.calibrations.unavailable(metadata.version),
            retention_s=self.retention_s,
            only_windows=only_windows,
        )


    async def totals(self) -> PerformanceTotals | None:
        """The current version's totals alone (what the gauges show); None while no model is registered."""
        metadata = await self.catalog.latest_metadata()
        if metadata is None:
            return None
        return await performance_totals(self.client, self.keys, len(metadata.class_names), metadata.version)


class MonitorReadiness(BaseModel):
    ready: bool
    redis: bool
    worker_running: bool
    # The latest failure of a background task ("<task>: <Type>: <message>"), kept after
    # the restart so an operator sees why it happened; and how many failures so far.
    worker_error: str | None = None
    worker_failures: int = 0
    predictions_processed: int
    feedback_processed: int
    duplicates_ignored: int
    dead_lettered: int
    failed_deliveries: int = 0
    claimed: int = 0
    trimmed_unprocessed: int = 0
    # Refreshed every few seconds by the worker (XINFO GROUPS, XLEN of the DLQ).
    streams: dict[str, dict[str, int | None]] = {}
    dlq_length: int | None = None
    events_per_second: float | None = None
    lag_near_cap: bool = False
    lag_warn_threshold: int | None = None


class HealthReads:
    """Readiness: Redis answers, the worker runs; with the consumer's counts and stream health."""

    def __init__(
        self,
        client: aioredis.Redis,
        consumer_stats: ConsumerStats,
        stream_health: StreamHealth,
        worker_running: Callable[[], bool],
        supervisors: Sequence[TaskSupervisor] = (),
    ) -> None:
        """``supervisors``: those of the worker and the alert notifier, for ``worker_error``."""
        self.client = client
        self.redis_probe = RedisProbe(client)  # concurrent probes share one PING
        self.consumer_stats = consumer_stats
        self.stream_health = stream_health
        self.worker_running = worker_running
        self.supervisors = tuple(supervisors)

    async def readiness(self) -> MonitorReadiness:
        redis_ok = await self.redis_probe.answers()
        running = self.worker_running()
        stats = self.consumer_stats
        failed = [(s.last_error_unix, s.last_error) for s in self.supervisors if s.last_error is not None]
        return MonitorReadiness(
            ready=redis_ok and running,
            redis=redis_ok,
            worker_running=running,
            worker_error=max(failed)[1] if failed else None,
            worker_failures=sum(s.failures for s in self.supervisors),
            predictions_processed=stats.predictions,
            feedback_processed=stats.feedback,
            duplicates_ignored=stats.duplicates,
            dead_lettered=stats.dead_lettered,
            failed_deliveries=stats.failed,
            claimed=stats.claimed,
            trimmed_unprocessed=stats.trimmed,
            **self.stream_health.snapshot,
        )
