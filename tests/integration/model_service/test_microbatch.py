"""Micro-batching: concurrent requests share one interpreter call, and each gets exactly the
answer it would have got alone; every row still becomes its own stream entry."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import redis

from model_service.app import create_app
from model_service.batching import MicroBatcher
from model_service.runtime import LiteRTModel
from model_service.serving import ModelService
from model_service.serving_settings import ModelServiceSettings
from model_service.stream_writes import PredictionBlock
from shared.events import decode_predictions
from shared.keys import Keys
from shared.model_metadata import ModelMetadata

F = 64


class RecordingPublisher:
    def __init__(self) -> None:
        self.entries: list[tuple[str, dict[bytes, bytes]]] = []
        self.submits = 0

    def submit_predictions(self, block: PredictionBlock) -> int:
        self.entries += block.entries()
        self.submits += 1
        return 0


def _rows(seed: int, n: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 17, size=(n, F)).astype(np.float32)


async def test_batched_answers_equal_unbatched_ones_per_request(model_dir: Path) -> None:
    model = LiteRTModel(model_dir)
    publisher = RecordingPublisher()
    service = ModelService(model, None, publisher, Keys(model.metadata.name), None)  # type: ignore[arg-type]
    requests = [_rows(i, 1 + (i % 3) * 4) for i in range(20)]  # 1, 5 and 9 rows
    alone = [service.predict(rows) for rows in requests]
    publisher.entries.clear()
    publisher.submits = 0

    batcher = MicroBatcher(service)
    batched = await asyncio.gather(*(batcher.predict(rows) for rows in requests))

    assert batcher.calls == 1 and batcher.requests == 20  # one interpreter call for all
    assert publisher.submits == 1
    for rows, one, many in zip(requests, alone, batched, strict=True):
        assert len(many.ids) == len(rows)
        np.testing.assert_array_equal(many.classes, one.classes)
        np.testing.assert_array_equal(many.probabilities, one.probabilities)
    ids = [pid for result in batched for pid in result.ids]
    assert len(set(ids)) == len(ids) == sum(len(r) for r in requests)
    # The stream entries follow the requests' order, each with its own row and id.
    decoded = decode_predictions([fields for _, fields in publisher.entries])
    assert decoded.ids == ids
    np.testing.assert_array_equal(decoded.features, np.concatenate(requests))


async def test_a_failed_call_fails_every_waiting_request(model_dir: Path) -> None:
    model = LiteRTModel(model_dir)
    service = ModelService(model, None, RecordingPublisher(), Keys(model.metadata.name), None)  # type: ignore[arg-type]
    batcher = MicroBatcher(service)
    bad = np.zeros((1, F + 1), dtype=np.float32)  # the concatenation fails: wrong width
    results = await asyncio.gather(batcher.predict(_rows(0, 1)), batcher.predict(bad), return_exceptions=True)
    assert all(isinstance(r, ValueError) for r in results)
    # The batcher is usable afterwards.
    assert len((await batcher.predict(_rows(1, 2))).ids) == 2


@pytest.fixture
async def clients(model_dir: Path, redis_url: str, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    threshold = gc.get_threshold()  # the batcher tunes the GC of its process: undone below
    out: dict[str, Any] = {}
    apps = []
    for name, on in (("batched", True), ("alone", False)):
        settings = ModelServiceSettings(
            REDIS_URL=redis_url, DRIFTWATCH_MODEL_DIR=model_dir, DRIFTWATCH_MICRO_BATCH=on,
            DRIFTWATCH_PUBLISH_ENABLED=on, DRIFTWATCH_SPILL_DIR=tmp_path / name,
        )
        app = create_app(settings)
        apps.append(app)
        out[name] = app
    async with apps[0].router.lifespan_context(apps[0]), apps[1].router.lifespan_context(apps[1]):
        transports = {name: httpx.ASGITransport(app=app) for name, app in out.items()}
        async with (
            httpx.AsyncClient(transport=transports["batched"], base_url="http://test") as batched,
            httpx.AsyncClient(transport=transports["alone"], base_url="http://test") as alone,
        ):
            yield {"batched": batched, "alone": alone, "apps": out}
    gc.unfreeze()
    gc.set_threshold(*threshold)


async def test_concurrent_http_requests_are_batched_and_answer_as_alone(
    clients: dict[str, Any], redis_client: redis.Redis, model_dir: Path
) -> None:
    bodies: list[dict[str, Any]] = []
    for i in range(24):
        rows = _rows(100 + i, 1 + i % 4)
        bodies.append({"features": rows[0].tolist()} if i % 4 == 0 else {"instances": rows.tolist()})
    batched = await asyncio.gather(*(clients["batched"].post("/predict", json=b) for b in bodies))
    alone = [await clients["alone"].post("/predict", json=b) for b in bodies]

    service = clients["apps"]["batched"].state.service
    assert service.micro_batcher is not None and service.micro_batcher.calls < len(bodies)
    assert gc.get_threshold()[0] >= 10_000  # batching on: the GC was tuned (undone by the fixture)
    answered: list[dict[str, Any]] = []
    for body, got, want in zip(bodies, batched, alone, strict=True):
        assert got.status_code == want.status_code == 200
        g, w = got.json(), want.json()
        if "features" in body:
            assert set(g) == set(w) and g["class"] == w["class"] and g["probabilities"] == w["probabilities"]
            answered.append(g)
        else:
            assert [p["class"] for p in g["predictions"]] == [p["class"] for p in w["predictions"]]
            assert [p["probabilities"] for p in g["predictions"]] == [p["probabilities"] for p in w["predictions"]]
            answered += g["predictions"]

    # Every answered row is on the stream once, with its own features.
    stream = Keys(ModelMetadata.load(model_dir).name).predictions
    for _ in range(500):  # the publisher writes in the background: up to 10 s
        if redis_client.xlen(stream) >= len(answered):
            break
        await asyncio.sleep(0.02)
    decoded = decode_predictions([fields for _, fields in redis_client.xrange(stream)])
    by_id = dict(zip(decoded.ids, decoded.features, strict=True))
    assert len(decoded.ids) == len(answered) == len(set(decoded.ids))
    sent = [np.asarray(b["features"], dtype=np.float32)[None] if "features" in b else
            np.asarray(b["instances"], dtype=np.float32) for b in bodies]
    np.testing.assert_array_equal(np.stack([by_id[a["prediction_id"]] for a in answered]), np.concatenate(sent))


async def test_validation_errors_are_unchanged_with_micro_batching(clients: dict[str, Any]) -> None:
    response = await clients["batched"].post("/predict", json={"features": [0.0] * (F - 1)})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "features"]


async def test_sequential_traffic_is_scored_directly_and_concurrency_is_noticed_again(model_dir: Path) -> None:
    model = LiteRTModel(model_dir)
    publisher = RecordingPublisher()
    service = ModelService(model, None, publisher, Keys(model.metadata.name), None)  # type: ignore[arg-type]
    batcher = MicroBatcher(service, idle_flushes=3, probe_every=5)
    for i in range(3):
        await batcher.predict(_rows(i, 1))
    assert not batcher.batching and batcher.calls == 3
    for i in range(4):  # direct: no flush
        await batcher.predict(_rows(10 + i, 1))
    assert batcher.calls == 3
    # The 5th request is a probe; the ones of its turn join its batch, and batching resumes.
    results = await asyncio.gather(*(batcher.predict(_rows(20 + i, 2)) for i in range(6)))
    assert batcher.calls == 4 and batcher.requests == 9 and batcher.batching
    assert all(len(r.ids) == 2 for r in results)
    assert len(publisher.entries) == 3 + 4 + 12  # every row published, batched or not
