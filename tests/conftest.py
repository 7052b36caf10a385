"""Fixtures shared by every test folder.

Tests talk to a real ``redis-server`` that this suite starts on a free port;
nothing here assumes port 6379 is free or ours.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis

from driftwatch.local_processes import LocalRedisServer

# App tests do not export telemetry unless a test opts in (the export tests unset this).
os.environ.setdefault("OTEL_SDK_DISABLED", "true")


@pytest.fixture(autouse=True)
def _private_spill_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's model services spill to their own directory: a spill file left by
    one test (Redis unreachable on purpose) must not be replayed into another's Redis."""
    monkeypatch.setenv("DRIFTWATCH_SPILL_DIR", str(tmp_path / "spill"))


@pytest.fixture(scope="session")
def redis_server() -> Iterator[LocalRedisServer]:
    with LocalRedisServer() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: LocalRedisServer) -> Iterator[str]:
    """A clean database on the session's server."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    yield redis_server.url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
async def aredis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real model trained once per session on the bundled digits (a few seconds)."""
    from driftwatch.trainer.datasets import load_dataset
    from driftwatch.trainer.train import TrainConfig, train

    out = tmp_path_factory.mktemp("model")
    train(load_dataset("digits"), out, TrainConfig(epochs=15, seed=0))
    return out
