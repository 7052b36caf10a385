"""API keys on both services: writes and /predict need the key (401 without, 403
wrong), /predict can be left open on purpose, reads need it only with
protect_reads, probes never do; and the OpenAPI documents declare the key on
exactly the operations that check it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from model_service.app import create_app as create_model_service
from model_service.serving_settings import ModelServiceSettings
from monitor.app import create_app as create_monitor
from monitor.monitor_settings import MonitorSettings

KEY = "s3cret-key"
RULE = {"name": "Lag", "metric": "stream_lag", "op": ">", "value": 10}
SAMPLE = {"features": [0.0] * 64}
INGEST = {"POST /models/{name}/predictions", "POST /models/{name}/feedback"}
KSERVE = {"POST /kserve", "POST /kserve/{name}"}


def _model_service(model_dir: Path, redis_url: str, protect_reads: bool, protect_predict: bool = True) -> TestClient:
    return TestClient(create_model_service(ModelServiceSettings(
        REDIS_URL=redis_url, DRIFTWATCH_MODEL_DIR=model_dir, DRIFTWATCH_API_KEY=KEY,
        DRIFTWATCH_PROTECT_READS=protect_reads, DRIFTWATCH_PROTECT_PREDICT=protect_predict)))


def _monitor(redis_url: str, protect_reads: bool) -> TestClient:
    return TestClient(create_monitor(MonitorSettings(
        REDIS_URL=redis_url, DRIFTWATCH_API_KEY=KEY, DRIFTWATCH_PROTECT_READS=protect_reads)))


def _secured(spec: dict[str, Any]) -> set[str]:
    return {f"{method.upper()} {path}" for path, ops in spec["paths"].items()
            for method, op in ops.items() if op.get("security")}


@pytest.fixture(params=[False, True], ids=["reads-open", "reads-protected"])
def protect_reads(request: pytest.FixtureRequest) -> Iterator[bool]:
    yield request.param


def test_model_service_keys(model_dir: Path, redis_url: str, protect_reads: bool) -> None:
    with _model_service(model_dir, redis_url, protect_reads) as client:
        body = {"prediction_id": "a" * 32, "label": 1}
        assert client.post("/feedback", json=body).status_code == 401
        assert client.post("/feedback", json=body, headers={"X-API-Key": "wrong"}).status_code == 403
        assert client.post("/feedback", json=body, headers={"X-API-Key": KEY}).status_code == 202
        assert client.get("/model").status_code == (401 if protect_reads else 200)
        assert client.get("/model", headers={"X-API-Key": KEY}).status_code == 200
        assert client.get("/livez").status_code == 200
        # /predict is a write into the drift windows: it needs the key by default.
        assert client.post("/predict", json=SAMPLE).status_code == 401
        assert client.post("/predict", json=SAMPLE, headers={"X-API-Key": "wrong"}).status_code == 403
        assert client.post("/predict", json=SAMPLE, headers={"X-API-Key": KEY}).status_code == 200
        # Logging another model's events is a write too (the model need not exist to need the key).
        logged = {"rows": [{"features": [0.0], "prediction": 0}]}
        assert client.post("/models/other/predictions", json=logged).status_code == 401
        assert client.post("/models/other/predictions", json=logged, headers={"X-API-Key": KEY}).status_code == 404
        assert client.post("/models/other/feedback", json={"labels": []}).status_code == 401
        expected = {"POST /feedback", "POST /predict", *INGEST, *KSERVE} | ({"GET /model"} if protect_reads else set())
        assert _secured(client.app.openapi()) == expected


def test_predict_can_be_left_open_on_purpose(model_dir: Path, redis_url: str) -> None:
    with _model_service(model_dir, redis_url, protect_reads=False, protect_predict=False) as client:
        assert client.post("/predict", json=SAMPLE).status_code == 200
        assert client.post("/feedback", json={"prediction_id": "a" * 32, "label": 1}).status_code == 401
        assert _secured(client.app.openapi()) == {"POST /feedback", *INGEST, *KSERVE}


def test_without_a_key_nothing_is_guarded_or_documented_as_guarded(model_dir: Path, redis_url: str) -> None:
    settings = ModelServiceSettings(REDIS_URL=redis_url, DRIFTWATCH_MODEL_DIR=model_dir, DRIFTWATCH_PROTECT_READS=True)
    with TestClient(create_model_service(settings)) as client:
        assert client.post("/predict", json=SAMPLE).status_code == 200
        assert _secured(client.app.openapi()) == set()


def test_monitor_keys(redis_url: str, protect_reads: bool) -> None:
    with _monitor(redis_url, protect_reads) as client:
        url = "/alerts/thresholds/Lag"
        assert client.put(url, json=RULE).status_code == 401
        assert client.put(url, json=RULE, headers={"X-API-Key": "wrong"}).status_code == 403
        assert client.put(url, json=RULE, headers={"X-API-Key": KEY}).status_code in (200, 201)
        for read in ("/drift", "/drift/history", "/drift/timeline", "/overview", "/alerts", "/alerts/thresholds"):
            assert client.get(read).status_code == (401 if protect_reads else 200), read
            assert client.get(read, headers={"X-API-Key": KEY}).status_code == 200, read
        assert client.get("/livez").status_code == 200
        # The web UI's page and assets hold no data: served without a key; its reads need one.
        assert client.get("/drift/histograms/0").status_code == (401 if protect_reads else 404)
        for asset in ("/", "/ui/app.js", "/ui/vendor/uPlot.iife.min.js"):
            assert client.get(asset).status_code == 200, asset
        secured = _secured(client.app.openapi())
        writes = {"PUT /alerts/thresholds", "PUT /alerts/thresholds/{name}", "DELETE /alerts/thresholds/{name}"}
        assert writes <= secured
        assert ("GET /drift" in secured) is protect_reads and ("GET /readyz" not in secured)
