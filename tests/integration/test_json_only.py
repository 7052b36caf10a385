"""Every endpoint that takes a JSON body refuses other content types with 415.

A browser posts ``text/plain`` and form bodies to any origin without a CORS
preflight, so a web page a visitor opens could otherwise write predictions
or alert rules.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from model_service.app import create_app as create_model_service
from model_service.serving_settings import ModelServiceSettings
from monitor.app import create_app as create_monitor
from monitor.monitor_settings import MonitorSettings

RULE = '{"metric": "stream_lag", "op": ">", "value": 10}'
NOT_JSON = ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None]


@pytest.fixture
def model_service(model_dir: Path, redis_url: str) -> Iterator[TestClient]:
    settings = ModelServiceSettings(REDIS_URL=redis_url, DRIFTWATCH_MODEL_DIR=model_dir)
    with TestClient(create_model_service(settings)) as client:
        yield client


@pytest.fixture
def monitor(redis_url: str) -> Iterator[TestClient]:
    with TestClient(create_monitor(MonitorSettings(REDIS_URL=redis_url))) as client:
        yield client


def _post(client: TestClient, method: str, url: str, body: str, content_type: str | None) -> int:
    headers = {"content-type": content_type} if content_type else {}
    return client.request(method, url, content=body.encode(), headers=headers).status_code


@pytest.mark.parametrize("content_type", NOT_JSON)
def test_model_service_takes_json_only(model_service: TestClient, content_type: str | None) -> None:
    sample = '{"features": [' + ",".join(["0"] * 64) + "]}"
    feedback = '{"prediction_id": "' + "a" * 32 + '", "label": 1}'
    assert _post(model_service, "POST", "/predict", sample, content_type) == 415
    assert _post(model_service, "POST", "/feedback", feedback, content_type) == 415
    # The same bodies declared as JSON (with parameters, or a +json type) are taken.
    assert _post(model_service, "POST", "/predict", sample, "application/json; charset=utf-8") == 200
    assert _post(model_service, "POST", "/feedback", feedback, "application/vnd.api+json") == 202


@pytest.mark.parametrize("content_type", NOT_JSON)
def test_monitor_takes_json_only(monitor: TestClient, content_type: str | None) -> None:
    assert _post(monitor, "PUT", "/alerts/thresholds/Lag", RULE, content_type) == 415
    assert _post(monitor, "PUT", "/alerts/thresholds", f"[{RULE[:-1]}, \"name\": \"Lag\"}}]", content_type) == 415
    assert _post(monitor, "PUT", "/alerts/thresholds/Lag", RULE, "application/json") in (200, 201)
    assert "Lag" in {rule["name"] for rule in monitor.get("/alerts/thresholds").json()}


def test_every_json_body_operation_documents_415(model_service: TestClient, monitor: TestClient) -> None:
    for client in (model_service, monitor):
        for path, operations in client.app.openapi()["paths"].items():
            for method, operation in operations.items():
                if "requestBody" in operation:
                    assert {"413", "415", "422"} <= set(operation["responses"]), f"{method} {path}"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'[{"name": "Lag", "metric": "stream_lag", "op": ">", "value": 1\xff}]', "UnicodeDecodeError"),
        (gzip.compress(RULE.encode()), "UnicodeDecodeError"),  # gzip sent without its Content-Encoding
        (b"[" * 10_000 + b"]" * 10_000, "nested too deeply"),
    ],
    ids=["invalid-utf8", "gzip-bytes", "nested-10k"],
)
def test_a_json_body_fastapi_cannot_decode_is_a_422_naming_the_body(
    monitor: TestClient, body: bytes, reason: str
) -> None:
    """FastAPI answered these a bare 400 ("There was an error parsing the body") on the routes whose
    body it parses (the alert rules); the model service's routes already said 422."""
    for method, url in (("PUT", "/alerts/thresholds"), ("PUT", "/alerts/thresholds/Lag")):
        response = monitor.request(method, url, content=body, headers={"content-type": "application/json"})
        assert response.status_code == 422, (url, response.text)
        [error] = response.json()["detail"]
        assert error["loc"] == ["body"] and reason in error["msg"], error
    # Other HTTP errors keep FastAPI's answers: a rule that is not there is still a 404.
    assert monitor.delete("/alerts/thresholds/Nope").json() == {"detail": "no alert rule named 'Nope'"}
