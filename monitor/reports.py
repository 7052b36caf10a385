"""Drift reports per window: computed when a window fills, stored in Redis.

Reports are keyed by window index, so computing one twice (two replicas, or a
retry after a crash) writes the same report again instead of a second one.
A window's raw rows are deleted only after its report is stored.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime

import numpy as np
import redis.asyncio as aioredis
from pydantic import BaseModel

from monitor.drift import DriftConfig, DriftDetector, DriftReport
from shared.events import FLOAT
from shared.keys import Keys
from shared.model_metadata import ModelMetadata
from shared.registry import read_current_version, read_registered_model

log = logging.getLogger(__name__)


class WindowDriftReport(DriftReport):
    """A detector's report plus where it came from."""

    window: int
    model: str
    model_version: str
    window_start: datetime
    window_end: datetime
    computed_at: datetime


class ReportPage(BaseModel):
    reports: list[WindowDriftReport]


def _ms_to_datetime(ms: bytes | None) -> datetime:
    return datetime.fromtimestamp(int(ms or 0) / 1000, tz=UTC)


class ModelCatalog:
    """Registered model versions and their detectors, built once per version."""

    def __init__(self, client: aioredis.Redis, keys: Keys, config: DriftConfig) -> None:
        self.client = client
        self.keys = keys
        self.config = config
        self._detectors: dict[str, tuple[ModelMetadata, DriftDetector]] = {}

    async def get(self, version: str) -> tuple[ModelMetadata, DriftDetector] | None:
        if version not in self._detectors:
            registered = await read_registered_model(self.client, self.keys, version)
            if registered is None:
                return None
            metadata, reference = registered
            detector = await asyncio.to_thread(
                DriftDetector,
                reference=reference.features,
                feature_names=metadata.feature_names,
                config=self.config,
                categorical=np.array(metadata.categorical, dtype=bool),
                reference_classes=reference.predicted_classes,
                n_classes=metadata.n_classes,
            )
            self._detectors[version] = (metadata, detector)
        return self._detectors[version]

    async def latest(self) -> tuple[ModelMetadata, DriftDetector] | None:
        """The version the model service registered last."""
        version = await read_current_version(self.client, self.keys)
        return await self.get(version) if version else None

    async def n_features(self, version: str) -> int | None:
        entry = await self.get(version)
        return entry[0].n_features if entry else None


class DriftReporter:
    def __init__(self, client: aioredis.Redis, keys: Keys, catalog: ModelCatalog, history_max: int) -> None:
        self.client = client
        self.keys = keys
        self.catalog = catalog
        self.history_max = history_max

    async def report_pending(self) -> list[WindowDriftReport]:
        """Report every full window not reported yet, oldest first."""
        pending = sorted(int(w) for w in await self.client.smembers(self.keys.windows_to_report))
        reports = []
        for window in pending:
            report = await self.report_window(window)
            if report is not None:
                reports.append(report)
        return reports

    async def report_window(self, window: int) -> WindowDriftReport | None:
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.lrange(self.keys.window_rows(window), 0, -1)
            pipe.hgetall(self.keys.window_classes(window))
            pipe.hgetall(self.keys.window_meta(window))
            rows, class_counts, meta = await pipe.execute()
        if not rows:  # reported already by another replica
            await self.client.srem(self.keys.windows_to_report, window)
            return None
        version = meta[b"model_version"].decode()
        entry = await self.catalog.get(version)
        if entry is None:
            log.warning("window %d: model version %s not registered yet; will retry", window, version)
            return None
        metadata, detector = entry
        features = np.frombuffer(b"".join(rows), dtype=FLOAT).reshape(len(rows), -1)
        classes = np.repeat(
            np.array([int(k) for k in class_counts], dtype=np.int64),
            np.array([int(v) for v in class_counts.values()], dtype=np.int64),
        )
        result = await asyncio.to_thread(detector.test, features, classes)
        report = WindowDriftReport(
            **result.model_dump(),
            window=window,
            model=metadata.name,
            model_version=version,
            window_start=_ms_to_datetime(meta.get(b"first_ts")),
            window_end=_ms_to_datetime(meta.get(b"last_ts")),
            computed_at=datetime.now(UTC),
        )
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys.drift_reports, str(window), report.model_dump_json())
            pipe.zadd(self.keys.drift_index, {str(window): window})
            pipe.srem(self.keys.windows_to_report, window)
            pipe.delete(self.keys.window_rows(window))
            await pipe.execute()
        await self._trim_history()
        log.info("window %d: dataset drift=%s (%.0f%% features) in %.0f ms", window, report.dataset_drift,
                 100 * report.drifted_share, (time.time() - report.computed_at.timestamp()) * 1000)
        return report

    async def _trim_history(self) -> None:
        excess = await self.client.zcard(self.keys.drift_index) - self.history_max
        if excess > 0:
            old = await self.client.zrange(self.keys.drift_index, 0, excess - 1)
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.hdel(self.keys.drift_reports, *old)
                pipe.zrem(self.keys.drift_index, *old)
                await pipe.execute()

    async def latest(self) -> WindowDriftReport | None:
        page = await self.history(limit=1)
        return page[0] if page else None

    async def history(self, limit: int) -> list[WindowDriftReport]:
        windows = await self.client.zrevrange(self.keys.drift_index, 0, limit - 1)
        if not windows:
            return []
        raw = await self.client.hmget(self.keys.drift_reports, windows)
        return [WindowDriftReport.model_validate_json(r) for r in raw if r is not None]
