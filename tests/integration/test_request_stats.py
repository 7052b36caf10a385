"""Model-service request stats: counted by a middleware, shared through Redis, read
back by the monitor as error rate and p99 latency over an interval."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI, HTTPException
from redis.exceptions import ConnectionError as RedisConnectionError

from shared.request_stats import RequestStats, RequestStatsMiddleware, ServiceHealthReader

KEY = "driftwatch:{test}:service:stats"


def make_app(stats: RequestStats) -> FastAPI:
    app = FastAPI()
    app.add_middleware(RequestStatsMiddleware, stats=stats)

    @app.get("/work")
    async def work(ms: float = 0.0, fail: bool = False) -> dict[str, bool]:
        await asyncio.sleep(ms / 1000)
        if fail:
            raise HTTPException(503)
        return {"ok": True}

    @app.get("/livez")
    async def livez() -> dict[str, str]:
        return {"status": "ok"}

    return app


async def test_error_rate_and_p99_over_an_interval(aredis: aioredis.Redis) -> None:
    replicas = [RequestStats(), RequestStats()]  # two model-service replicas, one hash
    reader = ServiceHealthReader(aredis, KEY)
    assert await reader.read() is None  # the first read only sets the baseline

    for stats in replicas:
        transport = httpx.ASGITransport(app=make_app(stats))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            for i in range(100):
                await client.get("/work", params={"ms": 40 if i < 2 else 0, "fail": i % 10 == 0})
            await client.get("/livez")  # probes are not requests to alert on
        await stats.flush(aredis, KEY)

    health = await reader.read()
    assert health is not None
    assert health.requests == 200
    assert health.error_rate == pytest.approx(0.1)
    # 4 of 200 requests (2%) took >= 40 ms: the p99 is one of them.
    assert health.latency_p99_seconds is not None and health.latency_p99_seconds >= 0.04 * 0.95

    # Nothing new: no rate to report, not a stale one.
    quiet = await reader.read()
    assert quiet is not None and quiet.requests == 0 and quiet.error_rate is None


async def test_counts_survive_a_failed_flush(redis_url: str) -> None:
    stats = RequestStats()
    stats.record(200, 0.001)
    dead = aioredis.Redis(port=1, socket_connect_timeout=0.2)
    with pytest.raises(RedisConnectionError):
        await stats.flush(dead, KEY)
    live = aioredis.Redis.from_url(redis_url)
    await stats.flush(live, KEY)
    assert await live.hget(KEY, "requests") == b"1"
    await live.aclose()
    await dead.aclose()
