"""The consumer loop's fault handling against a real redis-server: an entry whose
processing raises every time, pending entries after a restart, trimmed pending entries."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import redis.asyncio as aioredis

from monitor.assembly import MonitorParts, assemble_monitor
from monitor.monitor_settings import MonitorSettings
from shared.events import encode_predictions
from shared.keys import CONSUMER_GROUP
from tests.integration.monitor.helpers import eventually, publish_predictions, register

WINDOW = 100
MAX_DELIVERIES = 3
pytestmark = pytest.mark.timeout(60)


def settings(redis_url: str) -> MonitorSettings:
    return MonitorSettings(
        REDIS_URL=redis_url, DRIFTWATCH_WINDOW_SIZE=WINDOW, DRIFTWATCH_READ_BLOCK_MS=50,
        DRIFTWATCH_CLAIM_IDLE_MS=100, DRIFTWATCH_MAX_DELIVERIES=MAX_DELIVERIES, DRIFTWATCH_READ_COUNT=50,
    )


@pytest.fixture
async def worker(aredis: aioredis.Redis, redis_url: str, model_dir: Path) -> AsyncIterator[MonitorParts]:
    await register(aredis, model_dir)
    monitor = assemble_monitor(aredis, settings(redis_url), "consumer-a", stats_interval_s=0.2)
    monitor.start()
    yield monitor
    await monitor.stop()


def rows(n: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 17, size=(n, 64)).astype(np.float32)


async def test_an_entry_whose_processing_raises_every_time_is_dead_lettered_and_the_rest_flows(
    worker: MonitorParts, aredis: aioredis.Redis
) -> None:
    keys = worker.keys.for_version("1")
    await publish_predictions(aredis, keys, rows(30), np.zeros(30, dtype=np.int64))
    # Decodes fine, but its ingest fails every time (its id is not hex, so it has no join bucket).
    [bad] = encode_predictions(["zz" * 16], int(time.time() * 1000), keys.model, "1", rows(1),
                               np.zeros(1, dtype=np.int64), np.eye(10, dtype=np.float32)[[0]])
    bad_id = await aredis.xadd(keys.predictions, bad)
    await publish_predictions(aredis, keys, rows(30), np.zeros(30, dtype=np.int64))

    await eventually(lambda: worker.consumer.stats.predictions == 60)

    async def dead_lettered() -> bool:
        return await aredis.xlen(keys.dlq) == 1

    await eventually(dead_lettered, timeout_s=20)
    [(_, record)] = await aredis.xrange(keys.dlq)
    assert record[b"entry_id"] == bad_id
    assert f"delivered {MAX_DELIVERIES + 1} times".encode() in record[b"reason"]
    assert b"ValueError: prediction ids must be lowercase hex" in record[b"reason"]  # the error is kept as the reason
    assert (await aredis.xpending(keys.predictions, CONSUMER_GROUP))["pending"] == 0
    assert int(await aredis.get(keys.ingested)) == 60
    assert worker.consumer.stats.failed == MAX_DELIVERIES


async def test_readyz_stats_report_dlq_length_lag_and_rate(worker: MonitorParts, aredis: aioredis.Redis) -> None:
    keys = worker.keys.for_version("1")
    await aredis.xadd(keys.predictions, {b"v": b"1", b"id": b"broken"})
    await publish_predictions(aredis, keys, rows(WINDOW), np.zeros(WINDOW, dtype=np.int64))
    await eventually(lambda: worker.consumer.stats.predictions == WINDOW)

    async def refreshed() -> bool:  # a refresh after the last batch (one between batches shows some lag)
        snapshot = worker.stream_health.snapshot
        stream = snapshot.get("streams", {}).get("predictions", {})
        return snapshot.get("dlq_length") == 1 and stream.get("lag") == 0 and stream.get("pending") == 0

    await eventually(refreshed)
    health = worker.stream_health.snapshot
    assert health["lag_near_cap"] is False
    assert health["events_per_second"] is not None


async def test_a_restarted_consumer_processes_its_own_pending_entries_first(
    aredis: aioredis.Redis, redis_url: str, model_dir: Path
) -> None:
    _, keys = await register(aredis, model_dir)
    first = assemble_monitor(aredis, settings(redis_url), "consumer-a")
    await first.consumer.ensure_groups()
    await publish_predictions(aredis, keys, rows(40), np.zeros(40, dtype=np.int64))
    # Read but never processed: the process died right after XREADGROUP.
    await aredis.xreadgroup(CONSUMER_GROUP, "consumer-a", {keys.predictions: ">"}, count=40)
    await publish_predictions(aredis, keys, rows(20), np.zeros(20, dtype=np.int64))
    restarted = assemble_monitor(aredis, settings(redis_url).model_copy(update={"claim_idle_ms": 60_000}), "consumer-a")
    restarted.start()
    try:
        await eventually(lambda: restarted.consumer.stats.predictions == 60)
    finally:
        await restarted.stop()
    assert restarted.consumer.stats.claimed == 0  # its own entries, not claimed from anyone
    assert int(await aredis.get(keys.ingested)) == 60
    assert (await aredis.xpending(keys.predictions, CONSUMER_GROUP))["pending"] == 0
    await asyncio.sleep(0)


async def test_the_next_batch_is_read_before_this_one_is_processed_and_survives_a_stop(
    aredis: aioredis.Redis, redis_url: str, model_dir: Path
) -> None:
    _, keys = await register(aredis, model_dir)
    await publish_predictions(aredis, keys, rows(150), np.zeros(150, dtype=np.int64))
    first = assemble_monitor(aredis, settings(redis_url), "consumer-a")  # read count 50
    await first.consumer.ensure_groups()

    assert await first.consumer.step() == 50
    # The next 50 were delivered while the first 50 were stored and acked.
    assert int(await aredis.get(keys.ingested)) == 50
    assert (await aredis.xpending(keys.predictions, CONSUMER_GROUP))["pending"] == 50
    # Stopping with that read in flight: its entries stay pending for this consumer name.
    await first.consumer.drop_read_ahead()

    restarted = assemble_monitor(aredis, settings(redis_url).model_copy(update={"claim_idle_ms": 60_000}), "consumer-a")
    restarted.start()
    try:
        await eventually(lambda: restarted.consumer.stats.predictions == 100)
    finally:
        await restarted.stop()
    assert int(await aredis.get(keys.ingested)) == 150
    assert restarted.consumer.stats.duplicates == 0 and restarted.consumer.stats.claimed == 0
    assert (await aredis.xpending(keys.predictions, CONSUMER_GROUP))["pending"] == 0


@pytest.mark.parametrize("restarted_as", ["consumer-a", "consumer-b"])
async def test_pending_entries_trimmed_by_the_stream_cap_are_counted_as_trimmed_unprocessed(
    aredis: aioredis.Redis, redis_url: str, model_dir: Path, restarted_as: str
) -> None:
    """A consumer read 40 entries and died; the stream cap (MAXLEN) then trimmed them before
    anyone processed them. Its own restart (reading its pending list) or another consumer
    (XAUTOCLAIM) finds them gone: counted in trimmed_unprocessed, acked, never processed."""
    _, keys = await register(aredis, model_dir)
    await assemble_monitor(aredis, settings(redis_url), "consumer-a").consumer.ensure_groups()
    await publish_predictions(aredis, keys, rows(40), np.zeros(40, dtype=np.int64))
    await aredis.xreadgroup(CONSUMER_GROUP, "consumer-a", {keys.predictions: ">"}, count=40)
    fresh = encode_predictions([f"{i:032x}" for i in range(1, 21)], int(time.time() * 1000), keys.model, "1",
                               rows(20), np.zeros(20, dtype=np.int64), np.eye(10, dtype=np.float32)[[0] * 20])
    for entry in fresh:  # the publisher's cap, exact here: the stream keeps its newest 10
        await aredis.xadd(keys.predictions, entry, maxlen=10, approximate=False)
    assert await aredis.xlen(keys.predictions) == 10
    assert (await aredis.xpending(keys.predictions, CONSUMER_GROUP))["pending"] == 40

    monitor = assemble_monitor(aredis, settings(redis_url), restarted_as)
    monitor.start()
    try:
        await eventually(lambda: monitor.consumer.stats.predictions == 10 and monitor.consumer.stats.trimmed == 40)
    finally:
        await monitor.stop()
    assert (await aredis.xpending(keys.predictions, CONSUMER_GROUP))["pending"] == 0
    assert int(await aredis.get(keys.ingested)) == 10
    assert monitor.consumer.stats.dead_lettered == 0


async def test_an_undecodable_entry_handled_twice_is_dead_lettered_once(
    aredis: aioredis.Redis, redis_url: str, model_dir: Path
) -> None:
    """One consumer can hold the same entry twice: on a loaded machine XAUTOCLAIM takes back an
    entry it read ahead and has not processed yet (seen in tests/fault/test_fleet_faults.py, two
    DLQ records for one poison entry). The second handling acks nothing and writes nothing."""
    await register(aredis, model_dir)
    monitor = assemble_monitor(aredis, settings(redis_url), "consumer-a")  # not started: the test reads
    keys = monitor.keys.for_version("1")
    await monitor.consumer.ensure_groups()
    poison_id = await aredis.xadd(keys.predictions, {b"v": b"1", b"id": b"poison"})
    [(_, read)] = await aredis.xreadgroup(CONSUMER_GROUP, "consumer-a", {keys.predictions: ">"})

    await monitor.consumer.process_safely(keys.predictions, read)
    await monitor.consumer.process_safely(keys.predictions, read)  # the same delivery again

    [(_, record)] = await aredis.xrange(keys.dlq)
    assert record[b"entry_id"] == poison_id and record[b"stream"] == keys.predictions.encode()
    assert record[b"f:id"] == b"poison"  # the entry's own fields travel with it
    assert (await aredis.xpending(keys.predictions, CONSUMER_GROUP))["pending"] == 0
    assert monitor.consumer.stats.dead_lettered == 1
