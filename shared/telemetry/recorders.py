"""Recorder classes the services call: one line of wiring per event.

The services never touch instruments directly. A recorder owns the
instruments, pre-builds attribute dicts (the hot path allocates nothing it can
avoid) and keeps attribute values bounded: classes, features, streams and
reasons, never prediction ids.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast

import numpy as np
from opentelemetry.metrics import CallbackOptions, Counter, Histogram, Meter, Observation
from opentelemetry.util.types import Attributes

from shared.telemetry import attributes as attr
from shared.telemetry import catalogue as c
from shared.telemetry.catalogue import create_instrument

log = logging.getLogger(__name__)

StreamStats = Mapping[str, float | int | None]
"""What a stream-stats callback returns: ``{"lag": ..., "pending": ...}`` (None = unknown)."""


AttrKey = tuple[tuple[str, str], ...]

DROP_REASONS = ("queue_full", "spill_full", "kserve_hold_full")
"""Why the model service's publisher loses events (``model_service/publisher.py``)."""


class LocalTotals:
    """Monotonic totals kept in-process and reported by an observable counter.

    For counters updated on every request: one dict update under an
    uncontended lock instead of an SDK ``Counter.add`` (~5 us each here). The
    lock is there because the exporter thread reads while the event loop adds.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals: dict[AttrKey, int] = {}

    def add(self, key: AttrKey, n: int) -> None:
        with self._lock:
            self._totals[key] = self._totals.get(key, 0) + n

    def add_many(self, pairs: Iterable[tuple[AttrKey, int]]) -> None:
        with self._lock:
            totals = self._totals
            for key, n in pairs:
                totals[key] = totals.get(key, 0) + n

    def snapshot(self) -> dict[AttrKey, int]:
        with self._lock:
            return dict(self._totals)

    def observe(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(n, dict(key)) for key, n in self.snapshot().items()]


class ModelServiceMetrics:
    """Metrics of the model service. Every method is cheap enough for the request path
    (about 7 us per request in all: one histogram record and one in-process add).

    >>> from opentelemetry.sdk.metrics import MeterProvider
    >>> from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    >>> reader = InMemoryMetricReader()
    >>> meter = MeterProvider(metric_readers=[reader]).get_meter("driftwatch")
    >>> metrics = ModelServiceMetrics(meter, model="digits-mlp", model_version="1")
    >>> metrics.record_inference(0.0002, n=32)
    >>> metrics.record_predictions(np.array([3, 3, 7]))        # class indexes
    >>> exported = reader.get_metrics_data().resource_metrics[0].scope_metrics[0].metrics
    >>> sorted((p.attributes["class"], p.value) for m in exported if m.name == "driftwatch.predictions"
    ...        for p in m.data.data_points)
    [('3', 2), ('7', 1)]
    """

    def __init__(self, meter: Meter, *, model: str | None, model_version: str = "") -> None:
        """``model``: the served model (its name and version are the default attributes);
        None for a service that only logs other models' events (``--ingest-only``)."""
        self._inference_duration = cast(Histogram, create_instrument(meter, c.DRIFTWATCH_INFERENCE_DURATION))
        # Observable, because it changes on every request: an SDK Counter.add per
        # class per request cost more than the in-process totals read at export.
        self._predictions = LocalTotals()
        create_instrument(meter, c.DRIFTWATCH_PREDICTIONS, [self._predictions.observe])
        self._published = cast(Counter, create_instrument(meter, c.DRIFTWATCH_EVENTS_PUBLISHED))
        self._dropped = cast(Counter, create_instrument(meter, c.DRIFTWATCH_EVENTS_DROPPED))
        self._queue_depth: Callable[[], int | None] | None = None
        create_instrument(meter, c.DRIFTWATCH_EVENTS_QUEUED, [self._observe_queue])
        # Ingest of other models' events: rows by outcome, and missing values by feature.
        self._ingest_rows = LocalTotals()
        create_instrument(meter, c.DRIFTWATCH_INGEST_ROWS, [self._ingest_rows.observe])
        self._missing = LocalTotals()
        create_instrument(meter, c.DRIFTWATCH_INGEST_MISSING_VALUES, [self._missing.observe])
        self._tracked: set[tuple[str, str]] = set()
        self.set_model(model, model_version)

    def set_model(self, model: str | None, model_version: str = "") -> None:
        """Switch the ``model``/``model.version`` attributes (after loading another model)."""
        self._model = model
        self._base: dict[str, str] = {attr.MODEL: model or "", attr.MODEL_VERSION: model_version}
        self._class_keys: dict[int, AttrKey] = {}
        self._stream_attrs: dict[tuple[str, str, str], dict[str, str]] = {}
        self._drop_attrs: dict[tuple[str, str, str, str], dict[str, str]] = {}
        if model is not None:
            self._tracked.discard((model, model_version))
            self.track_model(model, model_version)

    def track_model(self, model: str, model_version: str) -> None:
        """Export every drop reason at 0 for a model the service publishes for.

        A counter whose series appears with its first drop hides that drop from
        rate()/increase() (and from the DriftwatchEventsDropped alert), and
        dashboards would query a series that does not exist yet. Called once
        per model and version (the served one, and each one logged through the
        ingest endpoints).
        """
        if (model, model_version) in self._tracked:
            return
        self._tracked.add((model, model_version))
        for reason in DROP_REASONS:
            self.dropped(0, reason, model=model, model_version=model_version)

    def _class_key(self, cls: int) -> AttrKey:
        found = self._class_keys.get(cls)
        if found is None:
            found = (*self._base.items(), (attr.PREDICTION_CLASS, str(cls)))
            self._class_keys[cls] = found
        return found

    def _model_attrs(self, model: str | None, model_version: str | None) -> tuple[str, str]:
        if model is None or model == self._model:
            return self._base[attr.MODEL], self._base[attr.MODEL_VERSION] if model_version is None else model_version
        return model, model_version or ""

    def _for_stream(self, stream: str, model: str | None = None, model_version: str | None = None) -> dict[str, str]:
        name, version = self._model_attrs(model, model_version)
        key = (name, version, stream)
        found = self._stream_attrs.get(key)
        if found is None:
            found = {attr.MODEL: name, attr.MODEL_VERSION: version, attr.STREAM: stream}
            self._stream_attrs[key] = found
        return found

    def record_inference(self, seconds: float, n: int = 1) -> None:
        """One call into the model runtime that scored ``n`` rows in ``seconds``.

        ``n`` is accepted for the callers' convenience; rows are counted by
        :meth:`record_predictions`.
        """
        self._inference_duration.record(seconds, self._base)

    def record_predictions(self, classes: np.ndarray | Iterable[int]) -> None:
        """Count predicted classes: one ``bincount``, then one add per class present."""
        arr = np.asarray(classes)
        if arr.size == 0:
            return
        if arr.size == 1:
            self._predictions.add(self._class_key(int(arr.reshape(-1)[0])), 1)
            return
        counts = np.bincount(arr.reshape(-1).astype(np.intp, copy=False))
        present = np.flatnonzero(counts)
        self._predictions.add_many(
            (self._class_key(int(cls)), int(n)) for cls, n in zip(present, counts[present], strict=True)
        )

    def published(
        self, n: int, stream: str = "predictions", *, model: str | None = None, model_version: str | None = None
    ) -> None:
        """``n`` events were written to Redis (called per batch, not per request).

        ``model`` (and its version) default to the served model's; the publisher
        names the model of each stream it writes to, whichever model that is.
        """
        if n > 0:
            self._published.add(n, self._for_stream(stream, model, model_version))

    def dropped(
        self, n: int, reason: str, stream: str = "predictions", *,
        model: str | None = None, model_version: str | None = None,
    ) -> None:
        """``n`` events were lost; ``reason`` must come from a fixed set (``queue_full``,
        ``redis_error``, ``shutdown``...), never from an exception message."""
        if n < 0:
            return
        name, version = self._model_attrs(model, model_version)
        key = (name, version, stream, reason)
        found = self._drop_attrs.get(key)
        if found is None:
            found = {attr.MODEL: name, attr.MODEL_VERSION: version, attr.STREAM: stream, attr.REASON: reason}
            self._drop_attrs[key] = found
        self._dropped.add(n, found)

    def ingested(self, model: str, model_version: str, source: str, *, accepted: int, rejected: int) -> None:
        """Rows of one ingest request: ``accepted`` (queued for the stream) and ``rejected`` (a 422)."""
        base = ((attr.MODEL, model), (attr.MODEL_VERSION, model_version), (attr.SOURCE, source))
        outcomes = (("accepted", accepted), ("rejected", rejected))
        self._ingest_rows.add_many(((*base, (attr.OUTCOME, outcome)), n) for outcome, n in outcomes if n)

    def missing_values(self, model: str, model_version: str, counts: Mapping[str, int]) -> None:
        """Null or NaN feature values logged for ``model``, by feature name (only those with some)."""
        base = ((attr.MODEL, model), (attr.MODEL_VERSION, model_version))
        self._missing.add_many(((*base, (attr.FEATURE, feature)), n) for feature, n in counts.items() if n)

    def set_queue_depth_callback(self, fn: Callable[[], int | None]) -> None:
        """Register how to read the publish queue depth (e.g. ``queue.qsize``).

        Called from the exporter thread at each export: it must be cheap and must
        not block (``asyncio.Queue.qsize`` is fine).
        """
        self._queue_depth = fn

    def _observe_queue(self, _options: CallbackOptions) -> Iterable[Observation]:
        fn = self._queue_depth
        if fn is None:
            return
        try:
            depth = fn()
        except Exception:  # a broken callback must not break the export of the others
            log.debug("queue depth callback failed", exc_info=True)
            return
        if depth is not None:
            # Every model's events share one queue: it is the served model's (if any) series.
            yield Observation(depth, self._for_stream("predictions"))


def _number(value: Any) -> float | None:
    """A finite float, or None for missing / NaN / non-numeric values (nothing is exported)."""
    if value is None or isinstance(value, str):
        return None
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


Snapshot = dict[str, list[tuple[float, Attributes]]]


class ReportGauges:
    """Thread-safe holder of the latest values, read by observable-gauge callbacks.

    The monitor writes from its event loop; the exporter reads from its own
    thread. Each update builds a new snapshot and swaps it in under a lock, so a
    reader sees either the old or the new report, never half of each. Only the
    metric groups passed to :meth:`replace` are replaced, so a performance
    update does not erase drift values.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: Snapshot = {}

    def replace(self, values: Snapshot, names: Iterable[str]) -> None:
        with self._lock:
            merged = {k: v for k, v in self._values.items() if k not in set(names)}
            merged.update({k: v for k, v in values.items() if v})
            self._values = merged

    def get(self, name: str) -> list[tuple[float, Attributes]]:
        with self._lock:
            return list(self._values.get(name, ()))

    def callback(self, name: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        """An observable-instrument callback that reports ``name`` from the latest snapshot."""

        def observe(_options: CallbackOptions) -> Iterable[Observation]:
            return [Observation(value, attrs) for value, attrs in self.get(name)]

        return observe


_FEATURE_METRICS = (
    c.DRIFTWATCH_FEATURE_DRIFT_STATISTIC,
    c.DRIFTWATCH_FEATURE_DRIFT_P_VALUE,
    c.DRIFTWATCH_FEATURE_DRIFT_P_VALUE_ADJUSTED,
    c.DRIFTWATCH_FEATURE_DRIFT_EFFECT_SIZE,
    c.DRIFTWATCH_FEATURE_DRIFT_DETECTED,
)
_DATASET_METRICS = (c.DRIFTWATCH_DATASET_DRIFT_DETECTED, c.DRIFTWATCH_DATASET_DRIFT_SHARE)
_PREDICTION_METRICS = (
    c.DRIFTWATCH_PREDICTION_DRIFT_STATISTIC,
    c.DRIFTWATCH_PREDICTION_DRIFT_P_VALUE,
    c.DRIFTWATCH_PREDICTION_DRIFT_EFFECT_SIZE,
    c.DRIFTWATCH_PREDICTION_DRIFT_DETECTED,
)
_MULTIVARIATE_METRICS = (
    c.DRIFTWATCH_MULTIVARIATE_DRIFT_P_VALUE,
    c.DRIFTWATCH_MULTIVARIATE_DRIFT_EFFECT_SIZE,
    c.DRIFTWATCH_MULTIVARIATE_DRIFT_DETECTED,
)
_DRIFT_METRICS = _FEATURE_METRICS + _DATASET_METRICS + _PREDICTION_METRICS + _MULTIVARIATE_METRICS
_PERFORMANCE_METRICS = (
    c.DRIFTWATCH_MODEL_ACCURACY,
    c.DRIFTWATCH_FEEDBACK_COVERAGE,
    c.DRIFTWATCH_FEEDBACK_LABELLED,
)


class MonitorInstruments:
    """The monitor's instruments, made once per meter and shared by the recorder of every watched model.

    Why one set for many models: the SDK keeps the first instrument of a name
    (a second ``create_observable_gauge`` of the same name returns it and
    drops the new callbacks), so each model's recorder cannot make its own.
    Each callback here reports every exported model's values, with the
    ``model`` attribute telling them apart.

    Cardinality: the models exported are capped (``max_models``,
    ``DRIFTWATCH_METRICS_MAX_MODELS``): the first models registered with
    :meth:`model` get series; a model past the cap is still watched and read
    through the API, its recorder is muted, and a warning says so once. A
    model's drift series number about 5 per feature plus 13, so the cap bounds
    the series at ``max_models x (5 x features + 13)`` plus a few per stream.

    >>> from opentelemetry.sdk.metrics import MeterProvider
    >>> from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    >>> reader = InMemoryMetricReader()
    >>> shared = MonitorInstruments(MeterProvider(metric_readers=[reader]).get_meter("driftwatch"), max_models=2)
    >>> for name in ("fraud", "churn", "third"):
    ...     shared.model(name).update_drift({"drifted_share": 0.5, "features": []}, model_version="3")
    >>> exported = reader.get_metrics_data().resource_metrics[0].scope_metrics[0].metrics
    >>> sorted(p.attributes["model"] for m in exported if m.name == "driftwatch.dataset.drift.share"
    ...        for p in m.data.data_points)
    ['churn', 'fraud']
    >>> shared.model("third").exported
    False
    """

    def __init__(self, meter: Meter, *, max_models: int | None = None) -> None:
        self.max_models = max_models
        self._lock = threading.Lock()
        self._models: dict[str, MonitorMetrics] = {}
        self._muted: dict[str, MonitorMetrics] = {}
        for name in (*_DRIFT_METRICS, *_PERFORMANCE_METRICS):
            create_instrument(meter, name, [self._gauge_observer(name)])
        self.processed_counter = cast(Counter, create_instrument(meter, c.DRIFTWATCH_EVENTS_PROCESSED))
        create_instrument(meter, c.DRIFTWATCH_STREAM_LAG, [self._stream_observer("lag")])
        create_instrument(meter, c.DRIFTWATCH_STREAM_PENDING, [self._stream_observer("pending")])
        create_instrument(meter, c.DRIFTWATCH_DLQ_LENGTH, [self._observe_dlq])

    def model(self, name: str) -> MonitorMetrics:
        """The recorder of one model (the same one on every call); muted past the cap."""
        with self._lock:
            found = self._models.get(name) or self._muted.get(name)
            if found is not None:
                return found
            exported = self.max_models is None or len(self._models) < self.max_models
            recorder = MonitorMetrics(model=name, instruments=self, exported=exported)
            (self._models if exported else self._muted)[name] = recorder
        if not exported:
            log.warning("metrics: model %r is not exported: %d models already are (DRIFTWATCH_METRICS_MAX_MODELS)",
                        name, self.max_models)
        return recorder

    def forget(self, name: str) -> None:
        """Stop exporting ``name``'s gauges (the model is no longer watched); counters keep their totals."""
        with self._lock:
            self._models.pop(name, None)
            self._muted.pop(name, None)

    def exported_models(self) -> list[MonitorMetrics]:
        with self._lock:
            return list(self._models.values())

    def _gauge_observer(self, name: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(_options: CallbackOptions) -> Iterable[Observation]:
            return [Observation(v, a) for m in self.exported_models() for v, a in m.gauges.get(name)]

        return observe

    def _stream_observer(self, key: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(_options: CallbackOptions) -> Iterable[Observation]:
            out: list[Observation] = []
            for recorder in self.exported_models():
                out.extend(recorder.observe_streams(key))
            return out

        return observe

    def _observe_dlq(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [o for m in self.exported_models() if (o := m.observe_dlq()) is not None]


class MonitorMetrics:
    """Metrics of one model the monitor watches (every series carries ``model``; drift and
    performance also ``model.version``).

    Made alone (``MonitorMetrics(meter, model=...)``) it owns its instruments;
    a monitor watching many models gets one per model from a shared
    :class:`MonitorInstruments` (``instruments.model(name)``).

    >>> from opentelemetry.sdk.metrics import MeterProvider
    >>> from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    >>> reader = InMemoryMetricReader()
    >>> metrics = MonitorMetrics(MeterProvider(metric_readers=[reader]).get_meter("driftwatch"), model="digits-mlp")
    >>> metrics.update_drift({"dataset_drift": True, "drifted_share": 0.25, "features": []}, model_version="1")
    >>> metrics.update_performance(accuracy=0.93, coverage=0.4, labelled=400, model_version="1")
    >>> metrics.processed(500, stream="predictions")
    >>> exported = reader.get_metrics_data().resource_metrics[0].scope_metrics[0].metrics
    >>> wanted = ("driftwatch.dataset.drift.share", "driftwatch.model.accuracy", "driftwatch.events.processed")
    >>> for name, value in sorted((m.name, m.data.data_points[0].value) for m in exported if m.name in wanted):
    ...     print(name, value)
    driftwatch.dataset.drift.share 0.25
    driftwatch.events.processed 500
    driftwatch.model.accuracy 0.93
    """

    def __init__(
        self,
        meter: Meter | None = None,
        *,
        model: str,
        instruments: MonitorInstruments | None = None,
        exported: bool = True,
    ) -> None:
        """Give ``meter`` (own instruments) or ``instruments`` (shared; what ``instruments.model`` does)."""
        self._model = model
        self.exported = exported
        self._gauges = ReportGauges()
        self._processed_attrs: dict[str, dict[str, str]] = {}
        self._stream_stats: dict[str, Callable[[], StreamStats]] = {}
        self._dlq_length: Callable[[], int | None] | None = None
        if instruments is None:
            if meter is None:
                raise TypeError("MonitorMetrics needs a meter or shared instruments")
            instruments = MonitorInstruments(meter)
            instruments._models[model] = self
        self._instruments = instruments

    @property
    def model(self) -> str:
        return self._model

    def set_dlq_length_callback(self, fn: Callable[[], int | None]) -> None:
        """How to read the dead-letter stream's length: cached values only, no Redis I/O."""
        self._dlq_length = fn

    def observe_dlq(self) -> Observation | None:
        value = self._dlq_length() if self._dlq_length is not None else None
        return None if value is None else Observation(value, {attr.MODEL: self._model})

    @property
    def gauges(self) -> ReportGauges:
        """The holder behind the drift and performance gauges (read-only use: tests, debugging)."""
        return self._gauges

    def update_drift(
        self,
        report: Mapping[str, Any],
        *,
        model_version: str | None = None,
        model: str | None = None,
    ) -> None:
        """Publish a drift report (a DriftReport as JSON) as the current gauge values.

        ``model`` and ``model_version`` default to the report's ``model`` /
        ``model_version`` keys, then to the recorder's model. Values that are
        missing, None or NaN (an "insufficient data" window) are not exported:
        absent, not zero, so a dashboard does not show a fake "no drift".
        """
        base = {
            attr.MODEL: str(model or report.get("model") or self._model),
            attr.MODEL_VERSION: str(model_version or report.get("model_version") or "unknown"),
        }
        values: Snapshot = {name: [] for name in _DRIFT_METRICS}

        def put(name: str, raw: Any, attrs: dict[str, str]) -> None:
            number = _number(raw)
            if number is not None:
                values[name].append((number, attrs))

        for feature in report.get("features") or ():
            fattrs = {
                **base,
                attr.FEATURE: str(feature.get("name")),
                attr.TEST: str(feature.get("test") or "unknown"),
            }
            put(c.DRIFTWATCH_FEATURE_DRIFT_STATISTIC, feature.get("statistic"), fattrs)
            put(c.DRIFTWATCH_FEATURE_DRIFT_P_VALUE, feature.get("p_value"), fattrs)
            put(
                c.DRIFTWATCH_FEATURE_DRIFT_P_VALUE_ADJUSTED,
                feature.get("p_value_adjusted"),
                fattrs,
            )
            put(c.DRIFTWATCH_FEATURE_DRIFT_DETECTED, feature.get("drifted"), fattrs)
            kind = feature.get("effect_size_kind")
            eattrs = {**fattrs, attr.EFFECT_SIZE_KIND: str(kind)} if kind else fattrs
            put(c.DRIFTWATCH_FEATURE_DRIFT_EFFECT_SIZE, feature.get("effect_size"), eattrs)

        put(c.DRIFTWATCH_DATASET_DRIFT_DETECTED, report.get("dataset_drift"), base)
        put(c.DRIFTWATCH_DATASET_DRIFT_SHARE, report.get("drifted_share"), base)

        prediction = report.get("prediction_drift")
        if prediction:
            pattrs = {**base, attr.TEST: str(prediction.get("test") or "chi2")}
            put(c.DRIFTWATCH_PREDICTION_DRIFT_STATISTIC, prediction.get("statistic"), pattrs)
            put(c.DRIFTWATCH_PREDICTION_DRIFT_P_VALUE, prediction.get("p_value"), pattrs)
            kind = prediction.get("effect_size_kind")
            peattrs = {**pattrs, attr.EFFECT_SIZE_KIND: str(kind)} if kind else pattrs
            put(c.DRIFTWATCH_PREDICTION_DRIFT_EFFECT_SIZE, prediction.get("effect_size"), peattrs)
            put(c.DRIFTWATCH_PREDICTION_DRIFT_DETECTED, prediction.get("drifted"), pattrs)

        multivariate = report.get("multivariate_drift")
        if multivariate:
            mattrs = {**base, attr.TEST: str(multivariate.get("test") or "cross_moment")}
            put(c.DRIFTWATCH_MULTIVARIATE_DRIFT_P_VALUE, multivariate.get("p_value"), mattrs)
            kind = multivariate.get("effect_size_kind")
            meattrs = {**mattrs, attr.EFFECT_SIZE_KIND: str(kind)} if kind else mattrs
            put(c.DRIFTWATCH_MULTIVARIATE_DRIFT_EFFECT_SIZE, multivariate.get("effect_size"), meattrs)
            put(c.DRIFTWATCH_MULTIVARIATE_DRIFT_DETECTED, multivariate.get("drifted"), mattrs)

        self._gauges.replace(values, _DRIFT_METRICS)

    def update_performance(
        self,
        accuracy: float | None,
        coverage: float | None,
        labelled: int | None,
        *,
        model_version: str | None = None,
        model: str | None = None,
    ) -> None:
        """Publish the latest window's performance; None means "no labels yet" (not exported)."""
        base = {
            attr.MODEL: str(model or self._model),
            attr.MODEL_VERSION: str(model_version or "unknown"),
        }
        values: Snapshot = {}
        for name, raw in (
            (c.DRIFTWATCH_MODEL_ACCURACY, accuracy),
            (c.DRIFTWATCH_FEEDBACK_COVERAGE, coverage),
            (c.DRIFTWATCH_FEEDBACK_LABELLED, labelled),
        ):
            number = _number(raw)
            if number is not None:
                values[name] = [(number, base)]
        self._gauges.replace(values, _PERFORMANCE_METRICS)

    def processed(self, n: int, stream: str = "predictions") -> None:
        """``n`` events were processed and acknowledged."""
        if n <= 0 or not self.exported:
            return
        found = self._processed_attrs.get(stream)
        if found is None:
            found = {attr.MODEL: self._model, attr.STREAM: stream}
            self._processed_attrs[stream] = found
        self._instruments.processed_counter.add(n, found)

    def set_stream_stats_callback(
        self, fn: Callable[[], StreamStats], stream: str = "predictions"
    ) -> None:
        """Register how to read lag and pending counts of ``stream``.

        ``fn`` runs in the exporter thread at each export: return cached values
        (refreshed by the consumer loop, e.g. from ``XINFO GROUPS``), never do
        Redis I/O in it. Call once per stream.
        """
        self._stream_stats[stream] = fn

    def observe_streams(self, key: str) -> list[Observation]:
        """``key`` (lag or pending) of each stream, from the registered callbacks (exporter thread)."""
        out: list[Observation] = []
        for stream, fn in list(self._stream_stats.items()):
            try:
                number = _number(fn().get(key))
            except Exception:  # one broken callback must not stop the export
                log.debug("stream stats callback failed", exc_info=True)
                continue
            if number is not None:
                out.append(Observation(number, {attr.MODEL: self._model, attr.STREAM: stream}))
        return out
