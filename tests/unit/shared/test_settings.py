"""Settings come from the same variables as before the split, read once where a process starts."""

from __future__ import annotations

import pytest

from model_service.serving_settings import ModelServiceSettings
from monitor.monitor_settings import MonitorSettings
from shared.settings_base import TelemetrySettings


def test_each_service_reads_the_shared_redis_and_its_own_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://example:6390/2")
    monkeypatch.setenv("DRIFTWATCH_STREAM_MAXLEN", "5000")
    monkeypatch.setenv("DRIFTWATCH_PORT", "9100")
    monkeypatch.setenv("DRIFTWATCH_WINDOW_SIZE", "250")
    monkeypatch.setenv("DRIFTWATCH_PUBLISH_BATCH_SIZE", "64")
    serving, monitor = ModelServiceSettings(), MonitorSettings()
    assert (serving.redis_url, serving.stream_maxlen, serving.port, serving.publish_batch_size) == (
        "redis://example:6390/2", 5000, 9100, 64,
    )
    assert (monitor.redis_url, monitor.stream_maxlen, monitor.port, monitor.window_size) == (
        "redis://example:6390/2", 5000, 9100, 250,
    )


def test_monitor_settings_hold_the_consumer_name_and_the_alert_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert MonitorSettings().consumer_name is None
    monkeypatch.setenv("DRIFTWATCH_CONSUMER_NAME", "monitor-0")
    monkeypatch.setenv("DRIFTWATCH_ALERT_WEBHOOK_URLS", "http://a/hook,https://b/hook")
    monkeypatch.setenv("DRIFTWATCH_ALERT_LEADER_TTL_S", "2")
    settings = MonitorSettings()
    assert settings.consumer_name == "monitor-0"
    assert settings.alerts.webhook_urls == ["http://a/hook", "https://b/hook"]
    assert settings.alerts.leader_ttl_s == 2.0


def test_telemetry_settings_follow_the_otel_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_SDK_DISABLED", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
                 "OTEL_PYTHON_FASTAPI_EXCLUDED_URLS"):
        monkeypatch.delenv(name, raising=False)
    default = TelemetrySettings()
    assert (default.sdk_disabled, default.otlp_protocol, default.excluded_urls) == (False, "grpc", "/livez,/readyz")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", " HTTP/protobuf ")  # the signal's own wins
    monkeypatch.setenv("OTEL_PYTHON_FASTAPI_EXCLUDED_URLS", "/livez")
    chosen = TelemetrySettings()
    assert (chosen.otlp_protocol, chosen.excluded_urls) == ("http/protobuf", "/livez")


@pytest.mark.parametrize("value,disabled", [("true", True), ("TRUE", True), ("1", False), ("false", False)])
def test_sdk_disabled_only_by_true_as_the_sdk_reads_it(
    monkeypatch: pytest.MonkeyPatch, value: str, disabled: bool
) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", value)
    assert TelemetrySettings().sdk_disabled is disabled
