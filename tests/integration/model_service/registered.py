"""Models registered the way ``driftwatch register`` does, for the ingest tests, and an
ingest-only model service (no model of its own) in front of a given Redis: in the test's
process, or as the ``driftwatch serve --ingest-only`` process a user runs."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import redis
import redis.asyncio as aioredis
from fastapi.testclient import TestClient

from driftwatch.local_processes import free_port, wait_for_http
from model_service.app import create_app
from model_service.serving_settings import ModelServiceSettings
from shared.keys import Keys
from shared.model_metadata import DataSummary, ModelMetadata, Reference
from shared.registry import register_model

CHURN_FEATURES = ["age", "income", "tenure", "plan"]


def churn(version: str = "1") -> ModelMetadata:
    """A classifier with string labels and probabilities."""
    return ModelMetadata(
        name="churn", version=version, feature_names=CHURN_FEATURES, class_names=["stay", "leave"],
        categorical=[False, False, False, True], label_kind="string",
        data=DataSummary(source="churn.csv", sha256=f"{int(version):064x}"), created_at="2026-01-01T00:00:00Z",
    )  # fmt: skip


def price() -> ModelMetadata:
    """A regressor."""
    return ModelMetadata(
        name="price", version="1", feature_names=["rooms", "area"], class_names=[], categorical=[False, False],
        task="regression", has_probabilities=False,
        data=DataSummary(source="price.csv", sha256="1" * 64), created_at="2026-01-01T00:00:00Z",
    )  # fmt: skip


def fraud() -> ModelMetadata:
    """A classifier with boolean labels and no probabilities."""
    return ModelMetadata(
        name="fraud", version="1", feature_names=["amount"], class_names=["false", "true"], categorical=[False],
        label_kind="boolean", has_probabilities=False,
        data=DataSummary(source="fraud.csv", sha256="2" * 64), created_at="2026-01-01T00:00:00Z",
    )  # fmt: skip


def reference_for(metadata: ModelMetadata, rows: int = 400, seed: int = 0) -> Reference:
    rng = np.random.default_rng(seed)
    k = metadata.n_classes
    classes = rng.integers(0, max(k, 1), rows) if k else np.zeros(0, np.int64)
    return Reference(
        features=rng.normal(size=(rows, metadata.n_features)).astype(np.float32),
        predicted_classes=classes,
        probabilities=(np.eye(k, dtype=np.float32)[classes] if metadata.has_probabilities and k
                       else np.zeros((rows, 0), np.float32)),
        labels=np.zeros(0, np.int64),
        predicted_values=rng.normal(size=rows).astype(np.float32) if not k else np.zeros(0, np.float32),
    )


async def register(client: aioredis.Redis, *models: ModelMetadata) -> None:
    for metadata in models:
        await register_model(client, Keys(metadata.name), metadata, reference_for(metadata))


@contextmanager
def ingest_service(redis_url: str, **settings: Any) -> Iterator[TestClient]:
    """A model service without a model of its own (the default without a model directory)."""
    config = ModelServiceSettings(REDIS_URL=redis_url, **settings)
    with TestClient(create_app(config)) as client:
        yield client


@contextmanager
def ingest_process(redis_url: str, spill_dir: Path, *models: ModelMetadata) -> Iterator[str]:
    """``models`` registered, then ``driftwatch serve --ingest-only`` as its own process; yields its URL."""

    async def _register() -> None:
        client = aioredis.Redis.from_url(redis_url)
        await register(client, *models)
        await client.aclose()

    asyncio.run(_register())
    port = free_port()
    env = {**os.environ, "REDIS_URL": redis_url, "DRIFTWATCH_SPILL_DIR": str(spill_dir),
           "OTEL_SDK_DISABLED": "true"}
    process = subprocess.Popen([sys.executable, "-m", "driftwatch.cli", "serve", "--ingest-only", "--port", str(port)],
                               env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/readyz", timeout_s=60, processes=[process])
        yield url
    finally:
        process.terminate()
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)


def churn_rows(n: int, seed: int = 0, *, ids: bool = True, start: int = 0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).round(4)
    p = rng.dirichlet([1, 1], n).round(4)
    return [
        {
            **({"id": f"req-{start + i}"} if ids else {}),
            "timestamp": 1_767_225_600_000 + (start + i) * 1_000,
            "features": x[i].tolist(),
            "prediction": ["stay", "leave"][int(p[i].argmax())],
            "probabilities": p[i].tolist(),
        }
        for i in range(n)
    ]


def wait_until(check: Callable[[], object], timeout_s: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"{what} not met in {timeout_s}s"
        time.sleep(0.02)


def stream_ids(r: redis.Redis, stream: str) -> list[str]:
    return [f[b"id"].decode() for _, f in r.xrange(stream)]


def spill_dir(tmp_path: Path) -> Path:
    return tmp_path / "spill"
