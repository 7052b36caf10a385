"""POST /models/{name}/predictions and /feedback on an ingest-only model service, against a real
redis-server and the real monitor: rows reach the model's stream once, bad rows are refused
one by one while the rest are kept, Redis away means spilled and replayed, hostile input is a 4xx."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis
import redis.asyncio as aioredis

from driftwatch.local_processes import LocalRedisServer
from monitor.assembly import MonitorParts, assemble_monitor
from monitor.monitor_settings import MonitorSettings
from monitor.performance_report import performance_report
from shared.events import decode_feedback, decode_predictions
from shared.ids import MAX_EVENT_MS, internal_prediction_id, is_prediction_id, new_prediction_ids
from shared.keys import CONSUMER_GROUP, Keys
from tests.integration.model_service.registered import (
    churn,
    churn_rows,
    fraud,
    ingest_service,
    price,
    register,
    stream_ids,
    wait_until,
)
from tests.support.polling import until

pytestmark = pytest.mark.timeout(120)
CHURN = Keys("churn")


@pytest.fixture
async def churn_monitor(aredis: aioredis.Redis, redis_url: str) -> AsyncIterator[MonitorParts]:
    """churn registered, and the real monitor consuming its streams (one window holds everything)."""
    await register(aredis, churn())
    settings = MonitorSettings(REDIS_URL=redis_url, DRIFTWATCH_MODEL_NAME="churn", DRIFTWATCH_WINDOW_SIZE=10_000,
                               DRIFTWATCH_READ_BLOCK_MS=50)
    monitor = assemble_monitor(aredis, settings, "test-consumer")
    monitor.start()
    try:
        yield monitor
    finally:
        await monitor.stop()


async def test_logged_rows_reach_the_stream_once_and_the_monitor_counts_each_prediction_once(
    aredis: aioredis.Redis, redis_client: redis.Redis, redis_url: str, churn_monitor: MonitorParts
) -> None:
    monitor = churn_monitor
    batches = [churn_rows(100, seed=s, start=100 * s) for s in range(3)]
    answered: list[str] = []
    with ingest_service(redis_url) as client:
        for rows in batches:
            response = client.post("/models/churn/predictions", json={"rows": rows})
            assert response.status_code == 202, response.text
            assert response.json()["accepted"] == 100
            answered += response.json()["ids"]
        # A client that lost the answer retries the whole batch: the ids are the same.
        retry = client.post("/models/churn/predictions", json={"rows": batches[1]})
        assert retry.json()["ids"] == answered[100:200]
        labels = [{"id": r["id"], "label": r["prediction"], "prediction_timestamp": r["timestamp"]}
                  for r in batches[0][:50]]
        assert client.post("/models/churn/feedback", json={"labels": labels}).json() == {"accepted": 50}
        wait_until(lambda: redis_client.xlen(CHURN.predictions) == 400 and redis_client.xlen(CHURN.feedback) == 50)

    assert stream_ids(redis_client, CHURN.predictions) == answered + answered[100:200]  # each write once, in order
    assert answered[0] == internal_prediction_id("req-0", batches[0][0]["timestamp"])
    assert all(is_prediction_id(i) for i in answered) and len(set(answered)) == 300
    stats = monitor.consumer.stats
    await until(lambda: stats.predictions + stats.duplicates == 400 and stats.feedback == 50)
    assert (stats.predictions, stats.duplicates) == (300, 100)  # the retried batch counted once
    assert int(await aredis.get(CHURN.for_version("1").ingested)) == 300
    assert (await aredis.xpending(CHURN.predictions, CONSUMER_GROUP))["pending"] == 0
    report = await performance_report(aredis, CHURN, ["stay", "leave"], monitor.window_index)
    assert report.labelled == 50 and report.accuracy == 1.0  # foreign ids joined through their timestamps


async def test_the_latest_accepted_time_is_counted_by_the_monitor(redis_url: str, churn_monitor: MonitorParts) -> None:
    """A time the model service accepts is one the monitor can file: a row from the year 9999 was
    answered 202, then failed in the monitor on every delivery until it was dead-lettered."""
    monitor = churn_monitor
    rows = [{**row, "timestamp": at} for row, at in zip(churn_rows(2), (0, MAX_EVENT_MS), strict=True)]
    with ingest_service(redis_url) as client:
        response = client.post("/models/churn/predictions", json={"rows": rows})
        assert response.status_code == 202, response.text
    stats = monitor.consumer.stats
    await until(lambda: stats.predictions == 2 or stats.failed > 0 or stats.dead_lettered > 0)
    assert (stats.predictions, stats.failed, stats.dead_lettered) == (2, 0, 0)


async def test_a_batch_with_bad_rows_keeps_the_good_ones_and_names_the_rest(
    aredis: aioredis.Redis, redis_client: redis.Redis, redis_url: str
) -> None:
    await register(aredis, churn())
    rows = churn_rows(10)
    rows[2]["prediction"] = "maybe"  # no such class
    rows[4]["features"] = rows[4]["features"][:3]  # one feature short
    rows[5]["timestamp"] = "2026-01-01T00:00:00"  # no offset: not RFC 3339
    rows[7]["features"] = {"age": 1, "salary": 2}  # unknown name
    rows[8]["probabilities"] = [0.5, float("nan")]
    rows[9] = "not a row"
    with ingest_service(redis_url) as client:
        response = client.post("/models/churn/predictions", content=_json(rows),
                               headers={"Content-Type": "application/json"})
        assert response.status_code == 422
        body = response.json()
        located = [(e["loc"][2], *e["loc"][3:]) for e in body["detail"]]
        assert located == [(2, "prediction"), (4, "features"), (5, "timestamp"), (7, "features", "salary"),
                           (8, "probabilities", 1), (9,)]
        assert body["error_count"] == 6 and body["accepted"] == 4
        wait_until(lambda: redis_client.xlen(CHURN.predictions) == 4)
    kept = [internal_prediction_id(rows[i]["id"], rows[i]["timestamp"]) for i in (0, 1, 3, 6)]
    assert body["accepted_ids"] == kept == stream_ids(redis_client, CHURN.predictions)


async def test_a_mapping_with_more_names_than_features_names_the_unknown_ones(
    aredis: aioredis.Redis, redis_url: str
) -> None:
    """A DataFrame logged with two columns beside its features (an id, a time) was refused with
    "expected 4 features, got 6" and no word of which: the length check now names them."""
    await register(aredis, churn())
    row = churn_rows(1)[0]
    row["features"] = {**dict(zip(churn().feature_names, row["features"], strict=True)),
                       "customer_id": 7, "logged_at": 1}
    with ingest_service(redis_url) as client:
        response = client.post("/models/churn/predictions", json={"rows": [row]})
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "rows", 0, "features"]
    assert error["msg"].endswith("expected 4 features, got 6: unknown 'customer_id', 'logged_at'")


def _json(rows: list[Any]) -> bytes:
    """JSON with a NaN literal where a float is NaN (pydantic's parser reads it; the stdlib's writes it)."""
    import json

    return json.dumps({"rows": rows}).encode()


async def test_missing_values_stay_missing_in_the_event(
    aredis: aioredis.Redis, redis_client: redis.Redis, redis_url: str
) -> None:
    await register(aredis, churn())
    rows = churn_rows(3)
    rows[0]["features"][1] = None
    rows[1]["features"][3] = float("nan")
    rows[2]["features"] = {"age": 30, "income": 2.5, "tenure": 4}  # "plan" left out
    with ingest_service(redis_url) as client:
        response = client.post("/models/churn/predictions", content=_json(rows),
                               headers={"Content-Type": "application/json"})
        assert response.status_code == 202, response.text
        wait_until(lambda: redis_client.xlen(CHURN.predictions) == 3)
    events = decode_predictions([f for _, f in redis_client.xrange(CHURN.predictions)])
    assert np.isnan(events.features).tolist() == [
        [False, True, False, False], [False, False, False, True], [False, False, False, True]
    ]
    np.testing.assert_array_equal(events.features[2, :3], [30, 2.5, 4])
    assert events.timestamps_ms.tolist() == [r["timestamp"] for r in rows]
    np.testing.assert_allclose(events.probabilities, [r["probabilities"] for r in rows], rtol=1e-6)
    assert events.classes.tolist() == [["stay", "leave"].index(r["prediction"]) for r in rows]


async def test_a_regressor_logs_its_prediction_after_its_features_and_takes_no_labels(
    aredis: aioredis.Redis, redis_client: redis.Redis, redis_url: str
) -> None:
    await register(aredis, price())
    keys = Keys("price")
    rows = [{"features": [3, 81.5], "prediction": 250_000.5}, {"features": {"rooms": 2}, "prediction": 99}]
    with ingest_service(redis_url) as client:
        response = client.post("/models/price/predictions", json={"rows": rows})
        assert response.status_code == 202, response.text
        bad = client.post("/models/price/predictions",
                          json={"rows": [{"features": [1, 2], "prediction": "high"},
                                         {"features": [1, 2], "prediction": 1.0, "probabilities": [1.0]}]})
        assert [e["loc"][2:] for e in bad.json()["detail"]] == [[0, "prediction"], [1, "probabilities"]]
        feedback = client.post("/models/price/feedback", json={"labels": [{"id": "a", "label": 3}]})
        assert feedback.status_code == 422 and feedback.json()["detail"][0]["loc"] == ["body", "labels"]
        wait_until(lambda: redis_client.xlen(keys.predictions) == 2)
    events = decode_predictions([f for _, f in redis_client.xrange(keys.predictions)])
    np.testing.assert_array_equal(events.features[0], [3, 81.5, 250_000.5])
    assert np.isnan(events.features[1, 1]) and events.features[1, 2] == 99
    assert events.probabilities.shape == (2, 0) and events.classes.tolist() == [0, 0]


async def test_boolean_labels_without_probabilities(
    aredis: aioredis.Redis, redis_client: redis.Redis, redis_url: str
) -> None:
    await register(aredis, fraud())
    keys = Keys("fraud")
    with ingest_service(redis_url) as client:
        response = client.post("/models/fraud/predictions", json={"rows": [
            {"features": [10.0], "prediction": True}, {"features": [3.5], "prediction": False},
            {"features": [1.0], "prediction": "yes"}, {"features": [1.0], "prediction": True, "probabilities": [1.0]},
        ]})  # fmt: skip
        assert response.status_code == 422
        assert [e["loc"][2:] for e in response.json()["detail"]] == [[2, "prediction"], [3, "probabilities"]]
        ids = response.json()["accepted_ids"]
        # Driftwatch ids need no prediction timestamp; booleans map to their class.
        feedback = client.post("/models/fraud/feedback", json={"labels": [{"id": ids[0], "label": False}]})
        assert feedback.status_code == 202
        wait_until(lambda: redis_client.xlen(keys.predictions) == 2 and redis_client.xlen(keys.feedback) == 1)
    events = decode_predictions([f for _, f in redis_client.xrange(keys.predictions)])
    assert events.classes.tolist() == [1, 0] and events.probabilities.shape == (2, 0)
    labels = decode_feedback([f for _, f in redis_client.xrange(keys.feedback)])
    assert labels.ids == [ids[0]] and labels.labels.tolist() == [0]


async def test_unknown_models_are_404_and_a_new_registration_is_seen_without_a_restart(
    aredis: aioredis.Redis, redis_url: str
) -> None:
    body = {"rows": churn_rows(1)}
    with ingest_service(redis_url, DRIFTWATCH_REGISTRY_TTL_S=0.2) as client:
        assert client.post("/models/churn/predictions", json=body).status_code == 404
        assert client.post("/models/a}b/predictions", json=body).status_code == 404  # cannot name a key
        await register(aredis, churn("1"))
        wait_until(lambda: client.post("/models/churn/predictions", json=body).status_code == 202, timeout_s=10)
        # A newer version, registered under the same name, is what the next events carry.
        await register(aredis, churn("2"))
        wait_until(lambda: client.post("/models/churn/predictions", json=body).status_code == 202
                   and _last_version(redis_url) == "2", timeout_s=10)


def _last_version(redis_url: str) -> str | None:
    with redis.Redis.from_url(redis_url) as r:
        last = r.xrevrange(CHURN.predictions, count=1)
        return last[0][1][b"mv"].decode() if last else None


@pytest.mark.parametrize(
    ("body", "status", "loc"),
    [
        ({"rows": churn_rows(2_000, ids=False)}, 422, ["body", "rows"]),
        ({"rows": []}, 422, ["body", "rows"]),
        ({"rows": [{**churn_rows(1)[0], "features": [10**400, 0, 0, 0]}]}, 422,
         ["body", "rows", 0, "features", 0]),
        ({"rows": [{**churn_rows(1)[0], "prediction": 10**400}]}, 422, ["body", "rows", 0, "prediction"]),
        ({"rows": [{**churn_rows(1)[0], "timestamp": 10**30}]}, 422, ["body", "rows", 0, "timestamp"]),
        ({"rows": [{**churn_rows(1)[0], "timestamp": "9999-12-31T23:59:59Z"}]}, 422, ["body", "rows", 0, "timestamp"]),
        ({"rows": [{**churn_rows(1)[0], "timestamp": MAX_EVENT_MS + 1}]}, 422, ["body", "rows", 0, "timestamp"]),
        ({"rows": [{**churn_rows(1)[0], "id": "x" * 10_000}]}, 422, ["body", "rows", 0, "id"]),
        ({"rows": [{**churn_rows(1)[0], "features": [1e300, 0, 0, 0]}]}, 422, ["body", "rows", 0, "features", 0]),
        ({"rows": [{**churn_rows(1)[0], "extra": 1}]}, 422, ["body", "rows", 0, "extra"]),
        ({"labels": [{"id": "x", "label": "stay"}]}, 422, ["body", "rows"]),
    ],
    ids=["2000-rows", "no-rows", "huge-int-feature", "huge-int-label", "huge-timestamp", "year-9999",
         "past-event-times", "long-id", "1e300",
         "unknown-field", "wrong-body"],
)
async def test_hostile_input_is_a_4xx_naming_the_field(
    aredis: aioredis.Redis, redis_url: str, body: dict[str, Any], status: int, loc: list[Any]
) -> None:
    await register(aredis, churn())
    with ingest_service(redis_url) as client:
        response = client.post("/models/churn/predictions", json=body)
        assert response.status_code == status, response.text
        assert response.json()["detail"][0]["loc"] == loc
        assert response.json().get("accepted", 0) == 0


async def test_bodies_past_the_limits_are_refused_before_parsing(aredis: aioredis.Redis, redis_url: str) -> None:
    await register(aredis, churn())
    with ingest_service(redis_url, DRIFTWATCH_MAX_BODY_BYTES=64 * 1024) as client:
        big = client.post("/models/churn/predictions", json={"rows": churn_rows(1_000)})
        assert big.status_code == 413
        text = client.post("/models/churn/predictions", content=b"rows", headers={"Content-Type": "text/plain"})
        assert text.status_code == 415
        broken = client.post("/models/churn/predictions", content=b'{"rows": [',
                             headers={"Content-Type": "application/json"})
        assert broken.status_code == 422 and broken.json()["detail"][0]["type"] == "json_invalid"
        labels = client.post("/models/churn/feedback", json={"labels": [{"id": "a", "label": 10**400}]})
        assert labels.status_code == 422 and labels.json()["detail"][0]["loc"] == ["body", "labels", 0, "label"]


async def test_redis_stopped_means_202_spilled_and_replayed_with_nothing_lost(tmp_path: Path) -> None:
    (tmp_path / "redis").mkdir()
    with LocalRedisServer(data_dir=tmp_path / "redis", appendonly=True) as server:
        r = redis.Redis.from_url(server.url)
        client = aioredis.Redis.from_url(server.url)
        await register(client, churn())
        await client.aclose()
        sent: list[str] = []
        # A short TTL: the cached schema expires while Redis is away and is used as it is (no Redis wait).
        spill = str(tmp_path / "spill")
        with ingest_service(server.url, DRIFTWATCH_SPILL_DIR=spill, DRIFTWATCH_REGISTRY_TTL_S=0.05) as service:
            first = service.post("/models/churn/predictions", json={"rows": churn_rows(50, start=0)})
            assert first.status_code == 202  # the model's schema is cached from here on
            sent += first.json()["ids"]
            server.stop()
            for batch in range(1, 4):
                response = service.post("/models/churn/predictions", json={"rows": churn_rows(50, start=50 * batch)})
                assert response.status_code == 202, response.text
                sent += response.json()["ids"]
            pid = new_prediction_ids(1)[0]
            labels = {"labels": [{"id": pid, "label": "stay"}]}
            assert service.post("/models/churn/feedback", json=labels).status_code == 202
            ready = service.get("/readyz")
            assert ready.status_code == 503 and ready.json()["redis"] is False
            wait_until(lambda: service.get("/readyz").json()["publisher"]["spill_pending"] > 0)
            server.start()
            wait_until(lambda: _length(r, CHURN.predictions) == 200 and _length(r, CHURN.feedback) == 1)
            wait_until(lambda: service.get("/readyz").json()["publisher"]["spill_pending"] == 0)
        assert stream_ids(r, CHURN.predictions) == sent  # in order, once each
        r.close()


def _length(r: redis.Redis, stream: str) -> int:
    try:
        return int(r.xlen(stream))
    except (redis.ConnectionError, redis.TimeoutError):
        return -1
