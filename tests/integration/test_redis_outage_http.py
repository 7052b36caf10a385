"""With Redis away the monitor's reads and rule writes answer 503 with a JSON reason
and Retry-After (never a 500), and work again on their own once Redis is back;
a pool whose connections are all busy answers the same 503 after its bounded wait."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator

import httpx
import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient

from driftwatch.local_processes import LocalRedisServer
from monitor.app import REQUEST_TIMEOUT_S, create_app
from monitor.monitor_settings import AlertSettings, MonitorSettings
from shared.http import install_error_handlers
from shared.keys import ALERT_LEADER
from shared.redis_pool import redis_client
from shared.settings_base import RedisSettings

RULE = {"metric": "stream_lag", "op": ">", "value": 10}
READS = ["/drift", "/performance", "/alerts", "/alerts/thresholds", "/drift/history"]


@pytest.fixture
def own_redis() -> Iterator[LocalRedisServer]:
    """A redis-server this test may stop and start again on the same port."""
    with LocalRedisServer() as server:
        yield server


def _answers(client: TestClient) -> dict[str, int]:
    statuses = {path: client.get(path).status_code for path in READS}
    statuses["PUT rule"] = client.put("/alerts/thresholds/Lag", json=RULE).status_code
    return statuses


def test_monitor_answers_503_while_redis_is_down_and_recovers(own_redis: LocalRedisServer) -> None:
    with TestClient(create_app(MonitorSettings(REDIS_URL=own_redis.url))) as client:
        before = _answers(client)
        assert all(status < 500 for status in before.values()), before

        own_redis.stop()
        for path in READS:
            response = client.get(path)
            assert response.status_code == 503, (path, response.text)
            assert response.headers["retry-after"] == "1"
            assert response.json()["detail"].startswith("redis unavailable")
        put = client.put("/alerts/thresholds/Lag", json=RULE)
        assert put.status_code == 503 and "redis unavailable" in put.json()["detail"]

        own_redis.start()  # same port, as a restarted Redis or a failed-over address would be
        deadline = time.monotonic() + 30
        while (after := _answers(client)) != before:
            assert time.monotonic() < deadline, f"still {after} (before the outage {before})"
            time.sleep(0.1)


async def test_a_saturated_pool_is_a_503_after_its_bounded_wait(own_redis: LocalRedisServer) -> None:
    settings = RedisSettings(
        REDIS_URL=own_redis.url, DRIFTWATCH_REDIS_MAX_CONNECTIONS=2, DRIFTWATCH_REDIS_POOL_TIMEOUT_S=0.2
    )
    client = redis_client(settings, socket_timeout_s=10)
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/block")
    async def block() -> None:
        await client.blpop(["never-pushed"], timeout=3)

    @app.get("/read")
    async def read() -> None:
        await client.get("anything")

    observer = redis.Redis.from_url(own_redis.url)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as http:
        blockers = [asyncio.create_task(http.get("/block")) for _ in range(2)]
        # Both pooled connections are taken once Redis sees two blocked clients.
        deadline = time.monotonic() + 10
        while int(observer.info("clients")["blocked_clients"]) < 2:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        saturated = await http.get("/read")
        assert saturated.status_code == 503
        assert saturated.json() == {"detail": "redis connection pool saturated"}
        assert saturated.headers["retry-after"] == "1"
        observer.lpush("never-pushed", "a", "b")  # release the blockers
        assert [r.status_code for r in await asyncio.gather(*blockers)] == [200, 200]
        assert (await http.get("/read")).status_code == 200
    observer.close()
    await client.aclose()


def test_reads_that_take_every_pooled_connection_leave_readiness_and_the_alert_lease_alone(
    own_redis: LocalRedisServer,
) -> None:
    """2,000 concurrent reads once made /readyz say ``redis: false`` (so every replica would leave
    service at its busiest) and the alert leader miss its renewals: both shared the reads' pool."""
    settings = MonitorSettings(
        REDIS_URL=own_redis.url, DRIFTWATCH_REDIS_MAX_CONNECTIONS=2, DRIFTWATCH_REDIS_POOL_TIMEOUT_S=0.2,
        alerts=AlertSettings(leader_ttl_s=0.6),
    )
    app = create_app(settings)
    observer = redis.Redis.from_url(own_redis.url)
    with TestClient(app) as client:
        deadline = time.monotonic() + 10
        while (owner := observer.get(ALERT_LEADER)) is None:  # this replica leads
            assert time.monotonic() < deadline
            time.sleep(0.05)
        blockers = [client.portal.start_task_soon(app.state.redis.blpop, ["never-pushed"], 3) for _ in range(2)]

        def blocked() -> int:
            return sum(1 for c in observer.client_list() if c["cmd"] == "blpop")

        while blocked() < 2:  # both request connections are held now
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert client.get("/drift").status_code == 503  # the reads' pool is saturated...
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["redis"] is True, ready.text  # ...readiness is not
        renewed_until = time.monotonic() + 1.5  # 2.5 TTLs of saturation: the lease lives only if renewed
        while time.monotonic() < renewed_until:
            assert observer.get(ALERT_LEADER) == owner
            time.sleep(0.05)
        observer.lpush("never-pushed", "a", "b")
        for blocker in blockers:
            blocker.result(timeout=10)
    observer.close()


def test_a_read_while_redis_is_stalled_is_a_503_after_the_reads_own_timeout(own_redis: LocalRedisServer) -> None:
    """Redis frozen (SIGSTOP, as a host that stops answering): a read gives up after the reads' pool's
    own command timeout. It was 5 s + DRIFTWATCH_READ_BLOCK_MS (the consumers' blocking read, which has
    its own pool): 10 s here, and past 10 s for a read that first waited for a pooled connection."""
    settings = MonitorSettings(REDIS_URL=own_redis.url, DRIFTWATCH_READ_BLOCK_MS=5_000)
    with TestClient(create_app(settings)) as client:
        assert client.get("/drift").status_code == 200
        pid = own_redis.pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            response = client.get("/drift")
            waited = time.monotonic() - started
        finally:
            os.kill(pid, signal.SIGCONT)
        assert response.status_code == 503 and "Timeout" in response.json()["detail"], response.text
        assert waited < REQUEST_TIMEOUT_S + 1.5, waited
        assert client.get("/drift").status_code == 200  # and it answers again as soon as Redis does
