"""KServe's inference logger pointed at Driftwatch: CloudEvents shaped as KServe sends them (binary
mode, the payloads of KServe's own docs: sklearn-iris V1 and sklearn-v2-iris V2), against a real
redis-server and the real monitor. A request and its response become one prediction, in either
order and across replicas; what cannot be read is a 422 naming it."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from typing import Any

import numpy as np
import pytest
import redis
import redis.asyncio as aioredis
from fastapi.testclient import TestClient

from monitor.assembly import assemble_monitor
from monitor.monitor_settings import MonitorSettings
from shared.events import decode_predictions
from shared.ids import internal_prediction_id
from shared.keys import Keys
from shared.log_context import LOG_FORMAT
from shared.model_metadata import DataSummary, ModelMetadata
from tests.integration.model_service.registered import ingest_service, register, stream_ids, wait_until
from tests.support.polling import until

pytestmark = pytest.mark.timeout(120)

IRIS = Keys("sklearn-iris")
CE_ID = "e58f1edd-43bc-42f6-a10a-d1adb5cab831"
CE_TIME = "2023-01-30T10:45:00.000Z"
CE_TIME_MS = 1_675_075_500_000
# From KServe's "Basic Inference Logger" docs: the sklearn-iris request and its answer.
V1_REQUEST = {"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}
V1_RESPONSE = {"predictions": [1, 1]}
# From KServe's Open Inference Protocol docs (sklearn-v2-iris).
V2_REQUEST = {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": [[5.1, 3.5, 1.4, 0.2]]}]}
V2_RESPONSE = {"id": "3befffaa-9f4f-4c0b-97fb-3d267d070153", "model_name": "sklearn-v2-iris", "model_version": "1",
               "outputs": [{"name": "output-0", "shape": [1], "datatype": "INT64", "data": [0]}]}


def iris(name: str = "sklearn-iris", *, probabilities: bool = False) -> ModelMetadata:
    return ModelMetadata(
        name=name, version="1", feature_names=["sepal_length", "sepal_width", "petal_length", "petal_width"],
        class_names=["0", "1", "2"], categorical=[False] * 4, has_probabilities=probabilities,
        data=DataSummary(source="iris.csv", sha256="3" * 64), created_at="2026-01-01T00:00:00Z",
    )  # fmt: skip


def headers(kind: str, *, ce_id: str = CE_ID, service: str = "sklearn-iris", **extra: str) -> dict[str, str]:
    """The attributes KServe's logger sets (pkg/logger/worker.go), as binary-mode headers."""
    return {
        "ce-specversion": "1.0", "ce-type": f"org.kubeflow.serving.inference.{kind}",
        "ce-source": "http://localhost:9081/", "ce-id": ce_id, "ce-time": CE_TIME,
        "ce-inferenceservicename": service, "ce-namespace": "default", "ce-component": "predictor",
        "ce-endpoint": "", "ce-metadata": "{}", "content-type": "application/json", **extra,
    }  # fmt: skip


def post(client: TestClient, kind: str, body: Any, path: str = "/kserve", **kw: str) -> Any:
    response = client.post(path, content=json.dumps(body).encode(), headers=headers(kind, **kw))
    return response


@pytest.mark.parametrize("order", [("request", "response"), ("response", "request")])
async def test_a_request_and_its_response_become_one_prediction_in_either_order(
    aredis: aioredis.Redis, redis_client: redis.Redis, redis_url: str, order: tuple[str, str]
) -> None:
    await register(aredis, iris())
    bodies = {"request": V1_REQUEST, "response": V1_RESPONSE}
    with ingest_service(redis_url) as client:
        first = post(client, order[0], bodies[order[0]])
        assert first.status_code == 200 and first.json()["status"] == "waiting", first.text
        assert redis_client.xlen(IRIS.predictions) == 0
        second = post(client, order[1], bodies[order[1]])
        assert second.json() == {"status": "paired", "published": 2, "rejected": 0}
        wait_until(lambda: redis_client.xlen(IRIS.predictions) == 2)
    events = decode_predictions([f for _, f in redis_client.xrange(IRIS.predictions)])
    np.testing.assert_allclose(events.features, V1_REQUEST["instances"], rtol=1e-6)
    assert events.classes.tolist() == [1, 1] and events.probabilities.shape == (2, 0)
    assert events.timestamps_ms.tolist() == [CE_TIME_MS] * 2
    assert events.ids == [internal_prediction_id(f"{CE_ID}/{i}", CE_TIME_MS) for i in range(2)]
    assert not redis_client.keys("*kserve:pending*")  # the pair left nothing behind


async def test_halves_on_different_replicas_pair_once_and_the_monitor_counts_them(
    aredis: aioredis.Redis, redis_client: redis.Redis, redis_url: str
) -> None:
    await register(aredis, iris())
    settings = MonitorSettings(REDIS_URL=redis_url, DRIFTWATCH_MODEL_NAME="sklearn-iris",
                               DRIFTWATCH_WINDOW_SIZE=10_000, DRIFTWATCH_READ_BLOCK_MS=50)
    monitor = assemble_monitor(aredis, settings, "test-consumer")
    monitor.start()
    try:
        with ingest_service(redis_url) as a, ingest_service(redis_url) as b:
            for i in range(40):
                first, second = (a, b) if i % 2 else (b, a)
                kinds = ("request", "response") if i % 3 else ("response", "request")
                bodies = {"request": V2_REQUEST, "response": V2_RESPONSE}
                assert post(first, kinds[0], bodies[kinds[0]], ce_id=f"id-{i}").json()["status"] == "waiting"
                # The logger resends nothing, but a resent half must change nothing.
                assert post(second, kinds[0], bodies[kinds[0]], ce_id=f"id-{i}").json()["status"] == "duplicate"
                assert post(second, kinds[1], bodies[kinds[1]], ce_id=f"id-{i}").json()["published"] == 1
            wait_until(lambda: redis_client.xlen(IRIS.predictions) == 40)
        stats = monitor.consumer.stats
        await until(lambda: stats.predictions == 40)
        await asyncio.sleep(0.2)
        assert (stats.predictions, stats.duplicates) == (40, 0)
        assert int(await aredis.get(IRIS.for_version("1").ingested)) == 40
        ids = stream_ids(redis_client, IRIS.predictions)
        # Each pair once. In any order: the two replicas' publishers each linger before they write, so
        # pairs completed on alternate replicas may reach the stream out of send order (seen under load).
        assert sorted(ids) == sorted(internal_prediction_id(f"id-{i}", CE_TIME_MS) for i in range(40))
    finally:
        await monitor.stop()


async def test_v2_tensors_flat_or_per_feature_and_probabilities(
    aredis: aioredis.Redis, redis_client: redis.Redis, redis_url: str
) -> None:
    await register(aredis, iris("iris-proba", probabilities=True))
    keys = Keys("iris-proba")
    flat = {"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP64",
                        "data": [6.8, 2.8, 4.8, 1.4, 6.0, 3.4, None, 1.6]}]}  # row-major, one value missing
    per_feature = {"inputs": [{"name": n, "shape": [1], "datatype": "FP32", "data": [v]}
                              for n, v in zip(iris().feature_names, [5.1, 3.5, 1.4, 0.2], strict=True)]}
    answer = {"outputs": [{"name": "predict", "shape": [2], "datatype": "INT64", "data": [2, 1]},
                          {"name": "predict_proba", "shape": [2, 3], "datatype": "FP32",
                           "data": [0.1, 0.2, 0.7, 0.0, 0.9, 0.1]}]}
    only_proba = {"outputs": [{"name": "output-0", "shape": [1, 3], "datatype": "FP32", "data": [[0.8, 0.1, 0.1]]}]}
    with ingest_service(redis_url) as client:
        post(client, "request", flat, service="iris-proba", ce_id="flat")
        assert post(client, "response", answer, service="iris-proba", ce_id="flat").json()["published"] == 2
        post(client, "response", only_proba, service="iris-proba", ce_id="cols")
        assert post(client, "request", per_feature, service="iris-proba", ce_id="cols").json()["published"] == 1
        wait_until(lambda: redis_client.xlen(keys.predictions) == 3)
    events = decode_predictions([f for _, f in redis_client.xrange(keys.predictions)])
    np.testing.assert_allclose(events.features[:2][~np.isnan(events.features[:2])],
                               [6.8, 2.8, 4.8, 1.4, 6.0, 3.4, 1.6], rtol=1e-6)
    assert np.isnan(events.features[1, 2])
    np.testing.assert_allclose(events.features[2], [5.1, 3.5, 1.4, 0.2], rtol=1e-6)
    assert events.classes.tolist() == [2, 1, 0]  # the labels given, or the most probable class
    np.testing.assert_allclose(events.probabilities, [[0.1, 0.2, 0.7], [0.0, 0.9, 0.1], [0.8, 0.1, 0.1]], rtol=1e-6)


async def test_the_model_comes_from_the_path_the_mapping_or_the_service_name(
    aredis: aioredis.Redis, redis_client: redis.Redis, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await register(aredis, iris("iris"))
    keys = Keys("iris")
    monkeypatch.setenv("DRIFTWATCH_KSERVE_MODELS", json.dumps({"prod/sklearn-iris": "iris"}))  # as deployed
    with ingest_service(redis_url) as client:
        # By the path.
        post(client, "request", V2_REQUEST, path="/kserve/iris", service="whatever", ce_id="a")
        assert post(client, "response", V2_RESPONSE, path="/kserve/iris", service="whatever",
                    ce_id="a").json()["status"] == "paired"
        # By the mapping (namespace/service).
        post(client, "request", V2_REQUEST, ce_id="b", **{"ce-namespace": "prod"})
        assert post(client, "response", V2_RESPONSE, ce_id="b", **{"ce-namespace": "prod"}).json()["published"] == 1
        # Unmapped, and not registered under its own name.
        missing = post(client, "request", V2_REQUEST, ce_id="c")
        assert missing.status_code == 404 and "sklearn-iris" in missing.json()["detail"]
        wait_until(lambda: redis_client.xlen(keys.predictions) == 2)


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"ce-type": "org.kubeflow.serving.inference.other"}, ["header", "ce-type"]),
        ({"ce-id": ""}, ["header", "ce-id"]),
        ({"ce-specversion": "0.3"}, ["header", "ce-specversion"]),
        ({"ce-time": "yesterday"}, ["header", "ce-time"]),
        ({"ce-inferenceservicename": ""}, ["header", "ce-inferenceservicename"]),
    ],
)
async def test_an_event_kserve_would_not_send_is_a_422_naming_the_attribute(
    aredis: aioredis.Redis, redis_url: str, change: dict[str, str], loc: list[str]
) -> None:
    await register(aredis, iris())
    with ingest_service(redis_url) as client:
        response = client.post("/kserve", content=json.dumps(V1_REQUEST), headers={**headers("request"), **change})
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"] == loc
        assert client.post("/kserve", json=V1_REQUEST).json()["detail"][0]["loc"] == ["header", "ce-type"]


@pytest.mark.parametrize(
    ("kind", "body", "loc"),
    [
        ("request", {"instances": [[1, 2, 3]]}, ["body", "instances"]),
        ("request", {"instances": [["a", 2, 3, 4]]}, ["body", "instances"]),
        ("request", {"instances": [[10**400, 2, 3, 4]]}, ["body", "instances"]),
        ("request", {"instances": [{"petal": 1}]}, ["body", "instances", 0, "petal"]),
        ("request", {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3]}]},
         ["body", "inputs", 0, "data"]),
        ("request", {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "BYTES", "data": ["a", "b", "c", "d"]}]},
         ["body", "inputs", 0, "datatype"]),
        # Shapes whose numpy product overflows (2**32 * 2**32 wraps to 0, as many values as []) or
        # that numpy cannot make, and empty tensors: each was a 500.
        ("request", {"inputs": [{"name": "x", "shape": [2**32, 2**32], "datatype": "FP32", "data": []}]},
         ["body", "inputs", 0, "data"]),
        ("request", {"inputs": [{"name": "x", "shape": [2**64, 0], "datatype": "FP32", "data": []}]},
         ["body", "inputs", 0, "shape"]),
        ("request", {"inputs": [{"name": "sepal_length", "shape": [], "datatype": "FP32", "data": [1]}]},
         ["body", "inputs", 0, "shape"]),
        ("request", {"inputs": [{"name": "x", "shape": [0, 4], "datatype": "FP32", "data": []}]},
         ["body", "inputs", 0, "shape"]),
        ("response", {"outputs": [{"name": "o", "shape": [2**32, 2**32], "datatype": "FP32", "data": []}]},
         ["body", "outputs", 0, "data"]),
        ("request", {"something": 1}, ["body"]),
        ("request", [1, 2], ["body"]),
        ("response", {"predictions": [7]}, ["body", "predictions", 0]),
        ("response", {"predictions": [{"label": 1}]}, ["body", "predictions"]),
        ("response", {"outputs": [{"name": "o", "shape": [1, 2, 2], "datatype": "FP32", "data": [1, 2, 3, 4]}]},
         ["body", "outputs", 0, "shape"]),
    ],
)
async def test_a_body_that_does_not_fit_the_model_is_a_422_naming_where(
    aredis: aioredis.Redis, redis_client: redis.Redis, redis_url: str, kind: str, body: Any, loc: list[Any]
) -> None:
    await register(aredis, iris())
    with ingest_service(redis_url) as client:
        response = post(client, kind, body)
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"] == loc
        assert not redis_client.keys("*kserve:pending*")  # nothing stored for a half that cannot be read
        broken = client.post("/kserve", content=b"{not json", headers=headers(kind))
        assert broken.status_code == 422 and broken.json()["detail"][0]["loc"] == ["body"]


async def test_a_pair_whose_halves_disagree_publishes_nothing(
    aredis: aioredis.Redis, redis_client: redis.Redis, redis_url: str
) -> None:
    await register(aredis, iris())
    with ingest_service(redis_url) as client:
        post(client, "request", V1_REQUEST)  # two rows
        mismatch = post(client, "response", {"predictions": [1]})
        assert mismatch.status_code == 422 and "2 rows" in mismatch.json()["detail"][0]["msg"]
    assert redis_client.xlen(IRIS.predictions) == 0


async def test_rows_left_out_are_logged_naming_the_model_and_version(
    aredis: aioredis.Redis, redis_client: redis.Redis, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """One model service logs for every registered model: its line must say which one."""
    await register(aredis, iris())
    with ingest_service(redis_url) as client:
        post(client, "request", {"instances": [[6.8, 2.8, 4.8, 1e31], [6.0, 3.4, 4.5, 1.6]]})
        assert post(client, "response", V1_RESPONSE).json() == {"status": "paired", "published": 1, "rejected": 1}
    (line,) = [r for r in caplog.records if "rows left out" in r.getMessage()]
    assert (line.model, line.model_version) == ("sklearn-iris", "1")
    assert logging.Formatter(LOG_FORMAT).format(line).endswith(
        f"[sklearn-iris v1] kserve {CE_ID}: 1 of 2 rows left out (values beyond 1e+30)")


async def test_a_half_of_more_rows_than_a_batch_takes_is_refused_before_it_is_stored(
    aredis: aioredis.Redis, redis_client: redis.Redis, redis_url: str
) -> None:
    """A half larger than the publish queue could hold was stored, then its pair was published in part
    and answered 503 (the logger never resends: the rest was lost). Now either half over
    DRIFTWATCH_MAX_BATCH_ROWS is a 422 at once, and nothing of it is stored or published."""
    await register(aredis, iris())
    rows = 11
    with ingest_service(redis_url, DRIFTWATCH_MAX_BATCH_ROWS=rows - 1, DRIFTWATCH_PUBLISH_QUEUE_MAX=rows - 1) as client:
        for kind, body in (("request", {"instances": [[6.8, 2.8, 4.8, 1.4]] * rows}),
                           ("response", {"predictions": [1] * rows})):
            refused = post(client, kind, body)
            assert refused.status_code == 422, refused.text
            assert refused.json()["detail"][0]["loc"] == ["body"] and f"{rows} rows" in refused.text
        assert not redis_client.keys("*kserve:pending*")
        post(client, "request", {"instances": [[6.8, 2.8, 4.8, 1.4]] * (rows - 1)})
        assert post(client, "response", {"predictions": [1] * (rows - 1)}).json()["status"] == "paired"
        wait_until(lambda: redis_client.xlen(IRIS.predictions) == rows - 1)


async def test_a_lone_half_expires(aredis: aioredis.Redis, redis_client: redis.Redis, redis_url: str) -> None:
    await register(aredis, iris())
    with ingest_service(redis_url, DRIFTWATCH_KSERVE_PAIR_TTL_S=0.2) as client:
        assert post(client, "request", V1_REQUEST).json()["status"] == "waiting"
        assert redis_client.keys("*kserve:pending*")
        wait_until(lambda: not redis_client.keys("*kserve:pending*"), timeout_s=5)
        # The response alone after that waits in its turn: nothing is published from half a pair.
        assert post(client, "response", V1_RESPONSE).json()["status"] == "waiting"
    assert redis_client.xlen(IRIS.predictions) == 0


async def test_structured_mode_and_the_api_key(aredis: aioredis.Redis, redis_client: redis.Redis,
                                               redis_url: str) -> None:
    await register(aredis, iris())

    def structured(kind: str, data: Any, *, b64: bool = False) -> bytes:
        h = headers(kind)
        event = {k[3:]: v for k, v in h.items() if k.startswith("ce-")}
        if b64:
            event["data_base64"] = base64.b64encode(json.dumps(data).encode()).decode()
        else:
            event["data"] = data
        return json.dumps(event).encode()

    content = {"content-type": "application/cloudevents+json"}
    with ingest_service(redis_url, DRIFTWATCH_API_KEY="k") as client:
        assert post(client, "request", V1_REQUEST).status_code == 401  # the key is needed by default
        keyed = {**content, "X-API-Key": "k"}
        assert client.post("/kserve", content=structured("request", V1_REQUEST), headers=keyed).status_code == 200
        paired = client.post("/kserve", content=structured("response", V1_RESPONSE, b64=True), headers=keyed)
        assert paired.json()["published"] == 2
    with ingest_service(redis_url, DRIFTWATCH_API_KEY="k", DRIFTWATCH_PROTECT_KSERVE="false") as client:
        assert post(client, "request", V1_REQUEST, ce_id="open").json()["status"] == "waiting"
        assert client.post("/models/sklearn-iris/predictions", json={"rows": []}).status_code == 401
    wait_until(lambda: redis_client.xlen(IRIS.predictions) == 2)


async def test_a_half_that_comes_while_redis_is_away_is_held_and_pairs_once_it_is_back(tmp_path: Any) -> None:
    """KServe's logger resends nothing: the response is held (200), not refused, and meets its
    request (stored in Redis before the outage) once Redis answers, without being sent again."""
    from driftwatch.local_processes import LocalRedisServer

    (tmp_path / "redis").mkdir()
    with LocalRedisServer(data_dir=tmp_path / "redis", appendonly=True) as server:
        client = aioredis.Redis.from_url(server.url)
        await register(client, iris())
        await client.aclose()
        with ingest_service(server.url, DRIFTWATCH_SPILL_DIR=str(tmp_path / "spill")) as service:
            assert post(service, "request", V1_REQUEST).json()["status"] == "waiting"
            server.stop()
            away = post(service, "response", V1_RESPONSE)
            assert away.status_code == 200 and away.json()["status"] == "held", away.text
            assert service.get("/readyz").json()["kserve"]["held"] == 1
            server.start()
            r = redis.Redis.from_url(server.url)
            wait_until(lambda: r.xlen(IRIS.predictions) == 2)
            wait_until(lambda: service.get("/readyz").json()["kserve"]["held"] == 0)
            assert not r.keys("*kserve:pending*")
            r.close()
