"""KServe's inference logger while a real redis-server is stopped and started again mid-traffic.

The logger sends each half once and never again, so every half answered 2xx
must end, with its other half, as predictions the monitor counts exactly
once: pairs whose halves lie on both sides of the outage, on two replicas, or
both inside it; and halves still held when a replica stops while Redis is away.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
from fastapi.testclient import TestClient

from driftwatch.local_processes import LocalRedisServer
from monitor.assembly import assemble_monitor
from monitor.monitor_settings import MonitorSettings
from shared.ids import internal_prediction_id
from shared.keys import Keys
from tests.integration.model_service.registered import ingest_service, register, stream_ids, wait_until
from tests.integration.model_service.test_kserve import CE_TIME_MS, V2_REQUEST, V2_RESPONSE, headers, iris
from tests.support.polling import until

pytestmark = [pytest.mark.fault, pytest.mark.timeout(120)]

IRIS = Keys("sklearn-iris")
BODIES = {"request": V2_REQUEST, "response": V2_RESPONSE}


@pytest.fixture
def aof_redis(tmp_path: Path) -> Iterator[LocalRedisServer]:
    """A redis-server that keeps its data over a stop and start (pending halves from before the outage)."""
    (tmp_path / "redis").mkdir()
    with LocalRedisServer(data_dir=tmp_path / "redis", appendonly=True) as server:
        yield server


def send(client: TestClient, i: int, kind: str) -> str:
    """One half of inference ``id-i``; its answer's status (the test fails on anything but a 200)."""
    response = client.post("/kserve", content=json.dumps(BODIES[kind]).encode(), headers=headers(kind, ce_id=f"id-{i}"))
    assert response.status_code == 200, (i, kind, response.text)
    return str(response.json()["status"])


def kinds(i: int) -> tuple[str, str]:
    return ("request", "response") if i % 2 else ("response", "request")


async def test_every_pair_answered_during_a_redis_outage_is_counted_once(
    aof_redis: LocalRedisServer, tmp_path: Path
) -> None:
    client = aioredis.Redis.from_url(aof_redis.url)
    await register(client, iris())
    settings = MonitorSettings(REDIS_URL=aof_redis.url, DRIFTWATCH_MODEL_NAME="sklearn-iris",
                               DRIFTWATCH_WINDOW_SIZE=10_000, DRIFTWATCH_READ_BLOCK_MS=50)
    monitor = assemble_monitor(client, settings, "test-consumer")
    monitor.start()
    statuses: dict[str, int] = {}

    def note(status: str) -> None:
        statuses[status] = statuses.get(status, 0) + 1

    try:
        with ingest_service(aof_redis.url) as a, ingest_service(aof_redis.url) as b:
            for i in range(0, 20):  # before: 0-9 complete, 10-19 only their first half (waits in Redis)
                note(send(a if i % 3 else b, i, kinds(i)[0]))
                if i < 10:
                    note(send(b if i % 3 else a, i, kinds(i)[1]))
            aof_redis.stop()
            for i in range(10, 50):
                first, second = kinds(i)
                if i < 20:  # the other half is in Redis: held here until it answers
                    note(send(a, i, second))
                elif i < 30:  # both halves on one replica during the outage: paired in memory
                    note(send(b, i, first))
                    note(send(b, i, second))
                elif i < 40:  # on two replicas: both held, they meet in Redis afterwards
                    note(send(a, i, first))
                    note(send(b, i, second))
                else:  # the first half now, the second once Redis is back
                    note(send(b, i, first))
            assert a.get("/readyz").json()["kserve"]["held"] > 0
            aof_redis.start()
            for i in range(40, 60):  # after: 40-49 complete the outage's halves, 50-59 whole pairs
                if i >= 50:
                    note(send(a, i, kinds(i)[0]))
                note(send(a if i % 2 else b, i, kinds(i)[1]))
            wanted = [internal_prediction_id(f"id-{i}", CE_TIME_MS) for i in range(60)]
            r = redis.Redis.from_url(aof_redis.url)
            wait_until(lambda: set(stream_ids(r, IRIS.predictions)) >= set(wanted), timeout_s=30)
            for service in (a, b):
                wait_until(lambda s=service: s.get("/readyz").json()["kserve"]["held"] == 0)
        stats = monitor.consumer.stats
        await until(lambda: stats.predictions >= 60, what="the monitor counted 60 predictions")
        ids = stream_ids(r, IRIS.predictions)
        r.close()
        assert sorted(ids) == sorted(wanted)  # each pair once on the stream
        await asyncio.sleep(0.2)  # a late duplicate would be counted by now
        assert (stats.predictions, stats.duplicates) == (60, 0)
        assert int(await client.get(IRIS.for_version("1").ingested)) == 60
        assert statuses["held"] >= 30 and statuses["paired"] >= 20, statuses
        assert not redis.Redis.from_url(aof_redis.url).keys("*kserve:pending*")
    finally:
        await monitor.stop()
        await client.aclose()


async def test_halves_held_at_shutdown_are_paired_after_the_next_start(
    aof_redis: LocalRedisServer, tmp_path: Path
) -> None:
    client = aioredis.Redis.from_url(aof_redis.url)
    await register(client, iris())
    await client.aclose()
    with ingest_service(aof_redis.url) as a:
        assert send(a, 0, "request") == "waiting"  # warms the model cache
        aof_redis.stop()
        for i in range(1, 11):
            assert send(a, i, kinds(i)[0]) == "held"
    held = list((tmp_path / "spill").glob("*-kserve*.spill"))
    assert held and held[0].stat().st_size > 0, "the held halves were not kept at shutdown"
    aof_redis.start()
    with ingest_service(aof_redis.url) as b:
        for i in range(0, 11):
            send(b, i, kinds(i)[1] if i else "response")
        r = redis.Redis.from_url(aof_redis.url)
        wanted = {internal_prediction_id(f"id-{i}", CE_TIME_MS) for i in range(11)}
        wait_until(lambda: set(stream_ids(r, IRIS.predictions)) == wanted, timeout_s=30)
        wait_until(lambda: b.get("/readyz").json()["kserve"]["held"] == 0)
        assert sorted(stream_ids(r, IRIS.predictions)) == sorted(wanted)
        r.close()
    assert all(p.stat().st_size == 0 for p in (tmp_path / "spill").glob("*-kserve*.spill"))


def test_a_full_hold_is_a_503_naming_the_limit_and_counted(aof_redis: LocalRedisServer, tmp_path: Path) -> None:
    asyncio.run(_register(aof_redis.url))
    with ingest_service(aof_redis.url, DRIFTWATCH_KSERVE_HOLD_MAX_BYTES=1 << 16) as a:
        assert send(a, 0, "request") == "waiting"
        aof_redis.stop()
        i, answer = 1, None
        while True:
            response = a.post("/kserve", content=json.dumps(V2_REQUEST).encode(),
                              headers=headers("request", ce_id=f"id-{i}"))
            if response.status_code != 200:
                answer = response
                break
            i += 1
            assert i < 10_000, "the hold never filled"
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"
        assert "DRIFTWATCH_KSERVE_HOLD_MAX_BYTES" in answer.json()["detail"]
        detail = a.get("/readyz").json()["kserve"]
        assert detail["held"] == i - 1 and detail["refused_hold_full"] == 1
        assert detail["held_bytes"] <= 1 << 16
        aof_redis.start()


async def _register(url: str) -> None:
    client = aioredis.Redis.from_url(url)
    await register(client, iris())
    await client.aclose()
