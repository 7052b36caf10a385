"""Export on the wire: the SDK's real OTLP exporters against a receiver this test starts.

Every recorder metric must reach the receiver with its name, unit, attributes
and a plausible value, over gRPC and over HTTP/protobuf; process metrics and
the FastAPI instrumentation's ``http.server.request.duration`` too. With no
receiver listening, recording must stay fast and nothing may raise.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from driftwatch.local_processes import free_port
from shared.settings_base import TelemetrySettings
from shared.telemetry import (
    METER_NAME,
    ModelServiceMetrics,
    MonitorMetrics,
    current_provider,
    instrument_fastapi,
    setup_telemetry,
    shutdown_telemetry,
)
from shared.telemetry.catalogue import CATALOGUE, HTTP_SERVER_REQUEST_DURATION
from shared.telemetry.setup import current_delivery
from shared.telemetry.task_metrics import TaskFailureCounter
from tests.support.otlp_receiver import DataPoint, OtlpReceiver

REPORT = {
    "status": "ok",
    "dataset_drift": True,
    "drifted_share": 0.5,
    "features": [
        {"name": "pixel_0", "test": "ks", "statistic": 0.31, "p_value": 1e-6,
         "p_value_adjusted": 6.4e-5, "effect_size": 0.8, "effect_size_kind": "wasserstein",
         "drifted": True},
        {"name": "pixel_1", "test": "ks", "statistic": 0.02, "p_value": 0.9,
         "p_value_adjusted": 1.0, "effect_size": 0.01, "effect_size_kind": "wasserstein",
         "drifted": False},
    ],
    "prediction_drift": {"statistic": 42.0, "p_value": 0.001, "effect_size": 0.2,
                         "drifted": True, "effect_size_kind": "jensen_shannon"},
    "multivariate_drift": {"test": "cross_moment", "statistic": 0.4, "p_value": 0.002, "threshold": 0.2,
                           "effect_size": 0.18, "effect_size_kind": "rms_correlation_change",
                           "n_features": 2, "drifted": True},
}  # fmt: skip


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as rec:
        yield rec


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # A long interval: the test decides when to export (force_flush).
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "60000")
    for var in ("OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_SDK_DISABLED",
                "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)  # fmt: skip
    yield
    shutdown_telemetry(force=True)


def _point(points: list[DataPoint], **attrs: str) -> DataPoint:
    found = [p for p in points if all(p.attributes.get(k) == v for k, v in attrs.items())]
    assert len(found) == 1, (attrs, points)
    return found[0]




@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_every_metric_reaches_the_receiver(
    receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    receiver.clear()
    endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
    provider = setup_telemetry("driftwatch-test", TelemetrySettings())
    meter = provider.get_meter(METER_NAME)

    svc = ModelServiceMetrics(meter, model="digits-mlp", model_version="v1")
    svc.record_inference(0.0002, n=3)
    svc.record_inference(0.004, n=1)
    svc.record_predictions(np.array([3, 3, 7]))
    svc.record_predictions(np.array([7]))
    svc.published(4)
    svc.dropped(2, "queue_full")
    svc.set_queue_depth_callback(lambda: 5)
    svc.ingested("logged", "1", "predictions", accepted=9, rejected=1)
    svc.missing_values("logged", "1", {"age": 2})

    mon = MonitorMetrics(meter, model="digits-mlp")
    mon.update_drift(REPORT, model_version="v1")
    mon.update_performance(accuracy=0.9, coverage=0.25, labelled=250, model_version="v1")
    mon.processed(500, stream="predictions")
    mon.set_stream_stats_callback(lambda: {"lag": 12, "pending": 3})
    mon.set_dlq_length_callback(lambda: 2)
    TaskFailureCounter(meter, model="digits-mlp")("monitor-worker", ValueError("bad window"))

    app = FastAPI()

    @app.get("/items/{item_id}")
    def item(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    @app.get("/livez")
    def livez() -> dict[str, str]:
        return {"status": "ok"}

    instrument_fastapi(app, provider)
    with TestClient(app) as client:
        assert client.get("/items/1").status_code == 200
        assert client.get("/items/2").status_code == 200
        assert client.get("/items/x").status_code == 422
        assert client.get("/livez").status_code == 200

    assert provider.force_flush(timeout_millis=10_000)
    expected = {spec.name for spec in CATALOGUE}
    missing = receiver.wait_for(expected, timeout=10)
    assert not missing, f"not received over {protocol}: {sorted(missing)}"
    transport = "grpc" if protocol == "grpc" else "http"
    assert {p.transport for p in receiver.points()} == {transport}

    # Units and kinds as the catalogue says (and as Prometheus will name them).
    kinds = {"counter": "sum", "updowncounter": "sum", "gauge": "gauge", "histogram": "histogram"}
    for spec in CATALOGUE:
        pts = receiver.points(spec.name)
        assert {p.unit for p in pts} == {spec.unit}, spec.name
        assert {p.kind for p in pts} == {kinds[spec.instrument]}, spec.name
        if spec.instrument in ("counter", "updowncounter"):
            assert {p.monotonic for p in pts} == {spec.instrument == "counter"}, spec.name
        for p in pts:
            assert set(p.attributes) <= set(spec.attributes), (spec.name, p.attributes)
            assert p.resource["service.name"] == "driftwatch-test"

    # Model service values.
    inf = _point(receiver.points("driftwatch.inference.duration"), model="digits-mlp")
    assert inf.count == 2 and inf.sum == pytest.approx(0.0042)
    assert inf.attributes == {"model": "digits-mlp", "model.version": "v1"}
    assert inf.explicit_bounds[0] == pytest.approx(1e-5)
    preds = receiver.points("driftwatch.predictions")
    assert {p.attributes["class"]: p.value for p in preds} == {"3": 2, "7": 2}
    assert receiver.points("driftwatch.events.published")[0].value == 4
    dropped = receiver.points("driftwatch.events.dropped")[0]
    assert dropped.value == 2 and dropped.attributes["reason"] == "queue_full"
    assert receiver.points("driftwatch.events.queued")[0].value == 5

    # Monitor values.
    p0 = _point(receiver.points("driftwatch.feature.drift.statistic"), feature="pixel_0")
    assert p0.value == pytest.approx(0.31)
    assert p0.attributes == {"model": "digits-mlp", "model.version": "v1",
                             "feature": "pixel_0", "test": "ks"}  # fmt: skip
    es = _point(receiver.points("driftwatch.feature.drift.effect_size"), feature="pixel_0")
    assert es.attributes["effect_size.kind"] == "wasserstein" and es.value == pytest.approx(0.8)
    pv = _point(receiver.points("driftwatch.feature.drift.p_value_adjusted"), feature="pixel_1")
    assert pv.value == 1.0
    flags = receiver.points("driftwatch.feature.drift.detected")
    assert {p.attributes["feature"]: p.value for p in flags} == {"pixel_0": 1.0, "pixel_1": 0.0}
    assert receiver.points("driftwatch.dataset.drift.detected")[0].value == 1.0
    assert receiver.points("driftwatch.dataset.drift.share")[0].value == 0.5
    assert receiver.points("driftwatch.prediction.drift.p_value")[0].value == pytest.approx(0.001)
    assert receiver.points("driftwatch.model.accuracy")[0].value == pytest.approx(0.9)
    assert receiver.points("driftwatch.feedback.coverage")[0].value == pytest.approx(0.25)
    assert receiver.points("driftwatch.feedback.labelled")[0].value == 250
    assert receiver.points("driftwatch.events.processed")[0].value == 500
    lag = receiver.points("driftwatch.stream.lag")[0]
    assert lag.value == 12 and lag.attributes == {"model": "digits-mlp", "stream": "predictions"}
    assert receiver.points("driftwatch.stream.pending")[0].value == 3
    dlq = receiver.points("driftwatch.dlq.length")[0]
    assert dlq.value == 2 and dlq.attributes == {"model": "digits-mlp"}

    # HTTP: new semantic conventions (seconds), route template, health probes excluded.
    http = receiver.points(HTTP_SERVER_REQUEST_DURATION)
    assert {p.unit for p in http} == {"s"}
    by_status = {p.attributes["http.response.status_code"]: p for p in http}
    assert by_status[200].count == 2 and by_status[422].count == 1
    assert {p.attributes["http.route"] for p in http} == {"/items/{item_id}"}
    assert "http.server.duration" not in receiver.names()

    # Process metrics: plausible values.
    cpu = receiver.points("process.cpu.time")
    assert {p.attributes["cpu.mode"] for p in cpu} == {"user", "system"}
    assert sum(p.value or 0 for p in cpu) > 0
    rss = receiver.points("process.memory.usage")[0].value
    assert rss is not None and 10e6 < rss < 8e9
    assert (receiver.points("process.thread.count")[0].value or 0) >= 1


def test_service_name_from_environment_wins(
    receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver.clear()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.grpc_endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "renamed")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")
    provider = setup_telemetry("driftwatch-test", TelemetrySettings(), instrument_system=False)
    MonitorMetrics(provider.get_meter(METER_NAME), model="m").processed(1)
    assert provider.force_flush(timeout_millis=10_000)
    assert not receiver.wait_for(["driftwatch.events.processed"], timeout=10)
    point = receiver.points("driftwatch.events.processed")[0]
    assert point.resource["service.name"] == "renamed"
    assert point.resource["deployment.environment"] == "test"
    assert point.resource["service.instance.id"]
    assert not any(n.startswith("process.") for n in receiver.names())


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_no_receiver_is_harmless(monkeypatch: pytest.MonkeyPatch, protocol: str) -> None:
    """Nothing listens: recording stays in memory, flush and shutdown are bounded."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "50")  # the reader thread keeps failing
    provider = setup_telemetry("driftwatch-test", TelemetrySettings())
    svc = ModelServiceMetrics(provider.get_meter(METER_NAME), model="m", model_version="1")
    classes = np.array([1, 2, 2])
    started = time.perf_counter()
    for _ in range(2_000):
        svc.record_inference(0.0001, n=3)
        svc.record_predictions(classes)
    per_call = (time.perf_counter() - started) / 2_000
    assert per_call < 0.002, f"recording took {per_call * 1e6:.0f} us per call"
    delivery = current_delivery()
    assert delivery is not None
    deadline = time.monotonic() + 20
    while delivery.failures < 2:  # failed exports happen meanwhile, in the reader's thread
        assert time.monotonic() < deadline, "no failed export seen"
        time.sleep(0.02)
    started = time.perf_counter()
    provider.force_flush(timeout_millis=1_000)
    shutdown_telemetry(timeout_millis=1_000)
    assert time.perf_counter() - started < 8


def test_one_provider_per_process_released_by_the_last_user(
    receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two apps in one process share the provider; the first to stop must not
    stop the other's export."""
    receiver.clear()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.grpc_endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    first = setup_telemetry("model-service", TelemetrySettings(), instrument_system=False)
    second = setup_telemetry("monitor", TelemetrySettings(), instrument_system=False)
    assert first is second
    shutdown_telemetry()  # the model service stops first
    MonitorMetrics(second.get_meter(METER_NAME), model="m").processed(2)
    assert second.force_flush(timeout_millis=10_000)
    assert not receiver.wait_for(["driftwatch.events.processed"], timeout=10)
    shutdown_telemetry()
    assert current_provider() is None


def test_sdk_disabled_exports_nothing(
    receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver.clear()
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.grpc_endpoint)
    provider = setup_telemetry("driftwatch-test", TelemetrySettings())
    svc = ModelServiceMetrics(provider.get_meter(METER_NAME), model="m", model_version="1")
    svc.record_predictions(np.array([1, 2]))
    assert current_delivery() is None  # no exporter at all: nothing can be in flight
    provider.force_flush(timeout_millis=1_000)
    shutdown_telemetry()
    assert receiver.names() == set()


def test_unknown_protocol_fails_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    with pytest.raises(ValueError, match="http/json"):
        setup_telemetry("driftwatch-test", TelemetrySettings())
