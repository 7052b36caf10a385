"""Join state memory per prediction, measured with ``MEMORY USAGE`` on a real redis-server.

The README's sizing table is derived from these figures: the join state
(kept for ``DRIFTWATCH_JOIN_RETENTION_S``) must cost at most 24 bytes a
prediction, against ~93 for the layout it replaced (one hash field per hex
id in one hash per hour), which this test rebuilds beside it for comparison.
"""

from __future__ import annotations

import os
import time

import numpy as np
import redis.asyncio as aioredis

from monitor.window_state import WindowState
from monitor.windows import WindowPolicy
from shared.events import PredictionBatch, encode_predictions
from shared.keys import Keys

N = 20_000
RATE = 100  # events/s: the ids' stamps are 10 ms apart, as from a steady stream
SHARDS = 4_096  # the default, sized for about this rate (README "Sizing")
BATCH = 500
MAX_BYTES_PER_PREDICTION = 24


def steady_ids(n: int, t0_ms: int) -> tuple[list[str], np.ndarray]:
    stamps = t0_ms + np.arange(n, dtype=np.int64) * (1000 // RATE)
    noise = os.urandom(10 * n).hex()
    return [f"{t:012x}{noise[i * 20 : (i + 1) * 20]}" for i, t in enumerate(stamps.tolist())], stamps


async def memory_of(client: aioredis.Redis, pattern: str) -> tuple[int, int, set[bytes]]:
    """Bytes (exact: every field sampled), key count and encodings of the keys matching ``pattern``."""
    total, count, encodings = 0, 0, set()
    async for key in client.scan_iter(match=pattern, count=1_000):
        if await client.type(key) == b"hash":
            encodings.add(await client.object("encoding", key))
        total += await client.memory_usage(key, samples=0)
        count += 1
    return total, count, encodings


async def test_join_state_costs_at_most_24_bytes_a_prediction(aredis: aioredis.Redis) -> None:
    keys = Keys("join-memory")
    rng = np.random.default_rng(7)
    t0 = int(time.time() * 1000) - N * 1000 // RATE
    ids, stamps = steady_ids(N, t0)
    classes = rng.integers(0, 10, N)
    probs = np.eye(10, dtype=np.float32)[classes]
    features = rng.normal(size=(N, 4)).astype(np.float32)
    state = WindowState(aredis, keys, WindowPolicy(step=1_000, size=1_000), retention_s=7 * 24 * 3600,
                        join_shards=SHARDS)
    batches = [slice(i, i + BATCH) for i in range(0, N, BATCH)]
    for s in batches:
        batch = PredictionBatch(ids[s], stamps[s], ["1"] * len(ids[s]), features[s], classes[s], probs[s])
        assert (await state.ingest_predictions(batch, [row.tobytes() for row in features[s]])).new == len(ids[s])
    used, hashes, encodings = await memory_of(aredis, keys.join_state_pattern)

    # A redelivery of a whole batch is a no-op: nothing counted, nothing stored.
    again = PredictionBatch(ids[:BATCH], stamps[:BATCH], ["1"] * BATCH, features[:BATCH], classes[:BATCH],
                            probs[:BATCH])
    assert (await state.ingest_predictions(again, [row.tobytes() for row in features[:BATCH]])).new == 0
    assert int(await aredis.get(keys.for_version("1").ingested)) == N
    assert (await memory_of(aredis, keys.join_state_pattern))[0] == used

    # The layout it replaced: one field per hex id, "window:class", in one hash per hour.
    old = Keys("join-memory-before")
    async with aredis.pipeline(transaction=False) as pipe:
        for s in batches:
            for pid, t, c, w in zip(ids[s], stamps[s].tolist(), classes[s].tolist(), range(s.start, s.stop),
                                    strict=True):
                pipe.hset(f"{old.prefix}:join:{t // 3_600_000}:pred", pid, f"{w // 1_000}:{c}")
        await pipe.execute()
    before, _, _ = await memory_of(aredis, old.join_state_pattern)

    print(f"\njoin state for {N:,} predictions at {RATE}/s: before {before / N:.1f} bytes/prediction, "
          f"after {used / N:.1f} bytes/prediction ({hashes} keys, encodings {sorted(encodings)})")
    assert encodings == {b"listpack"}
    assert used / N <= MAX_BYTES_PER_PREDICTION
    assert before / N > 3 * used / N


async def test_stream_entry_of_a_64_feature_model_costs_about_442_bytes(aredis: aioredis.Redis) -> None:
    """The stream's share of the sizing table: bytes an entry costs, up to the stream's cap."""
    keys = Keys("stream-memory")
    n = 5_000
    rng = np.random.default_rng(3)
    x = rng.integers(0, 17, size=(n, 64)).astype(np.float32)
    classes = rng.integers(0, 10, n)
    probs = rng.dirichlet(np.ones(10), n).astype(np.float32)
    ids, _ = steady_ids(n, int(time.time() * 1000))
    async with aredis.pipeline(transaction=False) as pipe:
        for entry in encode_predictions(ids, int(time.time() * 1000), keys.model, "1", x, classes, probs):
            pipe.xadd(keys.predictions, entry)
        await pipe.execute()
    per_entry = await aredis.memory_usage(keys.predictions, samples=0) / n
    print(f"\nstream: {per_entry:.0f} bytes per entry (64 features, 10 classes)")
    assert 300 < per_entry < 600
