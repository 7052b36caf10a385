"""Request counts and latency of the model service, shared with the monitor through Redis.

The monitor's alert rules on error rate and p99 latency need those figures,
and the monitor cannot scrape Prometheus. Each model service counts requests
by status class and latency in log buckets in memory (a pure ASGI middleware:
two integer increments per request), and adds its counts to one Redis hash
every few seconds with a pipelined HINCRBY. Replicas add into the same hash,
so the monitor reads the fleet's totals; the rate over an interval is the
difference of two reads.

Latency buckets are eighth-octaves of microseconds: a p99 read back is within
about 5% of the truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import Counter
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

ERRORS_FIELD = "status:5xx"
REQUESTS_FIELD = "requests"
LATENCY_PREFIX = "latency:"
BUCKETS_PER_OCTAVE = 8


def latency_bucket(seconds: float) -> int:
    return int(BUCKETS_PER_OCTAVE * math.log2(max(seconds, 0.0) * 1e6 + 1))


def bucket_upper_s(bucket: int) -> float:
    return (2 ** ((bucket + 1) / BUCKETS_PER_OCTAVE) - 1) / 1e6


class RequestStats:
    """In-memory counts since the last flush."""

    def __init__(self, excluded_paths: frozenset[str] = frozenset({"/livez", "/readyz", "/metrics"})) -> None:
        self.excluded_paths = excluded_paths
        self._pending: Counter[str] = Counter()

    def record(self, status: int, seconds: float) -> None:
        self._pending[REQUESTS_FIELD] += 1
        self._pending[f"status:{status // 100}xx"] += 1
        self._pending[f"{LATENCY_PREFIX}{latency_bucket(seconds)}"] += 1

    async def flush(self, client: aioredis.Redis, key: str) -> None:
        """Add the counts to Redis; on failure they stay for the next flush."""
        pending, self._pending = self._pending, Counter()
        if not pending:
            return
        try:
            async with client.pipeline(transaction=True) as pipe:
                for field, count in pending.items():
                    pipe.hincrby(key, field, count)
                await pipe.execute()
        except BaseException:
            self._pending.update(pending)
            raise


class RequestStatsMiddleware:
    def __init__(self, app: ASGIApp, stats: RequestStats) -> None:
        self.app = app
        self.stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in self.stats.excluded_paths:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception before the response starts is a server error

        async def tracking_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        finally:
            self.stats.record(status, time.perf_counter() - started)


@dataclass(frozen=True, slots=True)
class ServiceHealth:
    requests: int
    error_rate: float | None
    latency_p99_seconds: float | None


class ServiceHealthReader:
    """Error rate and p99 latency over the interval between two reads of the shared hash."""

    def __init__(self, client: aioredis.Redis, key: str) -> None:
        self.client = client
        self.key = key
        self._previous: Counter[str] | None = None

    async def read(self) -> ServiceHealth | None:
        raw = await self.client.hgetall(self.key)
        now = Counter({k.decode(): int(v) for k, v in raw.items()})
        previous, self._previous = self._previous, now
        if previous is None:
            return None
        delta = now - previous
        requests = delta[REQUESTS_FIELD]
        if requests <= 0:
            return ServiceHealth(0, None, None)
        latency = sorted(
            (int(field[len(LATENCY_PREFIX) :]), count) for field, count in delta.items()
            if field.startswith(LATENCY_PREFIX)
        )
        threshold, seen, p99 = 0.99 * requests, 0, None
        for bucket, count in latency:
            seen += count
            if seen >= threshold:
                p99 = bucket_upper_s(bucket)
                break
        return ServiceHealth(requests, delta[ERRORS_FIELD] / requests, p99)


async def flush_periodically(
    stats: RequestStats, client: aioredis.Redis, key: str, stop: asyncio.Event, interval_s: float = 5.0
) -> None:
    """Flush every ``interval_s`` until ``stop`` is set, then once more; Redis being
    away only delays the counts (they are kept for the next flush)."""
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)
        try:
            await stats.flush(client, key)
        except (RedisError, OSError) as exc:
            log.debug("request stats not flushed: %s", exc)
        if stop.is_set():
            return
