"""Metrics recorded by the monitor, in the style of OpenTelemetry's semconv package.

Each metric is a ``NAME`` constant plus one ``create_<name>(meter, ...)`` function.
Drift and performance values are *observable gauges*: the monitor stores its
latest report in a holder (:class:`shared.telemetry.recorders.ReportGauges`)
and the callbacks read it at export time. Unlike a synchronous gauge, a series
that is no longer in the latest report (a feature of an old model version)
stops being exported instead of repeating its last value forever.

Units: ``1`` is used only for true fractions in [0, 1] (p-values, shares,
accuracy), which Prometheus renders with a ``_ratio`` suffix. Test statistics,
effect sizes and 0/1 flags have no unit (chi-squared is not a fraction).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from opentelemetry.metrics import CallbackT, Counter, Meter, ObservableGauge

# -- per feature: attributes model, model.version, feature, test -------------

DRIFTWATCH_FEATURE_DRIFT_STATISTIC: Final = "driftwatch.feature.drift.statistic"
"""
Test statistic of one feature against the reference (KS D, chi-squared)
Instrument: gauge
Unit: (none)
"""


def create_driftwatch_feature_drift_statistic(
    meter: Meter, callbacks: Sequence[CallbackT] | None
) -> ObservableGauge:
    """The statistic itself: comparable across windows of equal size, unlike a p-value."""
    return meter.create_observable_gauge(
        name=DRIFTWATCH_FEATURE_DRIFT_STATISTIC,
        callbacks=callbacks,
        unit="",
        description="Drift test statistic of one feature in the latest window.",
    )


DRIFTWATCH_FEATURE_DRIFT_P_VALUE: Final = "driftwatch.feature.drift.p_value"
"""
Unadjusted p-value of one feature's drift test
Instrument: gauge
Unit: 1
"""


def create_driftwatch_feature_drift_p_value(
    meter: Meter, callbacks: Sequence[CallbackT] | None
) -> ObservableGauge:
    """Raw p-value; the drift decision uses the corrected one (see ``detected``)."""
    return meter.create_observable_gauge(
        name=DRIFTWATCH_FEATURE_DRIFT_P_VALUE,
        callbacks=callbacks,
        unit="1",
        description="Unadjusted p-value of one feature's drift test in the latest window.",
    )


DRIFTWATCH_FEATURE_DRIFT_P_VALUE_ADJUSTED: Final = "driftwatch.feature.drift.p_value_adjusted"
"""
p-value of one feature after the multiple-testing correction
Instrument: gauge
Unit: 1
"""


def create_driftwatch_feature_drift_p_value_adjusted(
    meter: Meter, callbacks: Sequence[CallbackT] | None
) -> ObservableGauge:
    """Corrected p-value (Bonferroni or Benjamini-Hochberg), the one compared with alpha."""
    return meter.create_observable_gauge(
        name=DRIFTWATCH_FEATURE_DRIFT_P_VALUE_ADJUSTED,
        callbacks=callbacks,
        unit="1",
        description="Corrected p-value of one feature's drift test in the latest window.",
    )


DRIFTWATCH_FEATURE_DRIFT_EFFECT_SIZE: Final = "driftwatch.feature.drift.effect_size"
"""
Effect size of one feature's shift (attribute effect_size.kind says which)
Instrument: gauge
Unit: (none)
"""


def create_driftwatch_feature_drift_effect_size(
    meter: Meter, callbacks: Sequence[CallbackT] | None
) -> ObservableGauge:
    """Effect size next to the p-value, so a large-sample significance can be told from
    a shift that matters."""
    return meter.create_observable_gauge(
        name=DRIFTWATCH_FEATURE_DRIFT_EFFECT_SIZE,
        callbacks=callbacks,
        unit="",
        description="Effect size of one feature's shift in the latest window.",
    )


DRIFTWATCH_FEATURE_DRIFT_DETECTED: Final = "driftwatch.feature.drift.detected"
"""
1 if the feature drifted in the latest window, else 0
Instrument: gauge
Unit: (none)
"""


def create_driftwatch_feature_drift_detected(
    meter: Meter, callbacks: Sequence[CallbackT] | None
) -> ObservableGauge:
    """The decision after correction, as 0/1 so ``sum`` counts drifted features."""
    return meter.create_observable_gauge(
        name=DRIFTWATCH_FEATURE_DRIFT_DETECTED,
        callbacks=callbacks,
        unit="",
        description="1 if the feature drifted in the latest window, else 0.",
    )


# -- dataset level: attributes model, model.version ---------------------------

DRIFTWATCH_DATASET_DRIFT_DETECTED: Final = "driftwatch.dataset.drift.detected"
"""
1 if the latest window drifted as a whole, else 0
Instrument: gauge
Unit: (none)
"""


def create_driftwatch_dataset_drift_detected(
    meter: Meter, callbacks: Sequence[CallbackT] | None
) -> ObservableGauge:
    """Dataset drift flag: the one number an alert on drift needs."""
    return meter.create_observable_gauge(
        name=DRIFTWATCH_DATASET_DRIFT_DETECTED,
        callbacks=callbacks,
        unit="",
        description="1 if the latest window drifted as a whole, else 0.",
    )


DRIFTWATCH_DATASET_DRIFT_SHARE: Final = "driftwatch.dataset.drift.share"
"""
Share of features that drifted in the latest window
Instrument: gauge
Unit: 1
"""


def create_driftwatch_dataset_drift_share(
    meter: Meter, callbacks: Sequence[CallbackT] | None
) -> ObservableGauge:
    """How widespread the drift is, independent of the number of features."""
    return meter.create_observable_gauge(
        name=DRIFTWATCH_DATASET_DRIFT_SHARE,
        callbacks=callbacks,
        unit="1",
        description="Share of features that drifted in the latest window.",
    )


# -- prediction drift: attributes model, model.version, test ------------------

DRIFTWATCH_PREDICTION_DRIFT_STATISTIC: Final = "driftwatch.prediction.drift.statistic"
"""
Chi-squared statistic of predicted-class counts against the reference
Instrument: gauge
Unit: (none)
"""


def create_driftwatch_prediction_drift_statistic(
    meter: Meter, callbacks: Sequence[CallbackT] | None
) -> ObservableGauge:
    """Output drift statistic: shifts before labels arrive."""
    return meter.create_observable_gauge(
        name=DRIFTWATCH_PREDICTION_DRIFT_STATISTIC,
        callbacks=callbacks,
        unit="",
        description="Drift statistic of the predicted classes in the latest window.",
    )


DRIFTWATCH_PREDICTION_DRIFT_P_VALUE: Final = "driftwatch.prediction.drift.p_value"
"""
p-value of the prediction drift test
Instrument: gauge
Unit: 1
"""


def create_driftwatch_prediction_drift_p_value(
    meter: Meter, callbacks: Sequence[CallbackT] | None
) -> ObservableGauge:
    """p-value of the predicted-class test."""
    return meter.create_observable_gauge(
        name=DRIFTWATCH_PREDICTION_DRIFT_P_VALUE,
        callbacks=callbacks,
        unit="1",
        description="p-value of the prediction drift test in the latest window.",
    )


DRIFTWATCH_PREDICTION_DRIFT_EFFECT_SIZE: Final = "driftwatch.prediction.drift.effect_size"
"""
Effect size of the prediction drift
Instrument: gauge
Unit: (none)
"""


def create_driftwatch_prediction_drift_effect_size(
    meter: Meter, callbacks: Sequence[CallbackT] | None
) -> ObservableGauge:
    """Effect size of the predicted-class shift."""
    return meter.create_observable_gauge(
        name=DRIFTWATCH_PREDICTION_DRIFT_EFFECT_SIZE,
        callbacks=callbacks,
        unit="",
        description="Effect size of the prediction drift in the latest window.",
    )


DRIFTWATCH_PREDICTION_DRIFT_DETECTED: Final = "driftwatch.prediction.drift.detected"
"""
1 if the predicted classes drifted in the latest window, else 0
Instrument: gauge
Unit: (none)
"""


def create_driftwatch_prediction_drift_detected(
    meter: Meter, callbacks: Sequence[CallbackT] | None
) -> ObservableGauge:
    """Prediction drift decision as 0/1."""
    return meter.create_observable_gauge(
        name=DRIFTWATCH_PREDICTION_DRIFT_DETECTED,
        callbacks=callbacks,
        unit="",
        description="1 if the predicted classes drifted in the latest window, else 0.",
    )


# -- multivariate drift: attributes model, model.version, test ----------------

DRIFTWATCH_MULTIVARIATE_DRIFT_P_VALUE: Final = "driftwatch.multivariate.drift.p_value"
"""
p-value of the multivariate (cross-moment) test of the numeric features together
Instrument: gauge
Unit: 1
"""


def create_driftwatch_multivariate_drift_p_value(
    meter: Meter, callbacks: Sequence[CallbackT] | None
) -> ObservableGauge:
    """A change in how features move together, which no per-feature test sees."""
    return meter.create_observable_gauge(
        name=DRIFTWATCH_MULTIVARIATE_DRIFT_P_VALUE,
        callbacks=callbacks,
        unit="1",
        description="p-value of the multivariate drift test in the latest window.",
    )


DRIFTWATCH_MULTIVARIATE_DRIFT_EFFECT_SIZE: Final = "driftwatch.multivariate.drift.effect_size"
"""
Effect size of the multivariate drift (RMS change of pairwise correlations)
Instrument: gauge
Unit: (none)
"""


def create_driftwatch_multivariate_drift_effect_size(
    meter: Meter, callbacks: Sequence[CallbackT] | None
) -> ObservableGauge:
    """How much the pairwise correlations moved, beside the p-value."""
    return meter.create_observable_gauge(
        name=DRIFTWATCH_MULTIVARIATE_DRIFT_EFFECT_SIZE,
        callbacks=callbacks,
        unit="",
        description="Effect size of the multivariate drift in the latest window.",
    )


DRIFTWATCH_MULTIVARIATE_DRIFT_DETECTED: Final = "driftwatch.multivariate.drift.detected"
"""
1 if the multivariate test drifted in the latest window, else 0
Instrument: gauge
Unit: (none)
"""


def create_driftwatch_multivariate_drift_detected(
    meter: Meter, callbacks: Sequence[CallbackT] | None
) -> ObservableGauge:
    """Multivariate drift decision as 0/1."""
    return meter.create_observable_gauge(
        name=DRIFTWATCH_MULTIVARIATE_DRIFT_DETECTED,
        callbacks=callbacks,
        unit="",
        description="1 if the multivariate test drifted in the latest window, else 0.",
    )


# -- performance on feedback: attributes model, model.version -----------------

DRIFTWATCH_MODEL_ACCURACY: Final = "driftwatch.model.accuracy"
"""
Accuracy on the labelled predictions of the latest window
Instrument: gauge
Unit: 1
"""


def create_driftwatch_model_accuracy(
    meter: Meter, callbacks: Sequence[CallbackT] | None
) -> ObservableGauge:
    """Accuracy from feedback; absent (not 0) while no label has arrived."""
    return meter.create_observable_gauge(
        name=DRIFTWATCH_MODEL_ACCURACY,
        callbacks=callbacks,
        unit="1",
        description="Accuracy on the labelled predictions of the latest window.",
    )


DRIFTWATCH_FEEDBACK_COVERAGE: Final = "driftwatch.feedback.coverage"
"""
Share of the latest window's predictions that have a label
Instrument: gauge
Unit: 1
"""


def create_driftwatch_feedback_coverage(
    meter: Meter, callbacks: Sequence[CallbackT] | None
) -> ObservableGauge:
    """Label coverage: an accuracy from 3 labels out of 1000 predictions means little."""
    return meter.create_observable_gauge(
        name=DRIFTWATCH_FEEDBACK_COVERAGE,
        callbacks=callbacks,
        unit="1",
        description="Share of the latest window's predictions that have a label.",
    )


DRIFTWATCH_FEEDBACK_LABELLED: Final = "driftwatch.feedback.labelled"
"""
Predictions of the latest window that have a label
Instrument: gauge
Unit: {prediction}
"""


def create_driftwatch_feedback_labelled(
    meter: Meter, callbacks: Sequence[CallbackT] | None
) -> ObservableGauge:
    """Sample size behind the accuracy."""
    return meter.create_observable_gauge(
        name=DRIFTWATCH_FEEDBACK_LABELLED,
        callbacks=callbacks,
        unit="{prediction}",
        description="Predictions of the latest window that have a label.",
    )


# -- stream consumption: attributes model, stream ------------------------------

DRIFTWATCH_STREAM_LAG: Final = "driftwatch.stream.lag"
"""
Entries in the stream not yet delivered to the monitor's consumer group
Instrument: gauge
Unit: {event}
"""


def create_driftwatch_stream_lag(
    meter: Meter, callbacks: Sequence[CallbackT] | None
) -> ObservableGauge:
    """Consumer-group lag; near the stream's MAXLEN cap events are trimmed unseen."""
    return meter.create_observable_gauge(
        name=DRIFTWATCH_STREAM_LAG,
        callbacks=callbacks,
        unit="{event}",
        description="Stream entries not yet delivered to the monitor's consumer group.",
    )


DRIFTWATCH_DLQ_LENGTH: Final = "driftwatch.dlq.length"
"""
Entries in the model's dead-letter stream
Instrument: gauge
Unit: {event}
"""


def create_driftwatch_dlq_length(meter: Meter, callbacks: Sequence[CallbackT] | None) -> ObservableGauge:
    """Events the monitor gave up on (undecodable, or failing every delivery): each is data not counted."""
    return meter.create_observable_gauge(
        name=DRIFTWATCH_DLQ_LENGTH,
        callbacks=callbacks,
        unit="{event}",
        description="Entries in the dead-letter stream.",
    )


DRIFTWATCH_STREAM_PENDING: Final = "driftwatch.stream.pending"
"""
Entries delivered but not acknowledged (in the consumer group's PEL)
Instrument: gauge
Unit: {event}
"""


def create_driftwatch_stream_pending(
    meter: Meter, callbacks: Sequence[CallbackT] | None
) -> ObservableGauge:
    """Pending entries: growth means a consumer is stuck or crashed."""
    return meter.create_observable_gauge(
        name=DRIFTWATCH_STREAM_PENDING,
        callbacks=callbacks,
        unit="{event}",
        description="Stream entries delivered but not yet acknowledged.",
    )


DRIFTWATCH_EVENTS_PROCESSED: Final = "driftwatch.events.processed"
"""
Events the monitor processed and acknowledged
Instrument: counter
Unit: {event}
"""


def create_driftwatch_events_processed(meter: Meter) -> Counter:
    """Throughput of the monitor; its rate against ``events.published`` shows who keeps up."""
    return meter.create_counter(
        name=DRIFTWATCH_EVENTS_PROCESSED,
        unit="{event}",
        description="Events the monitor processed and acknowledged.",
    )
