"""/predict and /feedback reach the Redis streams, one entry per event, with the documented fields."""

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import redis
from fastapi.testclient import TestClient

from model_service.app import create_app
from model_service.serving_settings import ModelServiceSettings
from shared.events import decode_feedback, decode_predictions
from shared.keys import Keys
from shared.model_metadata import ModelMetadata, Reference

F = 64
PREDICTION_FIELDS = {b"v", b"id", b"ts", b"m", b"mv", b"x", b"y", b"p"}


@pytest.fixture
def client(model_dir: Path, redis_url: str) -> Iterator[TestClient]:
    settings = ModelServiceSettings(REDIS_URL=redis_url, DRIFTWATCH_MODEL_DIR=model_dir)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def wait_for_length(r: redis.Redis, stream: str, n: int, timeout_s: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while r.xlen(stream) < n and time.monotonic() < deadline:
        time.sleep(0.02)
    assert r.xlen(stream) == n


def test_every_prediction_is_one_stream_entry(client: TestClient, redis_client: redis.Redis, model_dir: Path) -> None:
    keys = Keys(ModelMetadata.load(model_dir).name)
    rows = np.random.default_rng(1).integers(0, 17, size=(7, F)).astype(np.float32)
    single = client.post("/predict", json={"features": rows[0].tolist()}).json()
    batch = client.post("/predict", json={"instances": rows[1:].tolist()}).json()["predictions"]
    answered = [single, *batch]

    wait_for_length(redis_client, keys.predictions, 7)
    entries = [fields for _, fields in redis_client.xrange(keys.predictions)]
    assert all(set(e) == PREDICTION_FIELDS for e in entries)
    decoded = decode_predictions(entries)
    assert decoded.ids == [a["prediction_id"] for a in answered]
    np.testing.assert_array_equal(decoded.features, rows)
    assert decoded.classes.tolist() == [a["class"] for a in answered]
    np.testing.assert_allclose(decoded.probabilities, [a["probabilities"] for a in answered], rtol=1e-6)
    assert set(decoded.model_versions) == {"1"}


def test_feedback_is_one_stream_entry(client: TestClient, redis_client: redis.Redis, model_dir: Path) -> None:
    keys = Keys(ModelMetadata.load(model_dir).name)
    pid = client.post("/predict", json={"features": [0.0] * F}).json()["prediction_id"]
    assert client.post("/feedback", json={"prediction_id": pid, "label": "7"}).status_code == 202
    wait_for_length(redis_client, keys.feedback, 1)
    decoded = decode_feedback([fields for _, fields in redis_client.xrange(keys.feedback)])
    assert decoded.ids == [pid] and decoded.labels.tolist() == [7]


def test_model_and_reference_are_registered(client: TestClient, redis_client: redis.Redis, model_dir: Path) -> None:
    metadata = ModelMetadata.load(model_dir)
    keys = Keys(metadata.name)
    assert client.get("/readyz").status_code == 200
    import time

    deadline = time.monotonic() + 5
    while not redis_client.exists(keys.reference("1")) and time.monotonic() < deadline:
        time.sleep(0.02)
    reference = Reference.from_bytes(redis_client.get(keys.reference("1")))
    np.testing.assert_array_equal(reference.features, Reference.load(model_dir).features)
    assert redis_client.hget(keys.model_info, "version") == b"1"


def test_request_counts_reach_redis_for_the_monitor(model_dir: Path, redis_url: str, redis_client: redis.Redis) -> None:
    keys = Keys(ModelMetadata.load(model_dir).name)
    settings = ModelServiceSettings(REDIS_URL=redis_url, DRIFTWATCH_MODEL_DIR=model_dir)
    with TestClient(create_app(settings)) as client:
        for _ in range(5):
            assert client.post("/predict", json={"features": [0.0] * F}).status_code == 200
        assert client.post("/predict", json={"features": [0.0]}).status_code == 422
        assert client.get("/livez").status_code == 200
    # Flushed at shutdown at the latest; probes are not counted.
    stats = {k.decode(): int(v) for k, v in redis_client.hgetall(keys.service_stats).items()}
    assert stats["requests"] == 6
    assert stats["status:2xx"] == 5 and stats["status:4xx"] == 1
    assert "status:5xx" not in stats
