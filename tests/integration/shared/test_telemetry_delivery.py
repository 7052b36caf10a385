"""No Collector (the ``make run`` default): one warning, then quiet until delivery works
again (said once), and a shutdown that waits ~2 s at most, not the SDK's ~10 s of retries.
The real OTLP exporters, against a closed port and then a real receiver on that port."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

import pytest

from driftwatch.local_processes import free_port
from shared.settings_base import TelemetrySettings
from shared.telemetry import METER_NAME, MonitorMetrics, setup_telemetry, shutdown_telemetry
from shared.telemetry.setup import current_delivery
from tests.support.otlp_receiver import OtlpReceiver


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for var in ("OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_SDK_DISABLED", "OTEL_EXPORTER_OTLP_TIMEOUT",
                "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)  # fmt: skip
    shutdown_telemetry(force=True)  # a provider another test left (SDK disabled) would be reused
    yield
    shutdown_telemetry(force=True)


def wait_until(check: Callable[[], object], within_s: float = 20.0) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_one_warning_without_a_collector_and_one_note_when_it_is_back(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, protocol: str
) -> None:
    grpc_port, http_port = free_port(), free_port()
    endpoint = f"http://127.0.0.1:{grpc_port if protocol == 'grpc' else http_port}"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")  # one export (with its retries) per ~second
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "50")
    caplog.set_level(logging.INFO)
    provider = setup_telemetry("driftwatch-test", TelemetrySettings(), instrument_system=False)
    MonitorMetrics(provider.get_meter(METER_NAME), model="m").processed(1)
    delivery = current_delivery()
    assert delivery is not None

    wait_until(lambda: delivery.failures >= 3)
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.name for r in loud] == ["shared.telemetry.delivery"], [r.getMessage() for r in loud]
    # Two services share `driftwatch up`'s terminal: the line says which one it is.
    assert "metrics of driftwatch-test are not being delivered to " in loud[0].getMessage()
    assert "OTEL_SDK_DISABLED=true" in loud[0].getMessage()

    with OtlpReceiver(grpc_port=grpc_port, http_port=http_port) as receiver:
        wait_until(lambda: receiver.points("driftwatch.events.processed") and delivery.delivering)
        wait_until(lambda: delivery.successes >= 3)
        records = list(caplog.records)  # before the receiver goes (delivery would stop again: one more warning)
    again = [r for r in records if r.getMessage().startswith("metrics of driftwatch-test are delivered to")]
    assert len(again) == 1
    assert [r.name for r in records if r.levelno >= logging.WARNING] == ["shared.telemetry.delivery"]


def test_shutdown_without_a_collector_takes_at_most_about_two_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK's defaults: a 10 s export timeout with retries, which kept `driftwatch up`
    ~18 s from stopping. An export is failing (retrying) when the shutdown starts."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "50")
    provider = setup_telemetry("driftwatch-test", TelemetrySettings(), instrument_system=False)
    MonitorMetrics(provider.get_meter(METER_NAME), model="m").processed(1)
    delivery = current_delivery()
    assert delivery is not None
    wait_until(lambda: delivery.last_reason is not None)  # the first export is failing and retrying
    started = time.monotonic()
    shutdown_telemetry()
    assert time.monotonic() - started < 2.5
