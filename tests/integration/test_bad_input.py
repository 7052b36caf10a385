"""No input gives a 500, and no input makes a large or slow answer, on either service.

A 422 echoes only what it can write (JSON integers beyond 64 bits are legal
JSON and were 500s), lists at most 20 errors and counts the rest, and a list
longer than the served model takes is refused by its length before any item
is validated (4 MB of wrong items once made an 85 MB answer).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import redis
from fastapi.exceptions import RequestValidationError
from fastapi.testclient import TestClient

from driftwatch.local_processes import LocalRedisServer
from model_service.app import create_app as create_model_service
from model_service.routes.predict import _require_finite
from model_service.serving import PredictionResult
from model_service.serving_settings import ModelServiceSettings
from monitor.app import create_app as create_monitor
from monitor.monitor_settings import MonitorSettings
from shared.http import CLIENT_CLOSED_REQUEST, MAX_ERRORS_SHOWN
from tests.fault.procs import stream_ids

F = 64
HUGE = [2**64, -(2**63) - 1, 10**30, 10**4000]
BEYOND_THE_BOUND = 10**31  # features lie within +-1e30 (model_service.schemas.MAX_FEATURE_ABS)
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def model_service(
    model_dir: Path, redis_server: LocalRedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    settings = ModelServiceSettings(
        REDIS_URL=redis_server.url, DRIFTWATCH_MODEL_DIR=model_dir,
        DRIFTWATCH_SPILL_DIR=tmp_path_factory.mktemp("spill"),
    )
    with TestClient(create_model_service(settings)) as client:
        yield client


@pytest.fixture
def monitor(redis_url: str) -> Iterator[TestClient]:
    with TestClient(create_monitor(MonitorSettings(REDIS_URL=redis_url))) as client:
        yield client


def _send(client: TestClient, method: str, url: str, raw: str) -> dict:
    response = client.request(method, url, content=raw.encode(), headers=JSON)
    assert response.status_code == 422, (url, raw[:80], response.status_code, response.text[:300])
    return response.json()


@pytest.mark.parametrize("n", HUGE, ids=lambda n: f"{len(str(n))}-digits")
def test_huge_integers_anywhere_are_a_422(model_service: TestClient, monitor: TestClient, n: int) -> None:
    zeros = ",".join(["0"] * (F - 1))
    value = n * BEYOND_THE_BOUND
    for raw in (
        f'{{"features": {n}}}',
        f'{{"features": [{value},{zeros}]}}',
        f'{{"instances": [[{zeros},{value}]]}}',
        f'{{"features": {{"pixel_0_0": {value}}}}}',
    ):
        _send(model_service, "POST", "/predict", raw)
    for label in (n, -n):
        _send(model_service, "POST", "/feedback", f'{{"prediction_id": "{"a" * 32}", "label": {label}}}')
    rule = '{{"metric": "stream_lag", "op": ">", "value": 1, {field}}}'
    for field in (f'"for": {{"windows": {n}}}', f'"keep_firing_for": {{"seconds": {n}}}', f'"min_samples": {n}'):
        body = _send(monitor, "PUT", "/alerts/thresholds/Lag", rule.format(field=field))
        assert body["detail"][0]["loc"][:2] == ["body", field.split('"')[1]]
        _send(monitor, "PUT", "/alerts/thresholds", "[" + rule.format(field=field)[:-1] + ', "name": "Lag"}]')


@pytest.mark.parametrize("wrong", ["true", "false", '"10"'], ids=["true", "false", "numeric-string"])
def test_a_rule_number_of_another_json_type_is_a_422_naming_it(monitor: TestClient, wrong: str) -> None:
    """Pydantic's lax mode stored "value": true as a threshold of 1 (and "10" as 10)."""
    rule = '{{"metric": "stream_lag", "op": ">", "value": 1, {field}}}'
    for field, loc in (("\"value\": " + wrong, ["body", "value"]), ('"min_samples": ' + wrong, ["body", "min_samples"]),
                       ('"for": {"windows": ' + wrong + "}", ["body", "for", "windows"]),
                       ('"keep_firing_for": {"seconds": ' + wrong + "}", ["body", "keep_firing_for", "seconds"])):
        raw = rule.format(field=field).replace('"value": 1, "value"', '"value"')
        assert _send(monitor, "PUT", "/alerts/thresholds/Lag", raw)["detail"][0]["loc"] == loc, raw
    taken = monitor.put("/alerts/thresholds/Lag", content=rule.format(field='"for": {"windows": 2.0}').encode(),
                        headers=JSON)
    assert taken.status_code in (200, 201) and taken.json()["for"] == {"windows": 2}  # JSON's integer 2.0 stays 2


def test_errors_are_capped_and_counted(model_service: TestClient) -> None:
    body = _send(model_service, "POST", "/predict", '{"features": [' + ",".join(['"x"'] * F) + "]}")
    assert len(body["detail"]) == MAX_ERRORS_SHOWN
    assert body["error_count"] >= F  # one per item, and pydantic adds the length it then misses
    assert [e["loc"] for e in body["detail"][:2]] == [["body", "features", 0], ["body", "features", 1]]


@pytest.mark.parametrize(
    ("raw", "n"),
    [
        ('{"features": [' + ",".join(["true"] * 800_000) + "]}", 800_000),
        ('{"features": {' + ",".join(f'"k{i}": true' for i in range(250_000)) + "}}", 250_000),
        ('{"instances": [' + ",".join(["[true]"] * 500_000) + "]}", 500_000),
    ],
    ids=["list", "mapping", "rows"],
)
def test_a_list_longer_than_the_model_takes_is_refused_by_its_length(
    model_service: TestClient, raw: str, n: int
) -> None:
    assert len(raw) < 4 * 1024 * 1024  # under the body limit: this is about validation, not 413
    response = model_service.post("/predict", content=raw.encode(), headers=JSON)
    assert response.status_code == 422
    # One error about the length: no item was validated (each would have been an error).
    assert response.json()["error_count"] == 1 and len(response.content) < 1_000
    assert str(n) in response.json()["detail"][0]["msg"]


def test_rows_the_model_cannot_score_are_refused_and_never_published(
    model_service: TestClient, redis_server: LocalRedisServer
) -> None:
    """A sample whose output overflows (a model with larger weights than digits' can, within the
    documented bound) is a 422, not NaN probabilities, and stays out of the drift windows."""
    service = model_service.app.state.service
    matrix = np.zeros((3, F), dtype=np.float32)
    scored = service.score(matrix)
    probabilities = scored.probabilities.copy()
    probabilities[1] = np.nan
    overflowed = PredictionResult(scored.ids, scored.classes, probabilities, scored.timestamp_ms)
    model_service.portal.call(service.publish_predictions, matrix, overflowed)  # type: ignore[union-attr]
    with pytest.raises(RequestValidationError) as refused:
        _require_finite(probabilities, by_row=True)
    assert refused.value.errors()[0]["loc"] == ("body", "instances", 1)

    client = redis.Redis.from_url(redis_server.url)
    deadline = time.monotonic() + 10
    while not {scored.ids[0], scored.ids[2]} <= set(stream_ids(client, service.keys.predictions)):
        assert time.monotonic() < deadline, "the finite rows never reached the stream"
        time.sleep(0.05)
    assert scored.ids[1] not in stream_ids(client, service.keys.predictions)
    client.close()


def _gone_mid_body(client: TestClient, method: str, path: str, extra: list[tuple[bytes, bytes]]) -> list[dict]:
    """Send ``method path`` straight to the app: a body declared 1,000 bytes long, 14 sent, then the
    client disconnects (as uvicorn tells an app); what the app sent back."""
    headers = [(b"host", b"t"), (b"content-type", b"application/json"), (b"content-length", b"1000"), *extra]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": headers,
             "client": ("127.0.0.1", 50000), "server": ("t", 80)}
    messages = [{"type": "http.request", "body": b'{"features": [', "more_body": True}]
    sent: list[dict] = []

    async def receive() -> dict:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    client.portal.call(client.app, scope, receive, send)  # type: ignore[union-attr]
    return sent


def test_a_client_that_goes_away_mid_body_is_not_a_server_error(
    model_service: TestClient, monitor: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A dropped upload raised ClientDisconnect out of the app: uvicorn logged "Exception in ASGI
    application" with its traceback, once per upload any client chose to abandon."""
    kserve = [(b"ce-specversion", b"1.0"), (b"ce-type", b"org.kubeflow.serving.inference.request"),
              (b"ce-source", b"t"), (b"ce-id", b"1"), (b"ce-inferenceservicename", b"digits-mlp")]
    cases = [(model_service, "POST", "/predict", []), (model_service, "POST", "/kserve", kserve),
             (monitor, "PUT", "/alerts/thresholds/Lag", []), (monitor, "PUT", "/models/m/versions/1", [])]
    with caplog.at_level(logging.WARNING):
        for client, method, path, extra in cases:
            sent = _gone_mid_body(client, method, path, extra)
            assert sent[0]["status"] == CLIENT_CLOSED_REQUEST, (path, sent)
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
