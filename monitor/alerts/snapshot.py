"""What the evaluator reads: the monitor's latest view of one model.

The monitor fills a ``MetricSnapshot`` after each window report and passes it
to ``AlertService.evaluate``. Every metric is optional: ``None`` means "not
known" (no feedback yet, a window too small to test, a source that does not
report it), and a rule on an unknown metric keeps its state rather than
treating the absence as good or bad news.
"""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from monitor.alerts.rules import AlertRule, Metric

_Unit = Annotated[float | None, Field(ge=0, le=1)]
DRIFTED_FEATURES_SHOWN = 20
_NonNegative = Annotated[float | None, Field(ge=0)]


class FeatureStats(BaseModel):
    """The drift test's result for one feature in the window."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    p_value_adjusted: _Unit = None
    effect_size: _NonNegative = None
    drifted: bool | None = Field(default=None, description="The report's verdict for this feature")


class MetricSnapshot(BaseModel):
    """One evaluation's input.

    ``window`` is the index of the window the report is about; evaluations with
    the same (or an older) index than an alert last saw change nothing, so any
    replica may evaluate any report any number of times. A snapshot without a
    window (e.g. a periodic lag check) is ordered by ``at`` instead.
    """

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "window": 41,
                    "at": 1_767_225_600.0,
                    "sample_count": 1000,
                    "dataset_drift_share": 0.25,
                    "prediction_drift_p_value": 0.2,
                    "multivariate_drift_p_value": 0.4,
                    "features": {"pixel_0": {"p_value_adjusted": 0.004, "effect_size": 0.31}},
                    "accuracy": 0.93,
                    "labelled_count": 412,
                    "label_coverage": 0.41,
                    "stream_lag": 120,
                }
            ]
        },
    )

    window: Annotated[int | None, Field(ge=0)] = None
    model_version: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=256,
            description="The version whose window this is: only window rules are evaluated, on that version's"
            " instances (labelled model_version); window numbers restart per version",
        ),
    ] = None
    version_retired: bool = Field(
        default=False,
        description="The version (``model_version``) was retired: its alerts resolve (firing) or end (pending);"
        " without a version, the model's service alerts (lag, error rate, latency) do: the model is not watched",
    )
    service_only: bool = Field(
        default=False,
        description="A periodic snapshot of the service and stream (lag, error rate, latency): only rules on"
        " those metrics are evaluated",
    )
    at: Annotated[float, Field(ge=0, allow_inf_nan=False, description="Unix seconds of the evaluation")]
    sample_count: Annotated[int | None, Field(ge=0, description="Predictions in the window")] = None
    dataset_drift_share: _Unit = None
    prediction_drift_p_value: _Unit = None
    multivariate_drift_p_value: _Unit = None
    features: dict[str, FeatureStats] = Field(default_factory=dict)
    accuracy: _Unit = None
    labelled_count: Annotated[int | None, Field(ge=0, description="Predictions in the window with a label")] = None
    label_coverage: _Unit = None
    error_rate: _Unit = None
    latency_p99_seconds: _NonNegative = None
    stream_lag: _NonNegative = None
    report_url: Annotated[
        str | None, Field(max_length=2048, description="Where a human reads the report this snapshot comes from")
    ] = None

    def drifted_features(self, limit: int = DRIFTED_FEATURES_SHOWN) -> str:
        """The drifted features, largest effect first: ``"pixel_3 (3.12), pixel_4 (2.9) and 10 more"``.

        What one dataset alert says instead of one alert per feature; capped so
        an annotation stays readable (and under its 4096-character limit).
        """
        drifted = [(name, f.effect_size) for name, f in self.features.items() if f.drifted]
        drifted.sort(key=lambda item: (-(item[1] if item[1] is not None else -1.0), item[0]))
        shown = [f"{name} ({size:.3g})" if size is not None else name for name, size in drifted[:limit]]
        more = len(drifted) - len(shown)
        return ", ".join(shown) + (f" and {more} more" if more > 0 else "")

    def template_context(self) -> dict[str, str]:
        """Values of the snapshot-wide annotation placeholders (``$drifted_features``, ``$report_url``)."""
        return {"drifted_features": self.drifted_features(), "report_url": self.report_url or ""}

    def observe(self, rule: AlertRule, feature: str | None = None) -> float | None:
        """The rule's metric in this snapshot, or ``None`` when unknown or too thinly sampled."""
        if rule.min_samples is not None:
            count = self.labelled_count if rule.metric is Metric.accuracy else self.sample_count
            if count is None or count < rule.min_samples:
                return None
        value: float | None
        if rule.metric is Metric.feature_p_value_adjusted or rule.metric is Metric.feature_effect_size:
            stats = self.features.get(feature or "")
            if stats is None:
                return None
            value = stats.p_value_adjusted if rule.metric is Metric.feature_p_value_adjusted else stats.effect_size
        else:
            value = getattr(self, rule.metric.value)
        if value is None or math.isnan(value):
            return None
        return float(value)
