"""OTEL_METRICS_EXPORTER: which readers are built, and the scrape endpoint's names."""

from __future__ import annotations

import httpx
import pytest
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, PeriodicExportingMetricReader
from prometheus_client.parser import text_string_to_metric_families

from shared.settings_base import TelemetrySettings
from shared.telemetry import setup as telemetry_setup
from shared.telemetry.catalogue import prometheus_name
from shared.telemetry.readers import chosen_exporters, metric_readers, prometheus_reader


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", ["otlp"]),
        ("otlp", ["otlp"]),
        ("prometheus", ["prometheus"]),
        (" Prometheus , otlp,prometheus", ["prometheus", "otlp"]),
        ("none", []),
        ("none,console", ["console"]),
    ],
)
def test_exporter_names_are_parsed_like_the_sdk(value: str, expected: list[str]) -> None:
    assert chosen_exporters(value) == expected


def test_an_unknown_exporter_is_refused_at_start_up() -> None:
    with pytest.raises(ValueError, match=r"OTEL_METRICS_EXPORTER: unknown metrics exporter.*zipkin"):
        chosen_exporters("otlp,zipkin")


def test_none_builds_no_reader_and_the_default_builds_otlp(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
    assert metric_readers(lambda: pytest.fail("no OTLP exporter wanted"), TelemetrySettings()).readers == []
    monkeypatch.delenv("OTEL_METRICS_EXPORTER")
    built = metric_readers(lambda: telemetry_setup.make_exporter("http/protobuf"), TelemetrySettings())
    assert [type(r) for r in built.readers] == [PeriodicExportingMetricReader]
    for reader in built.readers:
        reader.shutdown()


def _gauge(_options: CallbackOptions) -> list[Observation]:
    return [Observation(0.25, {"model": "digits-mlp", "model.version": "1"})]


def test_scrape_endpoint_names_follow_the_collector(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit ``1`` gauges get ``_ratio`` as through the Collector; the OTLP name is untouched."""
    monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
    reader, endpoint = prometheus_reader("127.0.0.1", 0)
    memory = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader, memory])
    try:
        meter = provider.get_meter("driftwatch")
        meter.create_observable_gauge("driftwatch.dataset.drift.share", [_gauge], unit="1")
        meter.create_observable_gauge("driftwatch.model.accuracy.ratio", [_gauge], unit="1")
        meter.create_counter("driftwatch.events.published", unit="{event}").add(3, {"stream": "predictions"})
        meter.create_histogram("driftwatch.inference.duration", unit="s").record(0.002)
        text = httpx.get(endpoint.url, timeout=5).text
        families = {f.name: f for f in text_string_to_metric_families(text)}
        assert prometheus_name("driftwatch.dataset.drift.share", "1", "gauge") == "driftwatch_dataset_drift_share_ratio"
        share = families["driftwatch_dataset_drift_share_ratio"].samples[0]
        assert share.value == 0.25 and share.labels["model_version"] == "1"
        assert "driftwatch_model_accuracy_ratio" in families  # no double suffix
        # The parser strips _total and histogram suffixes off family names.
        assert families["driftwatch_events_published"].type == "counter"
        assert {s.name for s in families["driftwatch_inference_duration_seconds"].samples} >= {
            "driftwatch_inference_duration_seconds_bucket",
            "driftwatch_inference_duration_seconds_count",
        }
        otlp_names = {
            m.name
            for rm in memory.get_metrics_data().resource_metrics
            for sm in rm.scope_metrics
            for m in sm.metrics
        }
        assert "driftwatch.dataset.drift.share" in otlp_names
    finally:
        provider.shutdown()
        endpoint.close()
    with pytest.raises(httpx.TransportError):
        httpx.get(endpoint.url, timeout=2)


def test_setup_serves_and_shutdown_stops_the_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "prometheus")
    monkeypatch.setenv("OTEL_EXPORTER_PROMETHEUS_HOST", "127.0.0.1")
    monkeypatch.setenv("OTEL_EXPORTER_PROMETHEUS_PORT", "0")
    telemetry_setup.shutdown_telemetry(force=True)
    telemetry_setup.setup_telemetry("model-service", TelemetrySettings(), set_global=False)
    url = telemetry_setup.prometheus_endpoint_url()
    try:
        assert url is not None
        assert "process_memory_usage_bytes" in httpx.get(url, timeout=5).text
    finally:
        telemetry_setup.shutdown_telemetry(force=True)
    assert telemetry_setup.prometheus_endpoint_url() is None
    with pytest.raises(httpx.TransportError):
        httpx.get(url, timeout=2)
