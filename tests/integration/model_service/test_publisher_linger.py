"""Light traffic still leaves in batches: the publisher lingers between writes."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from model_service.publisher import EventPublisher

STREAM = "driftwatch:{test}:predictions"


async def writes(client: aioredis.Redis) -> int:
    """Scripted writes Redis has served (the publisher writes each batch with one EVALSHA)."""
    stats = await client.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k in ("cmdstat_evalsha", "cmdstat_eval"))


async def trickle(client: aioredis.Redis, linger_s: float) -> int:
    await client.config_resetstat()
    publisher = EventPublisher(client, maxlen=100_000, batch_size=256, linger_s=linger_s)
    publisher.start()
    for i in range(40):  # one event every 2 ms: a quiet service
        publisher.submit([(STREAM, {b"i": str(i).encode()})])
        await asyncio.sleep(0.002)
    await publisher.close()
    return await writes(client)


async def test_lingering_batches_a_trickle_without_losing_or_reordering(aredis: aioredis.Redis) -> None:
    eager = await trickle(aredis, 0.0)
    lingering = await trickle(aredis, 0.03)
    entries = [int(f[b"i"]) for _, f in await aredis.xrange(STREAM)]
    assert entries == list(range(40)) * 2  # both runs complete, in order
    assert eager >= 20  # a write per event or two
    assert lingering <= eager / 4
