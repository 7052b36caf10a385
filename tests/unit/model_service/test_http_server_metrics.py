"""``instrument_fastapi``: one lean middleware records ``http.server.request.duration``, once per request,
with the semantic conventions' attributes (it replaced the OpenTelemetry FastAPI instrumentation on the
hot path)."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader

from shared.http import install_error_handlers, validation_error
from shared.telemetry import instrument_fastapi
from shared.telemetry.http_server import DURATION_BUCKETS, HTTP_SERVER_REQUEST_DURATION


def _points(reader: InMemoryMetricReader) -> list[tuple[str, HistogramDataPoint]]:
    data = reader.get_metrics_data()
    assert data is not None
    return [
        (scope.scope.name, point)
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == HTTP_SERVER_REQUEST_DURATION
        for point in metric.data.data_points
        if isinstance(point, HistogramDataPoint)
    ]


@pytest.fixture
def reader(monkeypatch: pytest.MonkeyPatch) -> InMemoryMetricReader:
    monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)  # the suite's default is off
    return InMemoryMetricReader()


@pytest.fixture
def client(reader: InMemoryMetricReader) -> TestClient:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        if item_id == 13:
            raise validation_error(("item_id",), "unlucky")
        return {"item": item_id}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    @app.get("/livez")
    async def livez() -> dict[str, str]:
        return {"status": "ok"}

    install_error_handlers(app)
    instrument_fastapi(app, MeterProvider(metric_readers=[reader]))
    return TestClient(app, raise_server_exceptions=False)


def test_one_point_per_route_and_status_with_semconv_attributes(
    client: TestClient, reader: InMemoryMetricReader
) -> None:
    assert client.get("/items/1").status_code == 200
    assert client.get("/items/2").status_code == 200
    assert client.get("/items/13").status_code == 422
    assert client.get("/boom").status_code == 500
    assert client.get("/nowhere").status_code == 404
    assert client.get("/livez").status_code == 200

    points = _points(reader)
    # One recorder only: FastAPI's native request metrics are off for this app.
    assert {scope for scope, _ in points} == {"driftwatch.http"}
    by_status = {p.attributes["http.response.status_code"]: p for _, p in points}
    assert set(by_status) == {200, 422, 500, 404}
    ok = by_status[200]
    assert ok.count == 2
    assert dict(ok.attributes) == {
        "http.request.method": "GET",
        "url.scheme": "http",
        "network.protocol.version": "1.1",
        "http.response.status_code": 200,
        "http.route": "/items/{item_id}",
    }
    assert tuple(ok.explicit_bounds) == DURATION_BUCKETS
    assert "error.type" not in by_status[422].attributes
    assert by_status[500].attributes["error.type"] == "RuntimeError"
    assert by_status[500].attributes["http.route"] == "/boom"
    assert "http.route" not in by_status[404].attributes
    # Health probes are excluded by default.
    assert all(p.attributes.get("http.route") != "/livez" for _, p in points)
