"""Lag and pending per stream, DLQ length, events/s: read every few seconds, cached.

The worker refreshes it from its stats loop; ``/readyz``, the alert bridge and
the metric exporter's thread read the cached values, so none of them waits on
Redis or reaches into the worker.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis.asyncio as aioredis

from monitor.consumer import ConsumerStats
from shared.keys import CONSUMER_GROUP, Keys

log = logging.getLogger(__name__)


class StreamHealth:
    def __init__(
        self,
        client: aioredis.Redis,
        keys: Keys,
        consumer_stats: ConsumerStats,
        *,
        stream_maxlen: int,
        lag_warn_ratio: float,
    ) -> None:
        self.client = client
        self.keys = keys
        self.consumer_stats = consumer_stats
        self.lag_warn_threshold = lag_warn_ratio * stream_maxlen
        self.stream_maxlen = stream_maxlen
        # Lag and pending per stream (XINFO GROUPS), for the metrics and alerts.
        self.streams: dict[str, dict[str, int | None]] = {}
        # The /readyz detail: streams, DLQ length, events/s, lag near the cap.
        self.snapshot: dict[str, Any] = {}
        self._rate_mark: tuple[float, int] | None = None

    def lag(self, stream: str = "predictions") -> int | None:
        lag = self.streams.get(stream, {}).get("lag")
        return int(lag) if lag is not None else None

    def stream_stats(self, stream: str) -> dict[str, int | None]:
        return self.streams.get(stream, {})

    def dlq_length(self) -> int | None:
        value = self.snapshot.get("dlq_length")
        return int(value) if value is not None else None

    async def refresh(self) -> None:
        """Lag and pending per stream, then DLQ length, events/s since the last
        refresh, and whether lag nears the stream cap."""
        named = (("predictions", self.keys.predictions), ("feedback", self.keys.feedback))
        async with self.client.pipeline(transaction=False) as pipe:  # one round trip: every model refreshes
            for _, stream in named:
                pipe.xinfo_groups(stream)
            pipe.xlen(self.keys.dlq)
            *infos, dlq_length = await pipe.execute()
        for (name, _), groups in zip(named, infos, strict=True):
            group = next((g for g in groups if g["name"] in (CONSUMER_GROUP, CONSUMER_GROUP.encode())), None)
            if group is not None:
                self.streams[name] = {"lag": group.get("lag"), "pending": group.get("pending")}
        now = time.monotonic()
        stats = self.consumer_stats
        total = stats.predictions + stats.feedback + stats.duplicates
        rate = None
        if self._rate_mark is not None:
            then, before = self._rate_mark
            rate = (total - before) / (now - then) if now > then else None
        self._rate_mark = (now, total)
        lags = [s.get("lag") for s in self.streams.values()]
        near_cap = any(lag is not None and lag >= self.lag_warn_threshold for lag in lags)
        if near_cap and not self.snapshot.get("lag_near_cap"):
            log.warning("monitor: stream lag %s is near the stream cap (%d): events may be trimmed unseen",
                        lags, self.stream_maxlen)
        self.snapshot = {
            "streams": {name: dict(values) for name, values in self.streams.items()},
            "dlq_length": int(dlq_length),
            "events_per_second": None if rate is None else round(rate, 1),
            "lag_near_cap": near_cap,
            "lag_warn_threshold": int(self.lag_warn_threshold),
        }
