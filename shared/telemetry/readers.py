"""The metric readers ``OTEL_METRICS_EXPORTER`` asks for: OTLP push, a Prometheus scrape endpoint, console, none.

Why not ``opentelemetry-instrument``'s entry points: the services build their
provider themselves (see :mod:`shared.telemetry.setup`), and the SDK's own
``_AutoPrometheusMetricReader`` registers into ``prometheus_client``'s global
registry and starts a server nobody can stop, which breaks a second provider
in one process (tests build and shut both services down many times). Here the
SDK's ``PrometheusMetricReader`` gets a registry of its own and the HTTP
server is shut down with the provider.

Names on the scrape endpoint are the ones the Collector's Prometheus exporter
gives (``deploy/METRICS.md``): the SDK reader already appends unit words,
``_total`` and histogram suffixes; unit ``1`` is dropped by the SDK reader and
written ``_ratio`` on gauges by the Collector, so :func:`collector_names`
renames those few gauges on their way into the reader (a View would rename
them on the OTLP stream too).
``service.name`` is not a label here: Prometheus sets ``job`` from its scrape
config (name the jobs ``model-service`` and ``monitor``) and ``instance`` from
the target, which is one per replica.

Variables (standard): ``OTEL_METRICS_EXPORTER`` (comma-separated ``otlp``,
``prometheus``, ``console``, ``none``; default ``otlp``),
``OTEL_EXPORTER_PROMETHEUS_HOST`` (default ``localhost``) and
``OTEL_EXPORTER_PROMETHEUS_PORT`` (default 9464; ``0`` picks a free port).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    Gauge,
    Metric,
    MetricExporter,
    MetricReader,
    MetricsData,
    PeriodicExportingMetricReader,
)

from shared.settings_base import TelemetrySettings

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

EXPORTERS_VARIABLE = "OTEL_METRICS_EXPORTER"
KNOWN_EXPORTERS = ("otlp", "prometheus", "console", "none")


def chosen_exporters(value: str) -> list[str]:
    """The exporter names of ``OTEL_METRICS_EXPORTER`` (default ``otlp``), validated.

    An unknown name is a configuration error raised at start-up, not metrics
    silently missing later. ``none`` alone means no exporter; beside others it
    is ignored, as the SDK's auto-configuration does.
    """
    names = [n.strip().lower() for n in value.split(",") if n.strip()] or ["otlp"]
    unknown = sorted(set(names) - set(KNOWN_EXPORTERS))
    if unknown:
        raise ValueError(
            f"{EXPORTERS_VARIABLE}: unknown metrics exporter(s) {', '.join(unknown)};"
            f" use a comma-separated list of {', '.join(KNOWN_EXPORTERS)}"
        )
    return list(dict.fromkeys(n for n in names if n != "none"))


@dataclass
class PrometheusEndpoint:
    """A scrape endpoint being served: where it listens and how to stop it."""

    host: str
    port: int
    server: WSGIServer

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Readers:
    """What :func:`metric_readers` built: readers for the provider, endpoints to close after it."""

    readers: list[MetricReader] = field(default_factory=list)
    prometheus: PrometheusEndpoint | None = None

    def close(self) -> None:
        """Stop serving the scrape endpoint (after the provider's shutdown)."""
        if self.prometheus is not None:
            self.prometheus.close()
            self.prometheus = None


def _collector_name(metric: Metric) -> Metric:
    """The Collector writes a gauge of unit ``1`` as ``<name>_ratio``; the SDK reader drops the unit."""
    if metric.unit != "1" or not isinstance(metric.data, Gauge):
        return metric
    if "ratio" in re.split(r"[^A-Za-z0-9]+", metric.name):
        return replace(metric, unit="")
    return replace(metric, name=f"{metric.name}.ratio", unit="")


def collector_names(data: MetricsData) -> MetricsData:
    """``data`` with every metric named as the Collector's Prometheus exporter names it."""
    resource_metrics = []
    for rm in data.resource_metrics:
        scopes = [replace(sm, metrics=[_collector_name(m) for m in sm.metrics]) for sm in rm.scope_metrics]
        resource_metrics.append(replace(rm, scope_metrics=scopes))
    return replace(data, resource_metrics=resource_metrics)


def prometheus_reader(host: str, port: int) -> tuple[MetricReader, PrometheusEndpoint]:
    """The SDK's Prometheus reader on a registry of its own, served over HTTP in a daemon thread."""
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from prometheus_client import CollectorRegistry, start_http_server

    class CollectorNamedReader(PrometheusMetricReader):
        def _receive_metrics(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> None:
            if metrics_data is not None:
                metrics_data = collector_names(metrics_data)
            super()._receive_metrics(metrics_data, timeout_millis, **kwargs)

    registry = CollectorRegistry(auto_describe=True)
    reader = CollectorNamedReader(registry=registry)
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return reader, PrometheusEndpoint(host=host, port=int(server.server_port), server=server)


def metric_readers(otlp_exporter: Callable[[], MetricExporter], settings: TelemetrySettings) -> Readers:
    """One reader per exporter name of ``settings``; ``otlp_exporter`` builds the OTLP exporter (only if asked for)."""
    built = Readers()
    for name in chosen_exporters(settings.metrics_exporter):
        if name == "otlp":
            built.readers.append(PeriodicExportingMetricReader(otlp_exporter()))
        elif name == "console":
            built.readers.append(PeriodicExportingMetricReader(ConsoleMetricExporter()))
        elif name == "prometheus":
            reader, endpoint = prometheus_reader(settings.prometheus_host, settings.prometheus_port)
            built.readers.append(reader)
            built.prometheus = endpoint
    return built
