"""Rule validation: bad input is a ValidationError that names the field at fault."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from monitor.alerts.rules import AlertRule, Duration, Metric, default_rules
from monitor.alerts.snapshot import MetricSnapshot

GOOD: dict[str, Any] = {"name": "Drift", "metric": "dataset_drift_share", "op": ">", "value": 0.2}


def error_locs(data: dict[str, Any]) -> list[tuple[str | int, ...]]:
    with pytest.raises(ValidationError) as info:
        AlertRule.model_validate(data)
    return [tuple(e["loc"]) for e in info.value.errors()]


@pytest.mark.parametrize(
    ("patch", "loc"),
    [
        ({"name": "has space"}, ("name",)),
        ({"name": "9starts-with-digit"}, ("name",)),
        ({"name": ""}, ("name",)),
        ({"metric": "cpu"}, ("metric",)),
        ({"op": "=>"}, ("op",)),
        ({"value": "high"}, ("value",)),
        ({"value": float("nan")}, ("value",)),
        ({"value": 1.5}, ("value",)),  # a share lies in [0, 1]
        ({"metric": "stream_lag", "value": -1}, ("value",)),
        ({"feature": "pixel_0"}, ("feature",)),  # not a feature metric
        ({"metric": "feature_effect_size", "value": 0.1}, ("feature",)),  # feature missing
        ({"for": {}}, ("for",)),
        ({"for": {"windows": 2, "seconds": 5}}, ("for",)),
        ({"for": {"windows": 0}}, ("for", "windows")),
        ({"for": "2w"}, ("for",)),
        ({"keep_firing_for": {"seconds": -1}}, ("keep_firing_for", "seconds")),
        ({"min_samples": 0}, ("min_samples",)),
        ({"labels": {"alertname": "x"}}, ("labels",)),
        ({"labels": {"bad-name": "x"}}, ("labels",)),
        ({"annotations": {"summary": "{{ .Value }}"}}, ("annotations",)),
        ({"severity": "critical"}, ("severity",)),  # extra fields are forbidden
    ],
)
def test_bad_rule_names_the_field(patch: dict[str, Any], loc: tuple[str, ...]) -> None:
    assert loc in error_locs({**GOOD, **patch})


def test_for_is_spelled_for_on_the_wire() -> None:
    r = AlertRule.model_validate({**GOOD, "for": {"windows": 2}, "keep_firing_for": {"seconds": 60}})
    assert r.for_ == Duration(windows=2)
    dumped = r.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert dumped["for"] == {"windows": 2} and "for_" not in dumped
    assert AlertRule.model_validate(dumped) == r
    assert AlertRule.model_validate_json(r.model_dump_json(by_alias=True)) == r


def test_any_feature() -> None:
    r = AlertRule.model_validate({**GOOD, "metric": "feature_p_value_adjusted", "feature": "*", "value": 0.01})
    assert r.per_feature


def test_defaults_are_valid_unique_and_cover_the_issue() -> None:
    rules = default_rules()
    names = [r.name for r in rules]
    assert len(names) == len(set(names))
    by_name = {r.name: r for r in rules}
    drift = by_name["DatasetDrift"]
    # Any feature drifted after the correction (the report's dataset verdict), 2 windows running.
    assert (drift.metric, drift.op, drift.value, drift.for_) == (
        Metric.dataset_drift_share,
        ">",
        0.0,
        Duration(windows=2),
    )
    assert {"drifted_features", "report_url"} <= set(drift.annotations)
    acc = by_name["LowAccuracy"]
    assert (acc.op, acc.value, acc.min_samples, acc.labels["severity"]) == ("<", 0.8, 100, "critical")
    assert by_name["PredictionDrift"].value == 0.01
    assert by_name["StreamLag"].value == 100_000
    for r in rules:
        assert r.labels["severity"] in {"info", "warning", "critical"}
        assert AlertRule.model_validate(r.model_dump(by_alias=True)) == r


def test_snapshot_rejects_out_of_range_metrics() -> None:
    with pytest.raises(ValidationError) as info:
        MetricSnapshot(at=0, accuracy=1.5)
    assert info.value.errors()[0]["loc"] == ("accuracy",)


def test_per_feature_alerts_are_opt_in() -> None:
    """One drift episode notifies once by default: no rule makes an alert per feature."""
    assert not any(r.per_feature for r in default_rules())
    opted = default_rules(per_feature=True)
    assert [r.name for r in opted if r.per_feature] == ["FeatureDrift"]
    assert {r.name for r in opted} - {r.name for r in default_rules()} == {"FeatureDrift"}


def test_snapshot_lists_drifted_features_largest_effect_first() -> None:
    features = {f"px{i}": {"p_value_adjusted": 0.0, "effect_size": i / 10, "drifted": True} for i in range(25)}
    features["calm"] = {"p_value_adjusted": 0.9, "effect_size": 5.0, "drifted": False}
    snap = MetricSnapshot.model_validate({"at": 0, "features": features, "report_url": "http://m/drift/windows/4"})
    listed = snap.drifted_features()
    assert listed.startswith("px24 (2.4), px23 (2.3), ") and listed.endswith("px5 (0.5) and 5 more")
    assert "calm" not in listed
    assert snap.template_context() == {"drifted_features": listed, "report_url": "http://m/drift/windows/4"}
    assert MetricSnapshot(at=0).template_context() == {"drifted_features": "", "report_url": ""}
