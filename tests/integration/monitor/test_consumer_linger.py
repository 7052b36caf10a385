"""A slow stream is read in batches (``DRIFTWATCH_READ_LINGER_MS``), not one entry per read, and a
very slow one in fuller batches still (``DRIFTWATCH_READ_LINGER_SLOW_MS``).

Why it matters: one monitor watching 50 models at 20 events/s each made about
1,000 reads (and as many ingest scripts) a second, one entry each; the linger
cut the monitor's CPU by half (README "Many models on one monitor").
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import redis.asyncio as aioredis

from monitor.assembly import assemble_monitor
from monitor.monitor_settings import MonitorSettings
from tests.integration.monitor.helpers import eventually, holdout_rows, publish_predictions, register

EVENTS = 60


async def reads_for_a_trickle(
    aredis: aioredis.Redis, redis_url: str, model_dir: Path, linger_ms: int, slow_ms: int = 0
) -> int:
    """XREADGROUP calls the monitor made while ``EVENTS`` predictions arrived one every 25 ms."""
    await aredis.flushall()
    _, keys = await register(aredis, model_dir)
    settings = MonitorSettings(REDIS_URL=redis_url, DRIFTWATCH_WINDOW_SIZE=1_000, DRIFTWATCH_READ_BLOCK_MS=100,
                               DRIFTWATCH_READ_LINGER_MS=linger_ms, DRIFTWATCH_READ_LINGER_SLOW_MS=slow_ms)
    parts = assemble_monitor(aredis, settings, "linger-test", stats_interval_s=3600)
    await parts.consumer.ensure_groups()
    parts.start()
    try:
        await aredis.config_resetstat()
        rows = holdout_rows(model_dir, EVENTS)
        for i in range(EVENTS):
            await publish_predictions(aredis, keys, rows[i : i + 1], np.zeros(1, dtype=np.int64))
            await asyncio.sleep(0.025)
        await eventually(lambda: parts.consumer.stats.predictions == EVENTS)
        stats = await aredis.info("commandstats")
    finally:
        await parts.stop()
    return int(stats.get("cmdstat_xreadgroup", {}).get("calls", 0))


async def test_a_trickle_is_read_in_batches_with_a_linger(
    aredis: aioredis.Redis, redis_url: str, model_dir: Path
) -> None:
    eager = await reads_for_a_trickle(aredis, redis_url, model_dir, linger_ms=0)
    lingering = await reads_for_a_trickle(aredis, redis_url, model_dir, linger_ms=250)
    print(f"\nreads for {EVENTS} events one every 25 ms: linger 0 -> {eager}, linger 250 ms -> {lingering}")
    assert eager >= EVENTS / 2  # about one read per entry
    assert lingering * 3 <= eager  # each read takes what came in the last 250 ms (~10 entries)


async def test_a_thin_read_makes_the_next_one_wait_longer(
    aredis: aioredis.Redis, redis_url: str, model_dir: Path
) -> None:
    """Reads of ~10 entries (under a tenth of DRIFTWATCH_READ_COUNT, 500) wait the slow linger:
    50 models at 20 events/s each made ~9 entries per read with 250 ms, ~3x the batches."""
    lingering = await reads_for_a_trickle(aredis, redis_url, model_dir, linger_ms=250)
    slow = await reads_for_a_trickle(aredis, redis_url, model_dir, linger_ms=250, slow_ms=1_000)
    print(f"\nreads for {EVENTS} events one every 25 ms: linger 250 ms -> {lingering}, slow linger 1 s -> {slow}")
    assert slow * 2 <= lingering
