"""Monitor ingest benchmark: events/s the consumer handles vs the raw XREADGROUP + XACK rate.

    .venv/bin/python benchmarks/ingest.py [--events 100000] [--features 64] [--read-count 500] [--cluster]

One private redis-server, one run. The streams are pre-filled with the same
prediction events (64 float32 features by default) for both measurements:

- raw: XREADGROUP (COUNT read-count) + XACK in a loop, nothing else, on its own group;
- monitor: ``StreamConsumer.step`` in a loop on the ``monitor`` group: the
  read, the vectorised decode, the ingest Lua script (window and join state),
  and the XACK. Window reports are not part of it (they run once per window).

It then splits the monitor's time into its parts (read+ack, decode, Lua) by
timing each on its own, so a shortfall names its cause. Targets (issue #4):
monitor >= 50% of raw, and >= 50,000 events/s at 64 features.

``--cluster`` measures the same two rates again on a local Redis Cluster (3
masters, 3 replicas, ``redis-cli --cluster create``) through redis-py's
cluster client, in the same run, and prints cluster / single-server ratios.
One model's stream and state live in one slot, so one model's ingest runs on
one master either way; a cluster spreads models, not one model's events.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import numpy as np
import redis.asyncio as aioredis

from driftwatch.local_cluster import LocalRedisCluster
from driftwatch.local_processes import LocalRedisServer
from monitor.consumer import StreamConsumer
from monitor.window_state import WindowState
from monitor.windows import WindowPolicy
from shared.events import decode_predictions, encode_predictions
from shared.ids import new_prediction_ids
from shared.keys import Keys
from shared.redis_connection import connect

RAW_GROUP = "raw-bench"


async def fill(client: aioredis.Redis, keys: Keys, n: int, features: int) -> None:
    rng = np.random.default_rng(0)
    for start in range(0, n, 5_000):
        m = min(5_000, n - start)
        x = rng.integers(0, 17, size=(m, features)).astype(np.float32)
        classes = rng.integers(0, 10, m).astype(np.int64)
        probs = np.eye(10, dtype=np.float32)[classes]
        ids = new_prediction_ids(m, int(time.time() * 1000))
        entries = encode_predictions(ids, int(time.time() * 1000), keys.model, "1", x, classes, probs)
        async with client.pipeline(transaction=False) as pipe:
            for fields in entries:
                pipe.xadd(keys.predictions, fields)
            await pipe.execute()


async def raw_rate(client: aioredis.Redis, keys: Keys, n: int, count: int) -> float:
    await client.xgroup_create(keys.predictions, RAW_GROUP, id="0")
    done = 0
    started = time.perf_counter()
    while done < n:
        response = await client.xreadgroup(RAW_GROUP, "raw", {keys.predictions: ">"}, count=count)
        entries = response[0][1]
        await client.xack(keys.predictions, RAW_GROUP, *[i for i, _ in entries])
        done += len(entries)
    return n / (time.perf_counter() - started)


async def monitor_rate(client: aioredis.Redis, keys: Keys, n: int, count: int) -> tuple[float, StreamConsumer]:
    state = WindowState(client, keys, WindowPolicy(), retention_s=3_600)
    consumer = StreamConsumer(client, keys, state, consumer="bench", read_count=count, block_ms=10,
                              claim_idle_ms=60_000, max_deliveries=5)
    await consumer.ensure_groups()
    started = time.perf_counter()
    while consumer.stats.predictions < n:
        await consumer.step()
    elapsed = time.perf_counter() - started
    await consumer.drop_read_ahead()
    return n / elapsed, consumer


async def parts(client: aioredis.Redis, keys: Keys, n: int, count: int) -> dict[str, float]:
    """Seconds per event of each part, each timed alone on the same entries."""
    entries: list[tuple[bytes, dict[bytes, bytes]]] = []
    last = "-"
    while len(entries) < n:
        chunk = await client.xrange(keys.predictions, min=last, count=count + 1)
        chunk = chunk[1:] if last != "-" else chunk
        if not chunk:
            break
        entries += chunk
        last = chunk[-1][0]
    batches = [entries[i : i + count] for i in range(0, len(entries), count)]
    t0 = time.perf_counter()
    decoded = [decode_predictions([f for _, f in b]) for b in batches]
    t_decode = time.perf_counter() - t0
    fresh = Keys(keys.model + "-parts")  # a fresh state, so every row is new as in the real run
    state = WindowState(client, fresh, WindowPolicy(), retention_s=3_600)
    t0 = time.perf_counter()
    for batch, raw in zip(decoded, batches, strict=True):
        await state.ingest_predictions(batch, [f[b"x"] for _, f in raw])
    t_lua = time.perf_counter() - t0
    t0 = time.perf_counter()
    for batch, raw in zip(decoded, batches, strict=True):
        state.prediction_call(batch, [f[b"x"] for _, f in raw], ordinal=1)
    t_args = time.perf_counter() - t0
    assert int(await client.get(fresh.for_version(decoded[0].model_versions[0]).ingested)) == len(entries)
    m = len(entries)
    return {"decode": t_decode / m, "lua (incl. args)": t_lua / m, "args only": t_args / m}


async def rates_on_cluster(events: int, features: int, count: int) -> tuple[float, float]:
    """Raw and monitor rates on a fresh local cluster, through the services' own client factory."""
    with LocalRedisCluster() as cluster:
        client = connect(cluster.url)
        keys = Keys("bench")
        await fill(client, keys, events, features)
        raw = await raw_rate(client, keys, events, count)
        ours, _ = await monitor_rate(client, keys, events, count)
        await client.aclose()
    return raw, ours


async def main(events: int, features: int, count: int, cluster: bool) -> None:
    with LocalRedisServer() as server:
        client = aioredis.Redis.from_url(server.url)
        keys = Keys("bench")
        await fill(client, keys, events, features)
        raw = await raw_rate(client, keys, events, count)
        ours, consumer = await monitor_rate(client, keys, events, count)
        split = await parts(client, keys, min(events, 20_000), count)
        await client.aclose()
    on_cluster = await rates_on_cluster(events, features, count) if cluster else None
    print(f"events={events} features={features} read_count={count}")
    print(f"raw XREADGROUP+XACK      {raw:>10,.0f} events/s")
    print(f"monitor (decode+Lua+ack) {ours:>10,.0f} events/s   ratio {ours / raw:.3f} of raw")
    print(f"targets: >= 0.50 of raw: {'yes' if ours >= 0.5 * raw else 'NO'}; "
          f">= 50,000 events/s: {'yes' if ours >= 50_000 else 'NO'}")
    raw_us = 1e6 / raw
    print(f"per event: raw read+ack {raw_us:.1f} us; monitor {1e6 / ours:.1f} us, of which (timed alone):")
    for name, seconds in split.items():
        print(f"  {name:<18} {seconds * 1e6:6.1f} us")
    assert consumer.stats.duplicates == 0
    if on_cluster is not None:
        cluster_raw, cluster_ours = on_cluster
        print("redis cluster (3 masters + 3 replicas), same events, same run:")
        print(f"  raw XREADGROUP+XACK      {cluster_raw:>10,.0f} events/s   {cluster_raw / raw:.2f}x single")
        print(f"  monitor (decode+Lua+ack) {cluster_ours:>10,.0f} events/s   {cluster_ours / ours:.2f}x single")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--read-count", type=int, default=500)
    parser.add_argument("--cluster", action="store_true", help="also measure on a local Redis Cluster")
    args = parser.parse_args()
    asyncio.run(main(args.events, args.features, args.read_count, args.cluster))
