"""Both services, driven by real traffic, export their metrics over OTLP to a real receiver."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from model_service.app import create_app as create_model_service
from model_service.serving_settings import ModelServiceSettings
from monitor.app import create_app as create_monitor
from monitor.monitor_settings import MonitorSettings
from tests.support.otlp_receiver import OtlpReceiver

MODEL_SERVICE_METRICS = {
    "http.server.request.duration",
    "driftwatch.inference.duration",
    "driftwatch.predictions",
    "driftwatch.events.published",
    "driftwatch.events.queued",
    "process.cpu.time",
    "process.memory.usage",
}
MONITOR_METRICS = {
    "driftwatch.feature.drift.statistic",
    "driftwatch.feature.drift.p_value",
    "driftwatch.feature.drift.effect_size",
    "driftwatch.dataset.drift.detected",
    "driftwatch.dataset.drift.share",
    "driftwatch.prediction.drift.p_value",
    "driftwatch.model.accuracy",
    "driftwatch.feedback.coverage",
    "driftwatch.stream.lag",
    "driftwatch.stream.pending",
    "driftwatch.events.processed",
}


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[OtlpReceiver]:
    with OtlpReceiver(http_port=None) as rec:
        monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rec.grpc_endpoint)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "300")
        yield rec


def test_traffic_through_both_services_reaches_the_receiver(
    receiver: OtlpReceiver, model_dir: Path, redis_url: str
) -> None:
    rows = [[float(i % 17)] * 64 for i in range(60)]
    model_settings = ModelServiceSettings(REDIS_URL=redis_url, DRIFTWATCH_MODEL_DIR=model_dir)
    with TestClient(create_model_service(model_settings)) as client:
        ids = [p["prediction_id"] for p in client.post("/predict", json={"instances": rows}).json()["predictions"]]
        for pid in ids[:30]:
            assert client.post("/feedback", json={"prediction_id": pid, "label": 1}).status_code == 202
        missing = receiver.wait_for(MODEL_SERVICE_METRICS, timeout=15)
    assert not missing, f"model service metrics never arrived: {missing}"
    predictions = receiver.latest("driftwatch.predictions")
    assert sum(p.value for p in predictions) == 60
    assert all(p.attributes["model"] == "digits-mlp" for p in predictions)
    durations = [p for p in receiver.points("http.server.request.duration") if p.attributes.get("http.route")]
    assert {p.attributes["http.route"] for p in durations} >= {"/predict", "/feedback"}

    monitor_settings = MonitorSettings(REDIS_URL=redis_url, DRIFTWATCH_WINDOW_SIZE=50, DRIFTWATCH_READ_BLOCK_MS=50)
    with TestClient(create_monitor(monitor_settings)) as monitor:
        deadline = time.monotonic() + 20
        while monitor.get("/drift").json().get("window") != 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        missing = receiver.wait_for(MONITOR_METRICS, timeout=20)
    assert not missing, f"monitor metrics never arrived: {missing}"
    features = {p.attributes["feature"] for p in receiver.latest("driftwatch.feature.drift.p_value")}
    assert len(features) == 64
    accuracy = receiver.latest("driftwatch.model.accuracy")
    assert len(accuracy) == 1 and 0.0 <= accuracy[0].value <= 1.0
