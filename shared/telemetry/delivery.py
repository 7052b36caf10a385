"""The OTLP exporter, quiet when nothing listens, and quick to stop.

With no Collector (``make run`` and ``driftwatch up`` start none), the SDK's
OTLP exporters log a warning per retry and an error per failed export, every
export interval, for as long as the process runs; and the last export at
shutdown retries for up to ``OTEL_EXPORTER_OTLP_TIMEOUT`` (10 s), so stopping
the local stack took ~18 s. :class:`QuietDelivery` wraps the exporter:

- the first failed export logs **one** warning naming the service, the
  endpoint, the reason and the two ways out (``driftwatch up`` runs two
  services into one terminal: each says which it is); later failures are
  silent, until an export succeeds again, which is said once too;
- the exporter's own log records are held back while it exports through this
  wrapper (the wrapper reports the state instead; the last one becomes the
  warning's reason);
- :meth:`stop_within` bounds the shutdown: if the last export failed, the
  final one is skipped; otherwise it may run, but the inner exporter is shut
  down when the time is up, which ends its retry wait and closes its channel.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData

log = logging.getLogger(__name__)

# Loggers the SDK's OTLP metric exporters (gRPC, HTTP and their shared client) log through.
EXPORTER_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
    "opentelemetry.exporter.otlp.proto.grpc.metric_exporter",
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.proto.http._common",
    "opentelemetry.exporter.otlp.common.http",
)


class _HoldBack(logging.Filter):
    """Drops exporter records logged by a thread inside :meth:`QuietDelivery.export`, keeping the last."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = threading.local()
        self.last_message: str | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(self.inside, "active", False) and record.levelno < logging.CRITICAL:
            self.last_message = record.getMessage()
            return False
        return True


class QuietDelivery(MetricExporter):
    """A metric exporter that reports delivery as a state (failing, working), not per attempt.

    >>> from opentelemetry.sdk.metrics.export import ConsoleMetricExporter
    >>> quiet = QuietDelivery(ConsoleMetricExporter(out=open("/dev/null", "w")))
    >>> quiet.delivering is None  # nothing tried yet
    True
    """

    def __init__(self, inner: MetricExporter, service: str = "this service") -> None:
        super().__init__(
            preferred_temporality=getattr(inner, "_preferred_temporality", None),
            preferred_aggregation=getattr(inner, "_preferred_aggregation", None),
        )
        self.inner = inner
        self.service = service
        self.endpoint = str(getattr(inner, "_endpoint", type(inner).__name__))
        self.delivering: bool | None = None
        self.failures = 0
        self.successes = 0
        self._stopping = False
        self._inner_shut = threading.Lock()
        self._inner_is_shut = False
        self._hold = _HoldBack()
        for name in EXPORTER_LOGGERS:
            logging.getLogger(name).addFilter(self._hold)

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        if self._stopping and self.delivering is False:
            return MetricExportResult.FAILURE  # shutting down and nothing listens: do not wait for it
        self._hold.last_message = None
        self._hold.inside.active = True
        try:
            result = self.inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
            reason = self._hold.last_message
        except Exception as exc:  # the reader would log it at every interval
            result, reason = MetricExportResult.FAILURE, f"{type(exc).__name__}: {exc}"
        finally:
            self._hold.inside.active = False
        self._record(result is MetricExportResult.SUCCESS, reason)
        return result

    def _record(self, ok: bool, reason: str | None) -> None:
        if ok:
            self.successes += 1
            if self.delivering is False:
                log.info("metrics of %s are delivered to %s again", self.service, self.endpoint)
        else:
            self.failures += 1
            if self.delivering is not False and not self._stopping:
                log.warning(
                    "metrics of %s are not being delivered to %s (%s). Start a Collector there, point "
                    "OTEL_EXPORTER_OTLP_ENDPOINT at one, or set OTEL_SDK_DISABLED=true; nothing more "
                    "is logged about it until delivery works again",
                    self.service, self.endpoint, reason or "export failed",
                )
        self.delivering = ok

    @property
    def last_reason(self) -> str | None:
        """The exporter's last note held back (a retry, a failure), for diagnostics and tests."""
        return self._hold.last_message

    def stop_within(self, seconds: float) -> None:
        """Bound what is left of the exporter's work to ``seconds`` (call before the provider's shutdown)."""
        self._stopping = True
        if self.delivering is False:
            self._shutdown_inner()  # ends a retry wait in progress at once
            return
        timer = threading.Timer(seconds, self._shutdown_inner)
        timer.daemon = True
        timer.start()

    def _shutdown_inner(self, timeout_millis: float = 1_000) -> None:
        with self._inner_shut:
            if self._inner_is_shut:
                return
            self._inner_is_shut = True
        self._hold.inside.active = True  # "shutdown in progress" notes are ours to report, not the SDK's
        try:
            self.inner.shutdown(timeout_millis=timeout_millis)
        finally:
            self._hold.inside.active = False

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self.inner.force_flush(timeout_millis=timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self._stopping = True
        self._shutdown_inner(timeout_millis)
        for name in EXPORTER_LOGGERS:
            logging.getLogger(name).removeFilter(self._hold)
