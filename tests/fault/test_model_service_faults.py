"""The model service as a real process under faults: Redis stopped under load, SIGTERM mid-load.

Every prediction the service answered must reach the stream exactly once:
the ids answered are compared with the ids on the stream (loss = answered
but absent, duplicates = ids on the stream more than once).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import redis

from driftwatch.local_processes import LocalRedisServer
from shared.keys import Keys
from shared.model_metadata import ModelMetadata
from tests.fault.procs import Load, Service, loss_and_duplicates, start, wait_live, wait_stream_has

pytestmark = [pytest.mark.fault, pytest.mark.timeout(120)]


@pytest.fixture
def aof_redis(tmp_path: Path) -> Iterator[LocalRedisServer]:
    data = tmp_path / "redis"
    data.mkdir()
    with LocalRedisServer(data_dir=data, appendonly=True) as server:
        yield server


@pytest.fixture
def rows(model_dir: Path) -> np.ndarray:
    with np.load(model_dir / "holdout.npz") as holdout:
        return holdout["features"].astype(np.float32)


def serve(model_dir: Path, server: LocalRedisServer, tmp_path: Path, name: str = "model-service") -> Service:
    env = {"REDIS_URL": server.url, "DRIFTWATCH_SPILL_DIR": str(tmp_path / "spill")}
    service = start("serve", env, tmp_path, name, "--model-dir", str(model_dir))
    wait_live(service)
    return service


def sigterm_and_wait(service: Service) -> None:
    """Graceful stop: uvicorn re-raises the SIGTERM it caught once its shutdown is done."""
    service.signal(signal.SIGTERM)
    assert service.wait(timeout_s=30) in (0, -signal.SIGTERM)


def report(name: str, load: Load, loss: int, dups: int) -> None:
    lat = np.array(load.latencies) * 1000
    print(f"\n[{name}] answered={len(load.answered)} failed={len(load.failed)} lost={loss} duplicates={dups} "
          f"latency p50={np.percentile(lat, 50):.1f}ms p99={np.percentile(lat, 99):.1f}ms max={lat.max():.1f}ms")


def test_redis_stopped_for_5s_under_load_loses_nothing_and_duplicates_nothing(
    model_dir: Path, aof_redis: LocalRedisServer, rows: np.ndarray, tmp_path: Path
) -> None:
    stream = Keys(ModelMetadata.load(model_dir).name).predictions
    service = serve(model_dir, aof_redis, tmp_path)
    load = Load(service.url, rows)
    client = redis.Redis.from_url(aof_redis.url)
    try:
        load.start()
        time.sleep(1.5)
        aof_redis.stop()
        time.sleep(5.0)
        aof_redis.start()
        time.sleep(1.5)
        load.stop()
        on_stream = wait_stream_has(client, stream, load.answered, timeout_s=30)
    finally:
        load.stop()
        service.stop()
        client.close()
    loss, dups = loss_and_duplicates(load.answered, on_stream)
    report("redis down 5 s", load, loss, dups)
    assert load.failed == [], load.failed[:5]
    assert len(load.answered) > 200
    assert (loss, dups) == (0, 0)
    assert len(on_stream) == len(load.answered)


def test_sigterm_mid_load_flushes_everything_answered(
    model_dir: Path, aof_redis: LocalRedisServer, rows: np.ndarray, tmp_path: Path
) -> None:
    stream = Keys(ModelMetadata.load(model_dir).name).predictions
    service = serve(model_dir, aof_redis, tmp_path)
    load = Load(service.url, rows)
    client = redis.Redis.from_url(aof_redis.url)
    try:
        load.start()
        time.sleep(2.0)
        load.tolerate_failures()
        sigterm_and_wait(service)
        load.stop()
        on_stream = wait_stream_has(client, stream, load.answered, timeout_s=5)
    finally:
        load.stop()
        service.stop()
        client.close()
    loss, dups = loss_and_duplicates(load.answered, on_stream)
    report("SIGTERM, Redis up", load, loss, dups)
    assert load.failed == []
    assert (loss, dups) == (0, 0)


def test_sigterm_while_redis_is_down_spills_and_the_next_start_replays(
    model_dir: Path, aof_redis: LocalRedisServer, rows: np.ndarray, tmp_path: Path
) -> None:
    stream = Keys(ModelMetadata.load(model_dir).name).predictions
    service = serve(model_dir, aof_redis, tmp_path)
    load = Load(service.url, rows)
    client = redis.Redis.from_url(aof_redis.url)
    try:
        load.start()
        time.sleep(1.0)
        aof_redis.stop()
        time.sleep(1.5)
        load.tolerate_failures()
        sigterm_and_wait(service)
        load.stop()
        spilled = list((tmp_path / "spill").glob("*.spill"))
        assert spilled and spilled[0].stat().st_size > 0, "nothing was left in the spill file"
        aof_redis.start()
        restarted = serve(model_dir, aof_redis, tmp_path, "model-service-2")
        on_stream = wait_stream_has(client, stream, load.answered, timeout_s=30)
        restarted.signal(signal.SIGTERM)
        restarted.wait(timeout_s=30)
    finally:
        load.stop()
        service.stop()
        client.close()
    loss, dups = loss_and_duplicates(load.answered, on_stream)
    report("Redis down + SIGTERM, replay on restart", load, loss, dups)
    assert load.failed == []
    assert (loss, dups) == (0, 0)
    assert all(p.stat().st_size == 0 for p in (tmp_path / "spill").glob("*.spill"))
