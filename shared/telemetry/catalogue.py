"""Every metric Driftwatch exports, defined once: name, instrument, unit, attributes, description.

The table is the one source. The instruments are made from it
(:func:`create_instrument`, as OpenTelemetry's semantic-conventions package
makes each metric's ``create_<name>`` from its YAML definition);
``deploy/METRICS.md`` is generated from it (:func:`markdown_table`); the
tests check that the recorders' instruments match it, and that every metric
an alert rule or a dashboard queries is in it after the Prometheus
translation (:func:`prometheus_series`), so renaming a metric without
updating ``deploy/`` fails a test. A new metric is one name constant and one
row.

Units: ``1`` only for true fractions in [0, 1] (p-values, shares, accuracy),
which Prometheus renders with a ``_ratio`` suffix; test statistics, effect
sizes and 0/1 flags have no unit (chi-squared is not a fraction). Drift and
performance values are observable gauges read from the latest report
(:class:`shared.telemetry.recorders.ReportGauges`): a series that leaves the
report (a feature of an old model version) stops being exported instead of
repeating its last value. Request counts, error counts and request latency
are not ours: ``http.server.request.duration`` (semantic conventions) carries
``http.route`` and ``http.response.status_code``, its ``_count`` is the
request rate and the 5xx share of it the error rate.

The translation follows the Collector's Prometheus exporter (normalisation on,
the default): dots become underscores; a standard unit is appended as a word
(``s`` -> ``seconds``, ``By`` -> ``bytes``); ``1`` becomes ``_ratio`` on gauges
only; annotations in braces (``{event}``) are dropped; monotonic counters get
``_total``; histograms expose ``_bucket``, ``_sum`` and ``_count``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from opentelemetry.metrics import CallbackT, Meter
from opentelemetry.metrics import Instrument as OtelInstrument

from shared.telemetry import attributes as a

Instrument = Literal["counter", "histogram", "gauge", "updowncounter"]
Service = Literal["model-service", "monitor", "both"]

HTTP_SERVER_REQUEST_DURATION: Final = "http.server.request.duration"
"""Recorded by :mod:`shared.telemetry.http_server` under the semantic conventions' name."""

# -- names: what code records under (the rows below say everything else) ------
DRIFTWATCH_INFERENCE_DURATION: Final = "driftwatch.inference.duration"
DRIFTWATCH_PREDICTIONS: Final = "driftwatch.predictions"
DRIFTWATCH_EVENTS_PUBLISHED: Final = "driftwatch.events.published"
DRIFTWATCH_EVENTS_QUEUED: Final = "driftwatch.events.queued"
DRIFTWATCH_EVENTS_DROPPED: Final = "driftwatch.events.dropped"
DRIFTWATCH_INGEST_ROWS: Final = "driftwatch.ingest.rows"
DRIFTWATCH_INGEST_MISSING_VALUES: Final = "driftwatch.ingest.missing_values"
DRIFTWATCH_FEATURE_DRIFT_STATISTIC: Final = "driftwatch.feature.drift.statistic"
DRIFTWATCH_FEATURE_DRIFT_P_VALUE: Final = "driftwatch.feature.drift.p_value"
DRIFTWATCH_FEATURE_DRIFT_P_VALUE_ADJUSTED: Final = "driftwatch.feature.drift.p_value_adjusted"
DRIFTWATCH_FEATURE_DRIFT_EFFECT_SIZE: Final = "driftwatch.feature.drift.effect_size"
DRIFTWATCH_FEATURE_DRIFT_DETECTED: Final = "driftwatch.feature.drift.detected"
DRIFTWATCH_DATASET_DRIFT_DETECTED: Final = "driftwatch.dataset.drift.detected"
DRIFTWATCH_DATASET_DRIFT_SHARE: Final = "driftwatch.dataset.drift.share"
DRIFTWATCH_PREDICTION_DRIFT_STATISTIC: Final = "driftwatch.prediction.drift.statistic"
DRIFTWATCH_PREDICTION_DRIFT_P_VALUE: Final = "driftwatch.prediction.drift.p_value"
DRIFTWATCH_PREDICTION_DRIFT_EFFECT_SIZE: Final = "driftwatch.prediction.drift.effect_size"
DRIFTWATCH_PREDICTION_DRIFT_DETECTED: Final = "driftwatch.prediction.drift.detected"
DRIFTWATCH_MULTIVARIATE_DRIFT_P_VALUE: Final = "driftwatch.multivariate.drift.p_value"
DRIFTWATCH_MULTIVARIATE_DRIFT_EFFECT_SIZE: Final = "driftwatch.multivariate.drift.effect_size"
DRIFTWATCH_MULTIVARIATE_DRIFT_DETECTED: Final = "driftwatch.multivariate.drift.detected"
DRIFTWATCH_MODEL_ACCURACY: Final = "driftwatch.model.accuracy"
DRIFTWATCH_FEEDBACK_COVERAGE: Final = "driftwatch.feedback.coverage"
DRIFTWATCH_FEEDBACK_LABELLED: Final = "driftwatch.feedback.labelled"
DRIFTWATCH_STREAM_LAG: Final = "driftwatch.stream.lag"
DRIFTWATCH_DLQ_LENGTH: Final = "driftwatch.dlq.length"
DRIFTWATCH_STREAM_PENDING: Final = "driftwatch.stream.pending"
DRIFTWATCH_EVENTS_PROCESSED: Final = "driftwatch.events.processed"
DRIFTWATCH_TASK_FAILURES: Final = "driftwatch.task.failures"
PROCESS_CPU_TIME: Final = "process.cpu.time"
PROCESS_CPU_UTILIZATION: Final = "process.cpu.utilization"
PROCESS_MEMORY_USAGE: Final = "process.memory.usage"
PROCESS_MEMORY_VIRTUAL: Final = "process.memory.virtual"
PROCESS_THREAD_COUNT: Final = "process.thread.count"
PROCESS_OPEN_FILE_DESCRIPTOR_COUNT: Final = "process.open_file_descriptor.count"

INFERENCE_DURATION_BUCKETS: Final[tuple[float, ...]] = (
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
)  # fmt: skip
"""LiteRT answers one sample in ~2 us and a 1k-row batch in ~ms: the default
OTel buckets (0-10 000 in ms-sized steps) would put every call in the first bucket."""

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
    # Histograms only: bucket boundaries advised to the SDK.
    buckets: tuple[float, ...] | None = None

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
    MetricSpec(PROCESS_CPU_TIME, "counter", "s", (a.CPU_MODE,), "both",
               "CPU seconds used by the process, by mode (user, system)."),
    MetricSpec(PROCESS_CPU_UTILIZATION, "gauge", "1", (), "both",
               "CPU used since the previous export over elapsed time and CPUs."),
    MetricSpec(PROCESS_MEMORY_USAGE, "updowncounter", "By", (), "both",
               "Resident set size."),
    MetricSpec(PROCESS_MEMORY_VIRTUAL, "updowncounter", "By", (), "both",
               "Virtual memory size."),
    MetricSpec(PROCESS_THREAD_COUNT, "updowncounter", "{thread}", (), "both",
               "Threads of the process."),
    MetricSpec(PROCESS_OPEN_FILE_DESCRIPTOR_COUNT, "updowncounter", "{file_descriptor}",
               (), "both", "Open file descriptors, sockets included."),
    MetricSpec(DRIFTWATCH_TASK_FAILURES, "counter", "{failure}", (a.MODEL, a.TASK, a.ERROR_TYPE), "both",
               "Background task runs that raised; each is logged and restarted with backoff."),
    # -- model service ------------------------------------------------------
    MetricSpec(DRIFTWATCH_INFERENCE_DURATION, "histogram", "s", _M, "model-service",
               "Time in the model runtime per call (one request, one or many rows).",
               INFERENCE_DURATION_BUCKETS),
    MetricSpec(DRIFTWATCH_PREDICTIONS, "counter", "{prediction}", (*_M, a.PREDICTION_CLASS),
               "model-service", "Predictions served, by predicted class."),
    MetricSpec(DRIFTWATCH_EVENTS_PUBLISHED, "counter", "{event}", (*_M, a.STREAM),
               "model-service", "Events written to a Redis stream."),
    MetricSpec(DRIFTWATCH_EVENTS_QUEUED, "updowncounter", "{event}", (*_M, a.STREAM),
               "model-service", "Events waiting in the in-memory publish queue."),
    MetricSpec(DRIFTWATCH_EVENTS_DROPPED, "counter", "{event}", (*_M, a.STREAM, a.REASON),
               "model-service", "Events never written to Redis (queue full, Redis error)."),
    MetricSpec(DRIFTWATCH_INGEST_ROWS, "counter", "{row}", (*_M, a.SOURCE, a.OUTCOME), "model-service",
               "Rows logged through the ingest endpoints: accepted (queued) or rejected (422)."),
    MetricSpec(DRIFTWATCH_INGEST_MISSING_VALUES, "counter", "{value}", (*_M, a.FEATURE), "model-service",
               "Feature values logged as null or NaN (kept as NaN in the event), by feature."),
    # -- monitor: drift --------------------------------------------------------
    MetricSpec(DRIFTWATCH_FEATURE_DRIFT_STATISTIC, "gauge", "", _F, "monitor",
               "Test statistic of one feature in the latest window (KS D, chi-squared)."),
    MetricSpec(DRIFTWATCH_FEATURE_DRIFT_P_VALUE, "gauge", "1", _F, "monitor",
               "Unadjusted p-value of one feature's test."),
    MetricSpec(DRIFTWATCH_FEATURE_DRIFT_P_VALUE_ADJUSTED, "gauge", "1", _F, "monitor",
               "p-value after the multiple-testing correction (compared with alpha)."),
    MetricSpec(DRIFTWATCH_FEATURE_DRIFT_EFFECT_SIZE, "gauge", "", (*_F, a.EFFECT_SIZE_KIND),
               "monitor", "Effect size of one feature's shift (Wasserstein, PSI...)."),
    MetricSpec(DRIFTWATCH_FEATURE_DRIFT_DETECTED, "gauge", "", _F, "monitor",
               "1 if the feature drifted in the latest window, else 0."),
    MetricSpec(DRIFTWATCH_DATASET_DRIFT_DETECTED, "gauge", "", _M, "monitor",
               "1 if the latest window drifted as a whole, else 0."),
    MetricSpec(DRIFTWATCH_DATASET_DRIFT_SHARE, "gauge", "1", _M, "monitor",
               "Share of features that drifted in the latest window."),
    MetricSpec(DRIFTWATCH_PREDICTION_DRIFT_STATISTIC, "gauge", "", (*_M, a.TEST), "monitor",
               "Chi-squared statistic of the predicted classes against the reference."),
    MetricSpec(DRIFTWATCH_PREDICTION_DRIFT_P_VALUE, "gauge", "1", (*_M, a.TEST), "monitor",
               "p-value of the prediction drift test."),
    MetricSpec(DRIFTWATCH_PREDICTION_DRIFT_EFFECT_SIZE, "gauge", "",
               (*_M, a.TEST, a.EFFECT_SIZE_KIND), "monitor",
               "Effect size of the prediction drift (Jensen-Shannon...)."),
    MetricSpec(DRIFTWATCH_PREDICTION_DRIFT_DETECTED, "gauge", "", (*_M, a.TEST), "monitor",
               "1 if the predicted classes drifted in the latest window, else 0."),
    MetricSpec(DRIFTWATCH_MULTIVARIATE_DRIFT_P_VALUE, "gauge", "1", (*_M, a.TEST), "monitor",
               "p-value of the multivariate (cross-moment) test of the numeric features together."),
    MetricSpec(DRIFTWATCH_MULTIVARIATE_DRIFT_EFFECT_SIZE, "gauge", "",
               (*_M, a.TEST, a.EFFECT_SIZE_KIND), "monitor",
               "Effect size of the multivariate drift (RMS change of pairwise correlations)."),
    MetricSpec(DRIFTWATCH_MULTIVARIATE_DRIFT_DETECTED, "gauge", "", (*_M, a.TEST), "monitor",
               "1 if the features' joint structure drifted in the latest window, else 0."),
    # -- monitor: performance and consumption -------------------------------------
    MetricSpec(DRIFTWATCH_MODEL_ACCURACY, "gauge", "1", _M, "monitor",
               "Accuracy on the labelled predictions of the latest window."),
    MetricSpec(DRIFTWATCH_FEEDBACK_COVERAGE, "gauge", "1", _M, "monitor",
               "Share of the latest window's predictions that have a label."),
    MetricSpec(DRIFTWATCH_FEEDBACK_LABELLED, "gauge", "{prediction}", _M, "monitor",
               "Labelled predictions in the latest window (the accuracy's sample size)."),
    MetricSpec(DRIFTWATCH_STREAM_LAG, "gauge", "{event}", (a.MODEL, a.STREAM), "monitor",
               "Stream entries not yet delivered to the consumer group."),
    MetricSpec(DRIFTWATCH_STREAM_PENDING, "gauge", "{event}", (a.MODEL, a.STREAM), "monitor",
               "Entries delivered but not acknowledged (pending entries list)."),
    MetricSpec(DRIFTWATCH_DLQ_LENGTH, "gauge", "{event}", (a.MODEL,), "monitor",
               "Entries in the dead-letter stream: events not counted, each with its reason."),
    MetricSpec(DRIFTWATCH_EVENTS_PROCESSED, "counter", "{event}", (a.MODEL, a.STREAM),
               "monitor", "Events processed and acknowledged by the monitor."),
)  # fmt: skip


_BY_NAME: Final[dict[str, MetricSpec]] = {spec.name: spec for spec in CATALOGUE}


def by_name() -> dict[str, MetricSpec]:
    return dict(_BY_NAME)


def create_instrument(meter: Meter, name: str, callbacks: Sequence[CallbackT] | None = None) -> OtelInstrument:
    """The instrument of the row ``name`` on ``meter``: observable when ``callbacks`` are given.

    Gauges are always observable (read from a holder at export time); counters
    and up-down counters are synchronous unless the values are observed
    (per-request counts kept in memory, psutil readings).
    """
    spec = _BY_NAME[name]
    unit, description = spec.unit, spec.meaning
    if spec.instrument == "histogram":
        return meter.create_histogram(
            name, unit=unit, description=description, explicit_bucket_boundaries_advisory=spec.buckets
        )
    if spec.instrument == "gauge":
        return meter.create_observable_gauge(name, callbacks=callbacks, unit=unit, description=description)
    if spec.instrument == "counter":
        if callbacks is not None:
            return meter.create_observable_counter(name, callbacks=callbacks, unit=unit, description=description)
        return meter.create_counter(name, unit=unit, description=description)
    if callbacks is not None:
        return meter.create_observable_up_down_counter(name, callbacks=callbacks, unit=unit, description=description)
    return meter.create_up_down_counter(name, unit=unit, description=description)


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
