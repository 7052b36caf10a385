"""Put events on the streams the way the model service does, and wait for the monitor."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import redis
import redis.asyncio as aioredis

from monitor.monitor_settings import MonitorSettings
from shared.events import encode_feedback, encode_predictions
from shared.ids import new_prediction_ids
from shared.keys import Keys
from shared.model_metadata import DataSummary, ModelMetadata, Reference, TrainingSummary
from shared.registry import register_model


async def register(client: aioredis.Redis, model_dir: Path) -> tuple[ModelMetadata, Keys]:
    metadata = ModelMetadata.load(model_dir)
    keys = Keys(metadata.name, metadata.version)  # model keys, and version 1's series keys
    await register_model(client, keys, metadata, Reference.load(model_dir))
    return metadata, keys


def register_sync(redis_url: str, model_dir: Path) -> Keys:
    """:func:`register` for a test that talks to the monitor through a sync ``TestClient``."""

    async def run() -> Keys:
        client = aioredis.Redis.from_url(redis_url)
        try:
            return (await register(client, model_dir))[1]
        finally:
            await client.aclose()

    return asyncio.run(run())


def publish_at(client: redis.Redis, keys: Keys, rows: npt.NDArray[np.float32], at_ms: int,
               labelled: int = 0) -> None:
    """``rows`` as predictions made at ``at_ms`` (classes cycling 0-9, one-hot probabilities), the first
    ``labelled`` of them labelled a second later with their own class, in one pipeline."""
    ids = new_prediction_ids(len(rows), at_ms)
    classes = np.arange(len(rows), dtype=np.int64) % 10
    probabilities = np.eye(10, dtype=np.float32)[classes]
    with client.pipeline(transaction=False) as pipe:
        for entry in encode_predictions(ids, at_ms, keys.model, "1", rows, classes, probabilities):
            pipe.xadd(keys.predictions, entry)  # type: ignore[arg-type]
        for pid, label in zip(ids[:labelled], classes[:labelled].tolist(), strict=True):
            pipe.xadd(keys.feedback, encode_feedback(pid, label, at_ms + 1_000))  # type: ignore[arg-type]
        pipe.execute()


def window_settings(redis_url: str, mode: str, size: int, seconds: int) -> MonitorSettings:
    """A monitor for tests of its windows: ``mode`` windows of ``size`` rows or ``seconds``, a grace
    of an hour (slots close when a later one fills, not by the clock), quick stream reads, no alerts."""
    return MonitorSettings(
        REDIS_URL=redis_url,
        DRIFTWATCH_WINDOW_MODE=mode,
        DRIFTWATCH_WINDOW_SIZE=size,
        DRIFTWATCH_WINDOW_SECONDS=seconds,
        DRIFTWATCH_WINDOW_GRACE_S=3_600,
        DRIFTWATCH_READ_BLOCK_MS=50,
        DRIFTWATCH_ALERTS_ENABLED=False,
    )


def wait_until(check: Callable[[], object], timeout_s: float = 30.0) -> None:
    """Poll ``check`` (sync) until it is true; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


async def publish_predictions(
    client: aioredis.Redis, keys: Keys, features: npt.NDArray[np.float32], classes: npt.NDArray[np.int64],
    n_classes: int = 10, version: str = "1",
) -> list[str]:
    ids = new_prediction_ids(len(features))
    probabilities = np.eye(n_classes, dtype=np.float32)[classes]
    entries = encode_predictions(ids, int(time.time() * 1000), keys.model, version, features, classes, probabilities)
    async with client.pipeline(transaction=False) as pipe:
        for entry in entries:
            pipe.xadd(keys.predictions, entry)
        await pipe.execute()
    return ids


async def publish_feedback(client: aioredis.Redis, keys: Keys, ids: list[str], labels: list[int]) -> None:
    async with client.pipeline(transaction=False) as pipe:
        for pid, label in zip(ids, labels, strict=True):
            pipe.xadd(keys.feedback, encode_feedback(pid, label, int(time.time() * 1000)))
        await pipe.execute()


async def eventually(check: Callable[[], object], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


def holdout_rows(model_dir: Path, n: int, seed: int = 0) -> npt.NDArray[np.float32]:
    """``n`` rows drawn (with replacement) from the model's held-out sample."""
    with np.load(model_dir / "holdout.npz") as holdout:
        x = holdout["features"]
    return x[np.random.default_rng(seed).integers(0, len(x), n)].astype(np.float32)


def small_model(name: str, version: str, seed: int = 1) -> tuple[ModelMetadata, Reference]:
    """A registered 4-feature, 2-class model (what a user's CSV gives), reference included."""
    rng = np.random.default_rng(seed)
    metadata = ModelMetadata(
        name=name, version=version, feature_names=["a", "b", "c", "d"], class_names=["no", "yes"],
        categorical=[False] * 4,
        training=TrainingSummary(test_accuracy=0.9, test_loss=0.3, epochs=1, batch_size=32, learning_rate=1e-3,
                                 seed=seed, n_train=500, n_reference=100, n_test=100),
        data=DataSummary(source="my.csv", sha256=f"{seed:064x}", label_column="target"),
        created_at="2026-12-01T00:00:00+00:00",
    )
    classes = rng.integers(0, 2, 100)
    reference = Reference(
        features=rng.normal(size=(500, 4)).astype(np.float32), predicted_classes=classes,
        probabilities=np.eye(2, dtype=np.float32)[classes], labels=classes,
    )
    return metadata, reference
