"""Every metric Driftwatch exports, with unit, attributes and Prometheus name.

One table serves three readers: ``deploy/METRICS.md`` is generated from it
(:func:`markdown_table`), the tests check that it matches the instruments the
recorders really create, and that every metric an alert rule or a dashboard
queries is in it after the Prometheus translation (:func:`prometheus_series`),
so renaming a metric without updating ``deploy/`` fails a test.

The translation follows the Collector's Prometheus exporter (normalisation on,
the default): dots become underscores; a standard unit is appended as a word
(``s`` -> ``seconds``, ``By`` -> ``bytes``); ``1`` becomes ``_ratio`` on gauges
only; annotations in braces (``{event}``) are dropped; monotonic counters get
``_total``; histograms expose ``_bucket``, ``_sum`` and ``_count``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from shared.telemetry import attributes as a
from shared.telemetry import model_service_metrics as ms
from shared.telemetry import monitor_metrics as mon
from shared.telemetry import process_metrics as proc
from shared.telemetry import task_metrics as task

Instrument = Literal["counter", "histogram", "gauge", "updowncounter"]
Service = Literal["model-service", "monitor", "both"]

HTTP_SERVER_REQUEST_DURATION: Final = "http.server.request.duration"
"""Recorded by the FastAPI instrumentation (``OTEL_SEMCONV_STABILITY_OPT_IN=http``)."""

_UNIT_WORDS: Final[dict[str, str]] = {
    "s": "seconds",
    "ms": "milliseconds",
    "us": "microseconds",
    "ns": "nanoseconds",
    "By": "bytes",
    "KiBy": "kibibytes",
    "MiBy": "mebibytes",
    "%": "percent",
}


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One exported metric as a user of Prometheus or of the OTLP stream sees it."""

    name: str
    instrument: Instrument
    unit: str
    attributes: tuple[str, ...]
    service: Service
    meaning: str

    @property
    def prometheus_name(self) -> str:
        """Base name in Prometheus (histograms add ``_bucket``/``_sum``/``_count``)."""
        return prometheus_name(self.name, self.unit, self.instrument)

    @property
    def prometheus_series(self) -> tuple[str, ...]:
        base = self.prometheus_name
        if self.instrument == "histogram":
            return (f"{base}_bucket", f"{base}_sum", f"{base}_count")
        return (base,)


def prometheus_name(name: str, unit: str, instrument: Instrument) -> str:
    """The name the Collector's Prometheus exporter gives an OTLP metric."""
    tokens = [t for t in re.split(r"[^A-Za-z0-9]+", name) if t]
    if unit and not (unit.startswith("{") and unit.endswith("}")):
        if unit == "1":
            if instrument == "gauge" and "ratio" not in tokens:
                tokens.append("ratio")
        else:
            word = _UNIT_WORDS.get(unit, re.sub(r"[^A-Za-z0-9]", "", unit))
            if word and word not in tokens:
                tokens.append(word)
    if instrument == "counter" and tokens[-1] != "total":
        tokens.append("total")
    return "_".join(tokens)


def prometheus_label(attribute: str) -> str:
    """Attribute key as a Prometheus label (``model.version`` -> ``model_version``)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", attribute)


_M = (a.MODEL, a.MODEL_VERSION)
_F = (*_M, a.FEATURE, a.TEST)
_HTTP = (
    "http.request.method",
    "http.route",
    "http.response.status_code",
    "url.scheme",
    "network.protocol.version",
    "error.type",
)

CATALOGUE: Final[tuple[MetricSpec, ...]] = (
    # -- HTTP and process (semantic conventions), both services ------------
    MetricSpec(HTTP_SERVER_REQUEST_DURATION, "histogram", "s", _HTTP, "both",
               "Server request latency; its count is the request rate, 5xx share the error rate."),
    MetricSpec(proc.PROCESS_CPU_TIME, "counter", "s", (proc.CPU_MODE,), "both",
               "CPU seconds used by the process, by mode (user, system)."),
    MetricSpec(proc.PROCESS_CPU_UTILIZATION, "gauge", "1", (), "both",
               "CPU used since the previous export over elapsed time and CPUs."),
    MetricSpec(proc.PROCESS_MEMORY_USAGE, "updowncounter", "By", (), "both",
               "Resident set size."),
    MetricSpec(proc.PROCESS_MEMORY_VIRTUAL, "updowncounter", "By", (), "both",
               "Virtual memory size."),
    MetricSpec(proc.PROCESS_THREAD_COUNT, "updowncounter", "{thread}", (), "both",
               "Threads of the process."),
    MetricSpec(proc.PROCESS_OPEN_FILE_DESCRIPTOR_COUNT, "updowncounter", "{file_descriptor}",
               (), "both", "Open file descriptors, sockets included."),
    MetricSpec(task.DRIFTWATCH_TASK_FAILURES, "counter", "{failure}", (a.MODEL, a.TASK, a.ERROR_TYPE), "both",
               "Background task runs that raised; each is logged and restarted with backoff."),
    # -- model service ------------------------------------------------------
    MetricSpec(ms.DRIFTWATCH_INFERENCE_DURATION, "histogram", "s", _M, "model-service",
               "Time in the model runtime per call (one request, one or many rows)."),
    MetricSpec(ms.DRIFTWATCH_PREDICTIONS, "counter", "{prediction}", (*_M, a.PREDICTION_CLASS),
               "model-service", "Predictions served, by predicted class."),
    MetricSpec(ms.DRIFTWATCH_EVENTS_PUBLISHED, "counter", "{event}", (*_M, a.STREAM),
               "model-service", "Events written to a Redis stream."),
    MetricSpec(ms.DRIFTWATCH_EVENTS_QUEUED, "updowncounter", "{event}", (*_M, a.STREAM),
               "model-service", "Events waiting in the in-memory publish queue."),
    MetricSpec(ms.DRIFTWATCH_EVENTS_DROPPED, "counter", "{event}", (*_M, a.STREAM, a.REASON),
               "model-service", "Events never written to Redis (queue full, Redis error)."),
    # -- monitor: drift --------------------------------------------------------
    MetricSpec(mon.DRIFTWATCH_FEATURE_DRIFT_STATISTIC, "gauge", "", _F, "monitor",
               "Test statistic of one feature in the latest window (KS D, chi-squared)."),
    MetricSpec(mon.DRIFTWATCH_FEATURE_DRIFT_P_VALUE, "gauge", "1", _F, "monitor",
               "Unadjusted p-value of one feature's test."),
    MetricSpec(mon.DRIFTWATCH_FEATURE_DRIFT_P_VALUE_ADJUSTED, "gauge", "1", _F, "monitor",
               "p-value after the multiple-testing correction (compared with alpha)."),
    MetricSpec(mon.DRIFTWATCH_FEATURE_DRIFT_EFFECT_SIZE, "gauge", "", (*_F, a.EFFECT_SIZE_KIND),
               "monitor", "Effect size of one feature's shift (Wasserstein, PSI...)."),
    MetricSpec(mon.DRIFTWATCH_FEATURE_DRIFT_DETECTED, "gauge", "", _F, "monitor",
               "1 if the feature drifted in the latest window, else 0."),
    MetricSpec(mon.DRIFTWATCH_DATASET_DRIFT_DETECTED, "gauge", "", _M, "monitor",
               "1 if the latest window drifted as a whole, else 0."),
    MetricSpec(mon.DRIFTWATCH_DATASET_DRIFT_SHARE, "gauge", "1", _M, "monitor",
               "Share of features that drifted in the latest window."),
    MetricSpec(mon.DRIFTWATCH_PREDICTION_DRIFT_STATISTIC, "gauge", "", (*_M, a.TEST), "monitor",
               "Chi-squared statistic of the predicted classes against the reference."),
    MetricSpec(mon.DRIFTWATCH_PREDICTION_DRIFT_P_VALUE, "gauge", "1", (*_M, a.TEST), "monitor",
               "p-value of the prediction drift test."),
    MetricSpec(mon.DRIFTWATCH_PREDICTION_DRIFT_EFFECT_SIZE, "gauge", "",
               (*_M, a.TEST, a.EFFECT_SIZE_KIND), "monitor",
               "Effect size of the prediction drift (Jensen-Shannon...)."),
    MetricSpec(mon.DRIFTWATCH_PREDICTION_DRIFT_DETECTED, "gauge", "", (*_M, a.TEST), "monitor",
               "1 if the predicted classes drifted in the latest window, else 0."),
    MetricSpec(mon.DRIFTWATCH_MULTIVARIATE_DRIFT_P_VALUE, "gauge", "1", (*_M, a.TEST), "monitor",
               "p-value of the multivariate (cross-moment) test of the numeric features together."),
    MetricSpec(mon.DRIFTWATCH_MULTIVARIATE_DRIFT_EFFECT_SIZE, "gauge", "",
               (*_M, a.TEST, a.EFFECT_SIZE_KIND), "monitor",
               "Effect size of the multivariate drift (RMS change of pairwise correlations)."),
    MetricSpec(mon.DRIFTWATCH_MULTIVARIATE_DRIFT_DETECTED, "gauge", "", (*_M, a.TEST), "monitor",
               "1 if the features' joint structure drifted in the latest window, else 0."),
    # -- monitor: performance and consumption -------------------------------------
    MetricSpec(mon.DRIFTWATCH_MODEL_ACCURACY, "gauge", "1", _M, "monitor",
               "Accuracy on the labelled predictions of the latest window."),
    MetricSpec(mon.DRIFTWATCH_FEEDBACK_COVERAGE, "gauge", "1", _M, "monitor",
               "Share of the latest window's predictions that have a label."),
    MetricSpec(mon.DRIFTWATCH_FEEDBACK_LABELLED, "gauge", "{prediction}", _M, "monitor",
               "Labelled predictions in the latest window (the accuracy's sample size)."),
    MetricSpec(mon.DRIFTWATCH_STREAM_LAG, "gauge", "{event}", (a.MODEL, a.STREAM), "monitor",
               "Stream entries not yet delivered to the consumer group."),
    MetricSpec(mon.DRIFTWATCH_STREAM_PENDING, "gauge", "{event}", (a.MODEL, a.STREAM), "monitor",
               "Entries delivered but not acknowledged (pending entries list)."),
    MetricSpec(mon.DRIFTWATCH_DLQ_LENGTH, "gauge", "{event}", (a.MODEL,), "monitor",
               "Entries in the dead-letter stream: events not counted, each with its reason."),
    MetricSpec(mon.DRIFTWATCH_EVENTS_PROCESSED, "counter", "{event}", (a.MODEL, a.STREAM),
               "monitor", "Events processed and acknowledged by the monitor."),
)  # fmt: skip


def by_name() -> dict[str, MetricSpec]:
    return {spec.name: spec for spec in CATALOGUE}


def prometheus_series() -> set[str]:
    """Every series name Prometheus can hold for Driftwatch (histogram parts included)."""
    return {series for spec in CATALOGUE for series in spec.prometheus_series}


def markdown_table() -> str:
    """The catalogue as the Markdown table in ``deploy/METRICS.md``."""
    rows = [
        "| name (OTLP) | Prometheus | instrument | unit | attributes | service | meaning |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in CATALOGUE:
        attrs = ", ".join(f"`{x}`" for x in s.attributes) or "-"
        prom = s.prometheus_name + ("_bucket/_sum/_count" if s.instrument == "histogram" else "")
        rows.append(
            f"| `{s.name}` | `{prom}` | {s.instrument} | `{s.unit or '-'}` | {attrs} "
            f"| {s.service} | {s.meaning} |"
        )
    return "\n".join(rows) + "\n"
