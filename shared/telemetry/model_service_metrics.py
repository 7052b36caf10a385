"""Metrics recorded by the model service, in the style of OpenTelemetry's semconv package.

Each metric is a ``NAME`` constant plus one ``create_<name>(meter)`` function, so
the name, unit and description are written once and every caller gets the same
instrument. Request counts, error counts and request latency are *not* defined
here: the FastAPI instrumentation already records the semantic-convention
histogram ``http.server.request.duration`` (seconds) with ``http.route`` and
``http.response.status_code``; its ``_count`` is the request count and the 5xx
share of it is the error rate. A second counter would cost the hot path twice
for the same number.

Attributes: every metric carries ``model`` and ``model.version``; see
:mod:`shared.telemetry.attributes` for the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from opentelemetry.metrics import (
    CallbackT,
    Counter,
    Histogram,
    Meter,
    ObservableCounter,
    ObservableUpDownCounter,
)

INFERENCE_DURATION_BUCKETS: Final[tuple[float, ...]] = (
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
)  # fmt: skip
"""LiteRT answers one sample in ~2 us and a 1k-row batch in ~ms: the default
OTel buckets (0-10 000 in ms-sized steps) would put every call in the first bucket."""

DRIFTWATCH_INFERENCE_DURATION: Final = "driftwatch.inference.duration"
"""
Time spent in the model runtime for one call (one request, one or many rows).
Rows per call need no histogram of their own: rate(driftwatch_predictions_total)
over rate(driftwatch_inference_duration_seconds_count).
Instrument: histogram
Unit: s
"""


def create_driftwatch_inference_duration(meter: Meter) -> Histogram:
    """Model runtime latency, separate from HTTP latency so a slow model and a slow
    server can be told apart."""
    return meter.create_histogram(
        name=DRIFTWATCH_INFERENCE_DURATION,
        unit="s",
        description="Time spent in the model runtime for one call.",
        explicit_bucket_boundaries_advisory=INFERENCE_DURATION_BUCKETS,
    )


DRIFTWATCH_PREDICTIONS: Final = "driftwatch.predictions"
"""
Predictions served, by predicted class
Instrument: counter (observable: totals are kept in-process, see below)
Unit: {prediction}
"""


def create_driftwatch_predictions(
    meter: Meter, callbacks: Sequence[CallbackT] | None
) -> ObservableCounter:
    """Per-class prediction counts: a live view of the output distribution, which
    shifts before any label arrives.

    Observable, because it is updated on every request: an SDK ``Counter.add``
    costs ~5 us here (attribute hashing, a lock per call), ten of them for a
    batch spanning ten classes; adding to an in-process total and reporting it
    at export time costs well under a microsecond. On the wire it is the same
    monotonic cumulative sum (Prometheus: ``driftwatch_predictions_total``).
    """
    return meter.create_observable_counter(
        name=DRIFTWATCH_PREDICTIONS,
        callbacks=callbacks,
        unit="{prediction}",
        description="Predictions served, by predicted class.",
    )


DRIFTWATCH_EVENTS_PUBLISHED: Final = "driftwatch.events.published"
"""
Events written to a Redis stream
Instrument: counter
Unit: {event}
"""


def create_driftwatch_events_published(meter: Meter) -> Counter:
    """Events that reached Redis; compared with predictions it shows publishing keeps up."""
    return meter.create_counter(
        name=DRIFTWATCH_EVENTS_PUBLISHED,
        unit="{event}",
        description="Events written to a Redis stream.",
    )


DRIFTWATCH_EVENTS_QUEUED: Final = "driftwatch.events.queued"
"""
Events waiting in the in-memory publish queue
Instrument: updowncounter (observable)
Unit: {event}
"""


def create_driftwatch_events_queued(
    meter: Meter, callbacks: Sequence[CallbackT] | None
) -> ObservableUpDownCounter:
    """Queue depth, read at export time from the publisher (no cost per request)."""
    return meter.create_observable_up_down_counter(
        name=DRIFTWATCH_EVENTS_QUEUED,
        callbacks=callbacks,
        unit="{event}",
        description="Events waiting in the in-memory publish queue.",
    )


DRIFTWATCH_EVENTS_DROPPED: Final = "driftwatch.events.dropped"
"""
Events that were never written to Redis
Instrument: counter
Unit: {event}
"""


def create_driftwatch_events_dropped(meter: Meter) -> Counter:
    """Lost events blind the monitor silently; this counter makes the loss visible."""
    return meter.create_counter(
        name=DRIFTWATCH_EVENTS_DROPPED,
        unit="{event}",
        description="Events that were never written to Redis, by reason.",
    )
