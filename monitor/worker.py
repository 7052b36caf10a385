"""The monitor's background work: consume, and report windows as they fill.

One ``MonitorWorker`` runs inside each monitor process next to its HTTP API.
Shutdown is an ``asyncio.Event``: the loop finishes the batch in hand (state
updated, entries acked) and returns, and cancellation is never caught, so no
``except Exception`` can swallow a stop.
"""

from __future__ import annotations

import asyncio
import logging

import redis.asyncio as aioredis

from monitor.consumer import StreamConsumer
from monitor.drift import DriftConfig
from monitor.reports import DriftReporter, ModelCatalog
from monitor.state import WindowState
from shared.keys import Keys
from shared.settings import MonitorSettings

log = logging.getLogger(__name__)


class MonitorWorker:
    def __init__(self, client: aioredis.Redis, settings: MonitorSettings, consumer_name: str) -> None:
        self.keys = Keys(settings.model_name)
        self.settings = settings
        self.catalog = ModelCatalog(
            client, self.keys, DriftConfig(alpha=settings.alpha, correction=settings.correction)
        )
        self.reporter = DriftReporter(client, self.keys, self.catalog, settings.history_max)
        self.state = WindowState(client, self.keys, settings.window_size, settings.join_retention_s)
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

    async def _on_windows_closed(self, windows: list[int]) -> None:
        await self.reporter.report_pending()

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
        await self.reporter.report_pending()
        await self.consumer.run(self._stop)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="monitor-worker")

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(self._task, timeout_s)
        except TimeoutError:
            log.error("monitor worker did not stop within %.0fs", timeout_s)
