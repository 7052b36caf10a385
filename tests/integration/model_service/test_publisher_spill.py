"""The publisher against a real redis-server that goes away: spill, replay in order, exactly once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from driftwatch.local_processes import LocalRedisServer
from model_service.publisher import EventPublisher
from model_service.spill import SpillFile, encode_batch, open_spill_files

STREAM = "driftwatch:{test}:predictions"
pytestmark = pytest.mark.timeout(60)


def entry(i: int) -> tuple[str, dict[bytes, bytes]]:
    return STREAM, {b"id": str(i).encode(), b"x": bytes([i % 256]) * 16}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LocalRedisServer]:
    (tmp_path / "redis").mkdir()
    with LocalRedisServer(data_dir=tmp_path / "redis", appendonly=True) as srv:
        yield srv


@pytest.fixture
async def client(server: LocalRedisServer) -> AsyncIterator[aioredis.Redis]:
    c = aioredis.Redis.from_url(server.url, socket_timeout=1.0, socket_connect_timeout=1.0)
    yield c
    await c.aclose()


async def ids_on_stream(client: aioredis.Redis) -> list[int]:
    return [int(f[b"id"]) for _, f in await client.xrange(STREAM)]


async def wait_for(cond, timeout_s: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    """Poll ``cond`` until true. A check that cannot reach Redis is "not yet": after a
    restart the test's own client may still hold a connection to the old process
    (redis-py drops it on that first error and connects afresh on the next call)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            if await cond():
                return
        except (RedisConnectionError, RedisTimeoutError):
            pass
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def make(client: aioredis.Redis, spill: SpillFile | None, **kw) -> EventPublisher:  # type: ignore[no-untyped-def]
    return EventPublisher(client, maxlen=1_000_000, spill=spill, batch_size=50, backoff_max_s=0.2, **kw)


async def test_redis_down_spills_then_replays_in_order_exactly_once(
    server: LocalRedisServer, client: aioredis.Redis, tmp_path: Path
) -> None:
    spill = SpillFile(tmp_path / "p.spill", max_bytes=1 << 24)
    publisher = make(client, spill)
    publisher.start()
    publisher.submit([entry(i) for i in range(100)])
    await wait_for(lambda: _len_is(client, 100))
    server.stop()
    for i in range(100, 400, 10):
        publisher.submit([entry(j) for j in range(i, i + 10)])
        await asyncio.sleep(0.01)
    await wait_for(_true(lambda: spill.pending_events == 300))
    assert publisher.stats.spilling
    server.start()
    for i in range(400, 500, 10):  # newer events, while the file replays
        publisher.submit([entry(j) for j in range(i, i + 10)])
    await wait_for(lambda: _len_is(client, 500))
    await publisher.close()
    assert await ids_on_stream(client) == list(range(500))
    assert spill.size_bytes == 0 and publisher.stats.dropped == 0
    assert publisher.stats.spilled >= 300 and publisher.stats.replayed == publisher.stats.spilled


async def test_a_batch_replayed_after_an_ambiguous_write_lands_once(client: aioredis.Redis) -> None:
    publisher = make(client, None)
    from model_service.publisher import _Batch

    batch = _Batch(b"0123456789abcdef", [entry(i) for i in range(20)])
    assert await publisher._write(batch) is True
    assert await publisher._write(batch) is False  # the retry after "connection lost after EXEC"
    assert len(await ids_on_stream(client)) == 20


async def test_shutdown_with_redis_down_spills_and_the_next_start_replays(
    server: LocalRedisServer, client: aioredis.Redis, tmp_path: Path
) -> None:
    server.stop()
    own, orphans = open_spill_files(tmp_path, "m", max_bytes=1 << 24)
    publisher = make(client, own, orphan_spills=orphans)
    publisher.start()
    publisher.submit([entry(i) for i in range(120)])
    await publisher.close(timeout_s=3)
    assert publisher.stats.spilled == 120
    server.start()
    own, orphans = open_spill_files(tmp_path, "m", max_bytes=1 << 24)
    assert own.pending_events == 120 and orphans == []
    publisher = make(client, own)
    publisher.start()
    publisher.submit([entry(i) for i in range(120, 130)])
    await wait_for(lambda: _len_is(client, 130))
    await publisher.close()
    assert await ids_on_stream(client) == list(range(130))


async def test_a_torn_tail_is_cut_and_a_replayed_batch_already_in_redis_is_skipped(
    client: aioredis.Redis, tmp_path: Path
) -> None:
    path = tmp_path / "t.spill"
    spill = SpillFile(path, max_bytes=1 << 24)
    first = [entry(i) for i in range(10)]
    spill.append(encode_batch(b"A" * 16, first), 10)
    spill.append(encode_batch(b"B" * 16, [entry(i) for i in range(10, 20)]), 10)
    spill.close()
    with path.open("ab") as f:
        f.write(encode_batch(b"C" * 16, [entry(99)])[:-3])  # died mid-append
    from model_service.publisher import _Batch

    await make(client, None)._write(_Batch(b"A" * 16, first))  # batch A reached Redis before the crash
    spill = SpillFile(path, max_bytes=1 << 24)
    assert spill.pending_events == 20
    publisher = make(client, spill)
    publisher.start()
    await wait_for(_true(lambda: not spill.has_pending))
    await publisher.close()
    assert await ids_on_stream(client) == list(range(20))
    assert publisher.stats.duplicate_batches == 1


async def test_past_the_spill_bound_events_are_dropped_and_counted(
    server: LocalRedisServer, client: aioredis.Redis, tmp_path: Path
) -> None:
    server.stop()
    spill = SpillFile(tmp_path / "b.spill", max_bytes=1 << 16)
    publisher = make(client, spill)
    publisher.start()
    for i in range(0, 3000, 50):
        publisher.submit([entry(j) for j in range(i, i + 50)])
        await asyncio.sleep(0)
    await publisher.close(timeout_s=3)
    stats = publisher.stats
    assert stats.dropped_spill_full > 0
    assert stats.spilled + stats.dropped == 3000
    assert spill.size_bytes <= 1 << 16


async def _len_is(client: aioredis.Redis, n: int) -> bool:
    return int(await client.xlen(STREAM)) == n


def _true(fn):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return bool(fn())

    return check


async def test_a_writer_that_raises_is_restarted_and_loses_nothing(client: aioredis.Redis) -> None:
    """A non-retryable write error (here the stream key holds a string: WRONGTYPE) used to
    end the writer task silently, leaving every later event queued forever."""
    await client.set(STREAM, "not a stream")
    publisher = make(client, None)
    publisher.start()
    publisher.submit([entry(i) for i in range(60)])
    await wait_for(_true(lambda: publisher.health.failures >= 2))
    assert publisher.health.last_error is not None and "holds a string, not a stream" in publisher.health.last_error
    assert await client.get(STREAM) == b"not a stream"  # nothing written, no marker taken for a write
    await client.delete(STREAM)
    publisher.submit([entry(i) for i in range(60, 100)])
    await wait_for(lambda: _len_is(client, 100))
    assert publisher.running
    await publisher.close()
    assert await ids_on_stream(client) == list(range(100))  # in order, each once
    assert publisher.stats.dropped == 0 and publisher.stats.duplicate_batches == 0


async def test_a_slow_redis_sends_the_backlog_through_the_spill_file_in_order(
    server: LocalRedisServer, client: aioredis.Redis, tmp_path: Path
) -> None:
    """Redis slow, not down: writes are held by CLIENT PAUSE (they answer, late, and never
    time out), the queue passes its high-water mark, and the publisher turns to the spill
    file instead of letting memory grow; once Redis is quick again the file replays in order."""
    spill = SpillFile(tmp_path / "slow.spill", max_bytes=1 << 24)
    publisher = make(client, spill, high_water=100)
    publisher.start()
    publisher.submit([entry(i) for i in range(50)])
    await wait_for(lambda: _len_is(client, 50))
    admin = aioredis.Redis.from_url(server.url)
    await admin.execute_command("CLIENT", "PAUSE", "700", "WRITE")  # writes wait 0.7 s, reads answer
    try:
        for i in range(50, 1_000, 50):
            publisher.submit([entry(j) for j in range(i, i + 50)])
            assert publisher.queued <= 1_000
        await wait_for(_true(lambda: publisher.stats.spilled > 0))
        assert publisher.stats.failed_writes == 0  # the high-water path: no write failed
        await wait_for(lambda: _len_is(client, 1_000))
    finally:
        await admin.aclose()
    await publisher.close()
    assert await ids_on_stream(client) == list(range(1_000))  # in order, each once
    assert publisher.stats.replayed == publisher.stats.spilled and publisher.stats.dropped == 0
    assert spill.size_bytes == 0


async def test_the_dedup_marker_lives_for_its_ttl_and_then_a_retry_writes_again(client: aioredis.Redis) -> None:
    """Exactly once holds while the batch marker lives (DRIFTWATCH_PUBLISH_DEDUP_TTL_S); the marker
    has that TTL, so Redis does not keep one key per batch forever."""
    from model_service.publisher import _Batch
    from shared.keys import Keys

    publisher = make(client, None, dedup_ttl_s=1)
    batch = _Batch(b"fedcba9876543210", [entry(i) for i in range(5)])
    assert await publisher._write(batch) is True
    marker = Keys.of_stream(STREAM).publish_batch(batch.id.hex())
    assert 0 < await client.pttl(marker) <= 1_000
    assert await publisher._write(batch) is False  # within the TTL: a duplicate
    await wait_for(lambda: _gone(client, marker), timeout_s=5)
    assert await publisher._write(batch) is True  # past it, the same batch id writes again
    assert len(await ids_on_stream(client)) == 10


async def _gone(client: aioredis.Redis, key: str) -> bool:
    return not await client.exists(key)


class SlowDisk(SpillFile):
    """A spill file whose appends take 5 ms, as an fsync does on a busy disk."""

    def append(self, record: bytes, n_events: int) -> bool:
        time.sleep(0.005)
        return super().append(record, n_events)


async def test_a_trickle_spilled_while_redis_is_away_makes_few_records_and_replays_in_order(
    server: LocalRedisServer, client: aioredis.Redis, tmp_path: Path
) -> None:
    """Each round of spilling takes what is queued when it starts: events arriving during its
    appends wait for the next round, so a trickle becomes one record per round, not one per
    append (each record is one Redis round trip at replay)."""
    server.stop()
    spill = SlowDisk(tmp_path / "t.spill", max_bytes=1 << 24)
    publisher = make(client, spill)
    publisher.start()
    for i in range(400):  # ~1 event a millisecond for about half a second
        publisher.submit([entry(i)])
        await asyncio.sleep(0.001)
    await wait_for(_true(lambda: publisher.queued == 0))
    assert spill.pending_events == 400
    assert spill.pending_batches <= 40, spill.pending_batches  # ~one per 50 ms round; was ~one per append
    server.start()
    await wait_for(lambda: _len_is(client, 400))
    assert await ids_on_stream(client) == list(range(400))
    await publisher.close()
