"""MeterProvider setup from the standard ``OTEL_*`` variables, and its shutdown.

Why a function of our own rather than ``opentelemetry-instrument``: the
services are started by our CLI (and by tests, in-process), so the provider
must be built explicitly, chosen per protocol, and flushed on exit.

Behaviour with no Collector: the exporter runs in the
``PeriodicExportingMetricReader``'s own thread, so recording a value is an
in-memory aggregation and never waits for the network. The OTLP exporter is
wrapped in :class:`shared.telemetry.delivery.QuietDelivery`: one warning when
delivery stops, one note when it works again, nothing per attempt; and
``shutdown_telemetry`` waits at most ``timeout_millis`` (2 s) for it.

Variables honoured (all standard): through :class:`TelemetrySettings`,
read where the process starts, ``OTEL_SDK_DISABLED`` (true: no-op meters, no
exporter thread), ``OTEL_METRICS_EXPORTER`` (``otlp`` by default;
``prometheus`` serves a scrape endpoint on
``OTEL_EXPORTER_PROMETHEUS_HOST``/``_PORT``; ``console``, ``none``;
comma-separated: see :mod:`shared.telemetry.readers`),
``OTEL_EXPORTER_OTLP_METRICS_PROTOCOL`` / ``OTEL_EXPORTER_OTLP_PROTOCOL``
(``grpc``, the Python default, or ``http/protobuf``) and
``OTEL_PYTHON_FASTAPI_EXCLUDED_URLS``; by the SDK itself,
``OTEL_EXPORTER_OTLP[_METRICS]_ENDPOINT`` / ``_HEADERS`` / ``_TIMEOUT`` (read by
the exporters), ``OTEL_METRIC_EXPORT_INTERVAL`` / ``_TIMEOUT`` (read by the
reader), ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` (override the
``service_name`` argument).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import OTELResourceDetector, Resource

from shared.settings_base import TelemetrySettings
from shared.telemetry.delivery import QuietDelivery
from shared.telemetry.process_metrics import ProcessMetrics
from shared.telemetry.readers import Readers, metric_readers

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger(__name__)

METER_NAME = "driftwatch"
"""Instrumentation scope of every ``driftwatch.*`` metric."""

HTTP_METER_NAME = "driftwatch.http"
"""Instrumentation scope of ``http.server.request.duration``."""

SEMCONV_OPT_IN = "OTEL_SEMCONV_STABILITY_OPT_IN"


@dataclass
class _State:
    provider: MeterProvider
    process_metrics: ProcessMetrics | None
    readers: Readers
    users: int = 1
    delivery: QuietDelivery | None = None  # the OTLP exporter, when it is ours


_lock = threading.Lock()
_state: _State | None = None
_global_set = False


def make_exporter(protocol: str) -> MetricExporter:
    """An OTLP metric exporter for ``protocol`` (``grpc`` or ``http/protobuf``).

    Imports are local so only the chosen transport is loaded. ``http/json`` is
    not implemented by the Python SDK: asking for it is a configuration error,
    raised at start-up rather than found later as missing data.
    """
    chosen = protocol.strip().lower()
    if chosen == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
            OTLPMetricExporter as GrpcExporter,
        )

        return GrpcExporter()
    if chosen == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
            OTLPMetricExporter as HttpExporter,
        )

        return HttpExporter()
    raise ValueError(
        f"unsupported OTLP metrics protocol {chosen!r}: use 'grpc' or 'http/protobuf'"
    )


def make_resource(service_name: str) -> Resource:
    """``service.name`` from the caller unless the environment names it.

    ``Resource.create`` lets its argument override ``OTEL_SERVICE_NAME``; an
    operator's variable should win over a default in code, so the detector's
    attributes are merged last. ``service.instance.id`` separates replicas
    (the Collector's Prometheus exporter turns it into the ``instance`` label).
    """
    defaults = {
        "service.name": service_name,
        "service.instance.id": f"{socket.gethostname()}-{os.getpid()}",
    }
    return Resource.create(defaults).merge(OTELResourceDetector().detect())


def setup_telemetry(
    service_name: str,
    settings: TelemetrySettings,
    *,
    instrument_system: bool = True,
    exporter: MetricExporter | None = None,
    set_global: bool = True,
) -> MeterProvider:
    """Build the process's MeterProvider (once) and return it.

    One provider per process: a second call (a test that builds the model
    service and the monitor apps in one process) gets the same provider, and
    its ``service_name`` is ignored; each call must be matched by one
    :func:`shutdown_telemetry`, and the last one flushes. ``exporter``
    replaces the exporters ``OTEL_METRICS_EXPORTER`` names (tests use an
    in-memory one). The provider also
    becomes the global one (the API allows that once per process); services
    should still pass it explicitly (``provider.get_meter(...)``,
    :func:`instrument_fastapi`).
    """
    global _state, _global_set
    os.environ.setdefault(SEMCONV_OPT_IN, "http")
    with _lock:
        if _state is not None:
            _state.users += 1
            return _state.provider
        resource = make_resource(service_name)
        delivery: QuietDelivery | None = None
        if settings.sdk_disabled:
            # The SDK provider itself honours the variable (its meters are no-ops);
            # no reader means no exporter thread either.
            provider = MeterProvider(resource=resource)
            process: ProcessMetrics | None = None
            readers = Readers()
        else:
            if exporter is not None:
                readers = Readers([PeriodicExportingMetricReader(exporter)])
            else:
                otlp: list[QuietDelivery] = []  # built only if OTEL_METRICS_EXPORTER asks for otlp

                def quiet_otlp() -> MetricExporter:
                    service = str(resource.attributes.get("service.name", service_name))
                    otlp.append(QuietDelivery(make_exporter(settings.otlp_protocol), service))
                    return otlp[-1]

                readers = metric_readers(quiet_otlp, settings)
                delivery = otlp[0] if otlp else None
            provider = MeterProvider(resource=resource, metric_readers=readers.readers)
            meter = provider.get_meter(METER_NAME)
            process = ProcessMetrics(meter) if instrument_system else None
        _state = _State(provider=provider, process_metrics=process, readers=readers, delivery=delivery)
        if set_global and not _global_set:
            metrics.set_meter_provider(provider)
            _global_set = True
        return provider


def current_delivery() -> QuietDelivery | None:
    """The OTLP exporter of the current provider (its delivery state), if it is ours."""
    return _state.delivery if _state else None


def current_provider() -> MeterProvider | None:
    """The provider built by the last :func:`setup_telemetry`, if any."""
    return _state.provider if _state else None


def shutdown_telemetry(timeout_millis: float = 2_000, *, force: bool = False) -> None:
    """Release one :func:`setup_telemetry`; the last release flushes and stops the exporter.

    Call it on exit (FastAPI lifespan shutdown): without it the values
    recorded since the last periodic export are lost. It waits at most about
    ``timeout_millis`` for the exporter: with no Collector the last export is
    not even tried (the SDK alone retried it for ~10 s). ``force`` shuts down
    whatever the count (tests, atexit). Safe to call when nothing is set up.
    """
    global _state
    with _lock:
        state = _state
        if state is None:
            return
        state.users -= 1
        if state.users > 0 and not force:
            return
        _state = None
    if state.delivery is not None:
        state.delivery.stop_within(0.75 * timeout_millis / 1000)
    try:
        state.provider.shutdown(timeout_millis=timeout_millis)
    except Exception:  # shutdown must never turn a clean exit into a crash
        log.warning("telemetry shutdown failed", exc_info=True)
    state.readers.close()


def prometheus_endpoint_url() -> str | None:
    """URL of the scrape endpoint this process serves (``OTEL_METRICS_EXPORTER=prometheus``), if any."""
    state = _state
    endpoint = state.readers.prometheus if state else None
    return endpoint.url if endpoint else None


def instrument_fastapi(
    app: FastAPI,
    provider: MeterProvider | None = None,
    *,
    excluded_urls: str = TelemetrySettings.model_fields["excluded_urls"].default,
) -> None:
    """Record ``http.server.request.duration`` (seconds) for every route of ``app``.

    One lean middleware (:mod:`shared.telemetry.http_server`) records the
    histogram with the semantic conventions' name, unit, buckets and
    attributes; the OpenTelemetry FastAPI instrumentation recorded the same
    histogram for ~110 us of CPU per request, this costs a few. Health probes
    are excluded unless ``excluded_urls`` (``OTEL_PYTHON_FASTAPI_EXCLUDED_URLS``) says otherwise.
    FastAPI's own native request metrics (recent versions record the same
    histogram when a global meter provider is set) are turned off for ``app``,
    so each request is counted once. Call before the app starts.
    """
    os.environ.setdefault(SEMCONV_OPT_IN, "http")
    from shared.telemetry.http_server import HttpServerMetricsMiddleware

    chosen = provider or current_provider() or metrics.get_meter_provider()
    meter = chosen.get_meter(HTTP_METER_NAME)
    native = getattr(app, "_telemetry", None)
    if isinstance(native, dict):
        native["metrics"] = False
    app.add_middleware(HttpServerMetricsMiddleware, meter=meter, excluded_urls=excluded_urls)
