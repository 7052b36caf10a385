"""Alert rules: what to watch, when it counts as a problem, and how to say so.

A rule is a threshold on one metric of the monitor's latest snapshot, shaped
after a Prometheus alerting rule: ``for`` (how long the condition must hold
before the alert fires), ``keep_firing_for`` (how long it keeps firing after
the condition clears, against flapping), ``labels`` (routing, e.g.
``severity``) and ``annotations`` (text for humans, templated with
``{{ $value }}`` and ``{{ $labels.<name> }}``).

Durations have one form: an object with exactly one of ``windows`` (count of
evaluated windows, the natural clock of a count-based monitor) or ``seconds``
(wall-clock, measured on the snapshots' ``at``).

Feature metrics (``feature_p_value_adjusted``, ``feature_effect_size``) need
``feature``: a feature name, or ``"*"`` for every feature of the snapshot. A
``"*"`` rule makes one alert instance per feature, labelled ``feature=<name>``,
each with its own state, so two drifting features are two alerts.

Alert fatigue: one drift episode of one model should notify once. The default
rules therefore watch the model as a whole (``DatasetDrift`` fires when any
feature drifted after the multiple-testing correction), and its annotations
carry the drifted features with their effect sizes (``{{ $drifted_features }}``)
and a link to the window's report (``{{ $report_url }}``). One alert per
drifted pixel (63 on digits) stays available as an opt-in
(:func:`feature_drift_rule`, ``DRIFTWATCH_ALERT_PER_FEATURE=true``); the shipped
Alertmanager configuration inhibits those while ``DatasetDrift`` fires.
"""

from __future__ import annotations

import math
import re
from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic.json_schema import JsonDict, JsonValue

from shared.json_numbers import JsonFloat, JsonInt

ANY_FEATURE = "*"
# Limits on what users can store (README, "Alerts"); past them a rule is a 422. Every
# rule is evaluated at every window, and a "*" rule makes one instance per feature:
# 10,000 rules once stalled the monitor at the next window.
MAX_RULES = 100
MAX_LABELS = 20  # per rule; the same for annotations
MAX_LABEL_NAME_CHARS = 128
MAX_LABEL_VALUE_CHARS = 1_024
MAX_ANNOTATION_CHARS = 4_096
MAX_MIN_SAMPLES = 10_000_000
NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_.-]{0,127}$"
LABEL_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Labels the evaluator sets itself: a rule may not override them.
RESERVED_LABELS = frozenset({"alertname", "feature", "model", "model_version"})
# The label naming the model version a window's alert is about (Alertmanager label
# names take no dots, unlike the metrics' ``model.version`` attribute).
MODEL_VERSION_LABEL = "model_version"
# An annotation's text: any "{{" opens a placeholder: {{ $value }}, {{ $labels.<name> }}, or
# {{ $drifted_features }} and {{ $report_url }}, which come from the snapshot
# (MetricSnapshot.template_context). One pattern for the check and the OpenAPI schema.
ANNOTATION_PATTERN = (
    r"^(?:[^{]|\{(?!\{)|\{\{\s*(?:\$value|\$drifted_features|\$report_url|\$labels\.[A-Za-z_][A-Za-z0-9_]*)\s*\}\})*$"
)
_ANNOTATION = re.compile(ANNOTATION_PATTERN)

Comparison = Literal[">", ">=", "<", "<=", "==", "!="]


class Metric(StrEnum):
    """The metrics a rule may watch; each maps to one field of ``MetricSnapshot``."""

    dataset_drift_share = "dataset_drift_share"
    feature_p_value_adjusted = "feature_p_value_adjusted"
    feature_effect_size = "feature_effect_size"
    prediction_drift_p_value = "prediction_drift_p_value"
    multivariate_drift_p_value = "multivariate_drift_p_value"
    accuracy = "accuracy"
    label_coverage = "label_coverage"
    error_rate = "error_rate"
    latency_p99_seconds = "latency_p99_seconds"
    stream_lag = "stream_lag"


FEATURE_METRICS = frozenset({Metric.feature_p_value_adjusted, Metric.feature_effect_size})
# Metrics of the model's service and stream, not of one version's windows: evaluated on the
# periodic snapshot, one instance per model (no version label). The others come from a
# version's window report: one instance per model version.
SERVICE_METRICS = frozenset({Metric.error_rate, Metric.latency_p99_seconds, Metric.stream_lag})
# Metrics that are a probability or a share: a threshold outside [0, 1] can never
# (or always) match, which is a mistake worth a 422 rather than a silent alert.
UNIT_INTERVAL_METRICS = frozenset(
    {
        Metric.dataset_drift_share,
        Metric.feature_p_value_adjusted,
        Metric.prediction_drift_p_value,
        Metric.multivariate_drift_p_value,
        Metric.accuracy,
        Metric.label_coverage,
        Metric.error_rate,
    }
)


def _exactly_one_of(schema: JsonDict, names: tuple[str, ...], examples: list[JsonValue]) -> None:
    """Document "exactly one of ``names`` given and not null", as the validator checks it."""
    schema["oneOf"] = [{"required": [name], "properties": {name: {"not": {"type": "null"}}}} for name in names]
    schema["examples"] = examples


class Duration(BaseModel):
    """A span of windows or of seconds: exactly one of the two."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra=lambda schema: _exactly_one_of(
            schema, ("windows", "seconds"), examples=[{"windows": 2}, {"seconds": 300}]
        ),
    )

    windows: Annotated[JsonInt | None, Field(ge=1, le=100_000, description="Consecutive evaluated windows")] = None
    seconds: Annotated[
        JsonFloat | None, Field(ge=0, le=30 * 24 * 3600, allow_inf_nan=False, description="Wall-clock seconds")
    ] = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.windows is None) == (self.seconds is None):
            raise ValueError("give exactly one of 'windows' or 'seconds'")
        return self


_RULE_EXAMPLE: JsonDict = {
    "name": "FeatureDrift",
    "metric": "feature_p_value_adjusted",
    "feature": "*",
    "op": "<",
    "value": 0.01,
    "for": {"windows": 2},
    "keep_firing_for": {"windows": 1},
    "labels": {"severity": "warning"},
    "annotations": {
        "summary": "Feature {{ $labels.feature }} drifted",
        "description": "Adjusted KS p-value {{ $value }} below 0.01 for 2 windows",
    },
}


def rule_json_schema(schema: JsonDict, examples: list[JsonValue]) -> None:
    """The cross-field rules the validators apply, in the OpenAPI schema too: a feature
    exactly for feature metrics (absent or null for the others), and each metric's range for ``value``."""

    def metric_in(metrics: frozenset[Metric]) -> JsonDict:
        names: list[JsonValue] = [m.value for m in sorted(metrics)]
        return {"properties": {"metric": {"enum": names}}, "required": ["metric"]}

    schema["allOf"] = [
        {
            "if": metric_in(FEATURE_METRICS),
            "then": {"required": ["feature"]},
            "else": {"not": {"required": ["feature"]}},
        },
        {
            "if": metric_in(UNIT_INTERVAL_METRICS),
            "then": {"properties": {"value": {"minimum": 0, "maximum": 1}}},
            "else": {"properties": {"value": {"minimum": 0}}},
        },
    ]
    schema["examples"] = examples


class AlertRule(BaseModel):
    """One alerting rule. ``for`` is spelled ``for`` on the wire (a Python keyword, hence ``for_``)."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        frozen=True,
        json_schema_extra=lambda schema: rule_json_schema(schema, [_RULE_EXAMPLE]),
    )

    name: Annotated[str, Field(pattern=NAME_PATTERN, description="Alert name, the `alertname` label")]
    model: Annotated[
        str | None,
        Field(min_length=1, max_length=256, description="Only this model; absent: every model the monitor watches"),
    ] = None
    metric: Metric
    feature: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=256,
            validate_default=True,
            description="Feature name, or '*' for every feature (feature metrics only)",
        ),
    ] = None
    op: Comparison
    value: Annotated[JsonFloat, Field(allow_inf_nan=False, description="Threshold compared as `metric op value`")]
    for_: Annotated[
        Duration | None,
        Field(alias="for", description="How long the condition must hold before firing; absent: fire at once"),
    ] = None
    keep_firing_for: Annotated[
        Duration | None, Field(description="How long to keep firing after the condition clears")
    ] = None
    min_samples: Annotated[
        JsonInt | None,
        Field(
            ge=1,
            le=MAX_MIN_SAMPLES,
            description="Skip evaluation until the window has this many samples (labels for accuracy)",
        ),
    ] = None
    labels: Annotated[
        dict[
            Annotated[
                str,
                Field(
                    max_length=MAX_LABEL_NAME_CHARS,
                    json_schema_extra={"pattern": LABEL_NAME_PATTERN.pattern, "not": {"enum": sorted(RESERVED_LABELS)}},
                ),
            ],
            Annotated[str, Field(max_length=MAX_LABEL_VALUE_CHARS)],
        ],
        Field(max_length=MAX_LABELS, description="Extra labels, e.g. severity"),
    ] = Field(default_factory=dict)
    annotations: Annotated[
        dict[
            Annotated[str, Field(max_length=MAX_LABEL_NAME_CHARS)],
            Annotated[str, Field(max_length=MAX_ANNOTATION_CHARS, json_schema_extra={"pattern": ANNOTATION_PATTERN})],
        ],
        Field(max_length=MAX_LABELS, description="summary, description; templated"),
    ] = Field(default_factory=dict)

    @field_validator("labels")
    @classmethod
    def _label_names(cls, labels: dict[str, str]) -> dict[str, str]:
        for key in labels:
            if not LABEL_NAME_PATTERN.match(key):
                raise ValueError(f"label name {key!r} must match {LABEL_NAME_PATTERN.pattern}")
            if key in RESERVED_LABELS:
                raise ValueError(f"label {key!r} is set by the evaluator and cannot be overridden")
        return labels

    @field_validator("annotations")
    @classmethod
    def _templates(cls, annotations: dict[str, str]) -> dict[str, str]:
        for key, text in annotations.items():
            if not _ANNOTATION.fullmatch(text):
                raise ValueError(
                    f"annotation {key!r}: unsupported template; every {{{{ must open {{{{ $value }}}},"
                    " {{ $labels.<name> }}, {{ $drifted_features }} or {{ $report_url }}"
                )
        return annotations

    # Cross-field checks live in field validators (metric is declared first, so
    # it is in ``info.data``): the error then carries the field's location and a
    # 422 names ``feature`` or ``value``, not the whole body.
    @field_validator("feature")
    @classmethod
    def _feature_for_metric(cls, feature: str | None, info: ValidationInfo) -> str | None:
        metric = info.data.get("metric")
        if metric is None:
            return feature
        if metric in FEATURE_METRICS and feature is None:
            raise ValueError(f"required for metric {metric.value} (a feature name or '*')")
        if metric not in FEATURE_METRICS and feature is not None:
            raise ValueError(f"only feature metrics take a feature, not {metric.value}")
        return feature

    @field_validator("value")
    @classmethod
    def _value_in_range(cls, value: float, info: ValidationInfo) -> float:
        metric = info.data.get("metric")
        if metric in UNIT_INTERVAL_METRICS and not 0.0 <= value <= 1.0:
            raise ValueError(f"{metric.value} lies in [0, 1], got {value}")
        if metric is not None and metric not in UNIT_INTERVAL_METRICS and value < 0:
            raise ValueError(f"{metric.value} is never negative, got {value}")
        return value

    def applies_to(self, model: str) -> bool:
        """Whether the rule is evaluated for ``model`` (it names none, or that one)."""
        return self.model is None or self.model == model

    @property
    def per_feature(self) -> bool:
        """True when the rule makes one instance per feature of the snapshot."""
        return self.feature == ANY_FEATURE

    def holds(self, observed: float) -> bool:
        """Whether ``observed op value`` is true; NaN never holds (it means unknown)."""
        if math.isnan(observed):
            return False
        match self.op:
            case ">":
                return observed > self.value
            case ">=":
                return observed >= self.value
            case "<":
                return observed < self.value
            case "<=":
                return observed <= self.value
            case "==":
                return observed == self.value
            case "!=":
                return observed != self.value
        raise AssertionError(self.op)  # pragma: no cover - Literal is exhaustive


def feature_drift_rule() -> AlertRule:
    """One alert per drifted feature: opt-in (``DRIFTWATCH_ALERT_PER_FEATURE=true``, or ``PUT`` it).

    Not a default: one covariate shift on digits made 63 of these at once.
    ``DatasetDrift`` already names the drifted features, and the shipped
    Alertmanager configuration inhibits these while it fires.
    """
    return AlertRule(
        name="FeatureDrift",
        metric=Metric.feature_p_value_adjusted,
        feature=ANY_FEATURE,
        op="<",
        value=0.001,
        for_=Duration(windows=3),
        labels={"severity": "info"},
        annotations={
            "summary": "Feature {{ $labels.feature }} drifted (adjusted p = {{ $value }})",
            "description": "The feature's adjusted KS p-value stayed below 0.001 for 3 windows.",
        },
    )


def default_rules(*, per_feature: bool = False) -> list[AlertRule]:
    """The rules a fresh install starts with (``AlertStore.ensure_defaults``): one alert per model and rule.

    ``per_feature`` adds :func:`feature_drift_rule`. Long because it is a
    declarative list of rules, one literal each: a table, not logic.
    """
    rules = [
        AlertRule(
            name="DatasetDrift",
            metric=Metric.dataset_drift_share,
            # Any feature drifted after the multiple-testing correction: the
            # dataset verdict of the report (share > 0 <=> dataset_drift).
            op=">",
            value=0.0,
            for_=Duration(windows=2),
            labels={"severity": "warning"},
            annotations={
                "summary": "Dataset drift on {{ $labels.model }}: {{ $value }} of features drifted",
                "description": "Features drifted (after the multiple-testing correction) in 2 consecutive windows.",
                "drifted_features": "{{ $drifted_features }}",
                "report_url": "{{ $report_url }}",
            },
        ),
        AlertRule(
            name="PredictionDrift",
            metric=Metric.prediction_drift_p_value,
            op="<",
            value=0.01,
            labels={"severity": "warning"},
            annotations={
                "summary": "Prediction drift on {{ $labels.model }} (chi-squared p = {{ $value }})",
                "description": "The predicted-class distribution differs from the reference (p < 0.01).",
                "report_url": "{{ $report_url }}",
            },
        ),
        AlertRule(
            name="MultivariateDrift",
            metric=Metric.multivariate_drift_p_value,
            op="<",
            value=0.01,
            for_=Duration(windows=2),
            labels={"severity": "warning"},
            annotations={
                "summary": "Features of {{ $labels.model }} move together differently (p = {{ $value }})",
                "description": "The pairwise correlations of the features changed in 2 consecutive windows"
                " (cross-moment test, p < 0.01); per-feature tests may show nothing.",
                "report_url": "{{ $report_url }}",
            },
        ),
        AlertRule(
            name="LowAccuracy",
            metric=Metric.accuracy,
            op="<",
            value=0.8,
            for_=Duration(windows=1),
            min_samples=100,
            labels={"severity": "critical"},
            annotations={
                "summary": "Accuracy {{ $value }} below 0.8",
                "description": "Accuracy on labelled predictions fell below 0.8 (at least 100 labels).",
            },
        ),
        AlertRule(
            name="LowLabelCoverage",
            metric=Metric.label_coverage,
            op="<",
            value=0.05,
            for_=Duration(windows=3),
            labels={"severity": "info"},
            annotations={
                "summary": "Only {{ $value }} of predictions have labels",
                "description": "Accuracy cannot be trusted while fewer than 5% of predictions get feedback.",
            },
        ),
        AlertRule(
            name="HighErrorRate",
            metric=Metric.error_rate,
            op=">",
            value=0.05,
            for_=Duration(seconds=300),
            labels={"severity": "critical"},
            annotations={
                "summary": "Error rate {{ $value }} above 5%",
                "description": "More than 5% of prediction requests failed for 5 minutes.",
            },
        ),
        AlertRule(
            name="HighLatency",
            metric=Metric.latency_p99_seconds,
            op=">",
            value=0.5,
            for_=Duration(seconds=300),
            labels={"severity": "warning"},
            annotations={
                "summary": "p99 latency {{ $value }} s above 0.5 s",
                "description": "Prediction p99 latency stayed above 500 ms for 5 minutes.",
            },
        ),
        AlertRule(
            name="StreamLag",
            metric=Metric.stream_lag,
            op=">",
            value=100_000,
            labels={"severity": "critical"},
            annotations={
                "summary": "Monitor lags {{ $value }} events behind",
                "description": "The monitor's consumer group is far behind; near the stream cap events are lost.",
            },
        ),
    ]
    return [*rules, feature_drift_rule()] if per_feature else rules
