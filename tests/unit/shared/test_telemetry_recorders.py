"""Recorders and the catalogue, against an in-memory reader (no network)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    Gauge,
    Histogram,
    InMemoryMetricReader,
    Metric,
    Sum,
)

from shared.telemetry import ModelServiceMetrics, MonitorMetrics
from shared.telemetry.catalogue import CATALOGUE, HTTP_SERVER_REQUEST_DURATION, prometheus_name
from shared.telemetry.process_metrics import ProcessMetrics
from shared.telemetry.task_metrics import TaskFailureCounter


@pytest.fixture(autouse=True)
def _sdk_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    # tests/conftest.py disables the SDK for the suite; these tests need real meters.
    monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)


def _provider_and_reader() -> tuple[MeterProvider, InMemoryMetricReader]:
    r = InMemoryMetricReader()
    return MeterProvider(metric_readers=[r]), r


def _metrics(reader: InMemoryMetricReader) -> dict[str, Metric]:
    data = reader.get_metrics_data()
    assert data is not None
    return {
        m.name: m
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    }


def _values(metric: Metric) -> dict[frozenset[tuple[str, Any]], float]:
    out = {}
    for p in metric.data.data_points:
        out[frozenset((p.attributes or {}).items())] = getattr(p, "value", None)
    return out


REPORT: dict[str, Any] = {
    "status": "drift",
    "model": "digits-mlp",
    "model_version": "7",
    "dataset_drift": True,
    "drifted_share": 0.25,
    "features": [
        {"name": "a", "test": "ks", "statistic": 0.5, "p_value": 1e-9, "p_value_adjusted": 4e-9,
         "effect_size": 1.5, "effect_size_kind": "wasserstein", "drifted": True},
        {"name": "b", "test": "chi2", "statistic": None, "p_value": float("nan"),
         "p_value_adjusted": None, "effect_size": None, "drifted": False},
    ],
    "prediction_drift": None,
}  # fmt: skip


def test_every_instrument_matches_the_catalogue() -> None:
    provider, reader = _provider_and_reader()
    meter = provider.get_meter("driftwatch")
    svc = ModelServiceMetrics(meter, model="m", model_version="1")
    svc.record_inference(0.001, n=2)
    svc.record_predictions(np.array([0, 1]))
    svc.published(2)
    svc.dropped(1, "queue_full")
    svc.set_queue_depth_callback(lambda: 3)
    svc.ingested("other", "2", "predictions", accepted=3, rejected=1)
    svc.missing_values("other", "2", {"age": 2, "income": 0})
    mon = MonitorMetrics(meter, model="m")
    mon.update_drift({**REPORT, "prediction_drift": {"statistic": 1.0, "p_value": 0.5,
                      "effect_size": 0.1, "effect_size_kind": "jensen_shannon",
                      "drifted": False}, "multivariate_drift": MULTIVARIATE})  # fmt: skip
    mon.update_performance(0.9, 0.5, 10)
    mon.processed(3)
    mon.set_stream_stats_callback(lambda: {"lag": 1, "pending": 2})
    mon.set_dlq_length_callback(lambda: 0)
    ProcessMetrics(meter)
    TaskFailureCounter(meter, model="m")("monitor-worker", ValueError("bad window"))
    got = _metrics(reader)
    expected = {s.name: s for s in CATALOGUE if s.name != HTTP_SERVER_REQUEST_DURATION}
    assert set(got) == set(expected)
    for name, spec in expected.items():
        metric = got[name]
        assert metric.unit == spec.unit, name
        data = metric.data
        if spec.instrument == "histogram":
            assert isinstance(data, Histogram), name
        elif spec.instrument == "gauge":
            assert isinstance(data, Gauge), name
        else:
            assert isinstance(data, Sum), name
            assert data.is_monotonic == (spec.instrument == "counter"), name
        for point in data.data_points:
            assert set(point.attributes or {}) <= set(spec.attributes), (name, point.attributes)
    provider.shutdown()


def test_record_predictions_counts_each_class_once_per_call() -> None:
    provider, reader = _provider_and_reader()
    svc = ModelServiceMetrics(provider.get_meter("t"), model="m", model_version="1")
    svc.record_predictions(np.array([2, 2, 5, 2, 0], dtype=np.int64))
    svc.record_predictions(np.array([5]))
    svc.record_predictions(np.array([], dtype=np.int64))
    svc.record_predictions([9, 9])
    values = _values(_metrics(reader)["driftwatch.predictions"])
    by_class = {dict(k)["class"]: v for k, v in values.items()}
    assert by_class == {"0": 1, "2": 3, "5": 2, "9": 2}
    assert all(dict(k)["model.version"] == "1" for k in values)
    provider.shutdown()


def test_set_model_switches_attributes() -> None:
    provider, reader = _provider_and_reader()
    svc = ModelServiceMetrics(provider.get_meter("t"), model="m", model_version="1")
    svc.record_predictions(np.array([1]))
    svc.set_model("m", "2")
    svc.record_predictions(np.array([1]))
    versions = {dict(k)["model.version"] for k in _values(_metrics(reader)["driftwatch.predictions"])}
    assert versions == {"1", "2"}
    provider.shutdown()


def test_drift_gauges_skip_missing_values_and_follow_the_latest_report() -> None:
    provider, reader = _provider_and_reader()
    mon = MonitorMetrics(provider.get_meter("t"), model="fallback")
    mon.update_drift(REPORT)
    mon.update_performance(accuracy=None, coverage=0.0, labelled=0)
    got = _metrics(reader)
    stats = _values(got["driftwatch.feature.drift.statistic"])
    # Feature b has no statistic (insufficient data): absent, not 0.
    assert [dict(k)["feature"] for k in stats] == ["a"]
    attrs = dict(next(iter(stats)))
    assert attrs == {"model": "digits-mlp", "model.version": "7", "feature": "a", "test": "ks"}
    assert "driftwatch.feature.drift.p_value" in got
    assert len(got["driftwatch.feature.drift.p_value"].data.data_points) == 1  # NaN skipped
    flags = {dict(k)["feature"]: v for k, v in _values(got["driftwatch.feature.drift.detected"]).items()}
    assert flags == {"a": 1.0, "b": 0.0}
    assert "driftwatch.prediction.drift.p_value" not in got  # prediction_drift is None
    assert "driftwatch.model.accuracy" not in got  # no labels yet
    assert list(_values(got["driftwatch.feedback.coverage"]).values()) == [0.0]

    # A newer report for another version replaces the series; performance stays.
    mon.update_drift({**REPORT, "model_version": "8", "features": REPORT["features"][:1]})
    got = _metrics(reader)
    versions = {dict(k)["model.version"] for k in _values(got["driftwatch.feature.drift.statistic"])}
    assert versions == {"8"}
    assert "driftwatch.feedback.coverage" in got
    provider.shutdown()


MULTIVARIATE: dict[str, Any] = {
    "test": "cross_moment", "statistic": 0.4, "p_value": 0.002, "threshold": 0.2,
    "effect_size": 0.18, "effect_size_kind": "rms_correlation_change", "n_features": 16, "drifted": True,
}  # fmt: skip


def test_multivariate_drift_has_its_own_gauges() -> None:
    provider, reader = _provider_and_reader()
    mon = MonitorMetrics(provider.get_meter("t"), model="m")
    mon.update_drift({**REPORT, "multivariate_drift": MULTIVARIATE})
    got = _metrics(reader)
    base = {"model": "digits-mlp", "model.version": "7", "test": "cross_moment"}
    assert _values(got["driftwatch.multivariate.drift.p_value"]) == {frozenset(base.items()): 0.002}
    assert _values(got["driftwatch.multivariate.drift.detected"]) == {frozenset(base.items()): 1.0}
    effect = {**base, "effect_size.kind": "rms_correlation_change"}
    assert _values(got["driftwatch.multivariate.drift.effect_size"]) == {frozenset(effect.items()): 0.18}
    mon.update_drift(REPORT)  # a report without the test (one numeric feature): no series
    assert "driftwatch.multivariate.drift.p_value" not in _metrics(reader)
    provider.shutdown()


def test_broken_stream_callback_does_not_break_the_others() -> None:
    provider, reader = _provider_and_reader()
    mon = MonitorMetrics(provider.get_meter("t"), model="m")

    def broken() -> dict[str, float]:
        raise ConnectionError("redis down")

    mon.set_stream_stats_callback(broken, stream="feedback")
    mon.set_stream_stats_callback(lambda: {"lag": 4, "pending": None}, stream="predictions")
    mon.processed(0)  # ignored
    got = _metrics(reader)
    lag = {dict(k)["stream"]: v for k, v in _values(got["driftwatch.stream.lag"]).items()}
    assert lag == {"predictions": 4}
    assert "driftwatch.stream.pending" not in got
    assert "driftwatch.events.processed" not in got
    provider.shutdown()


@pytest.mark.parametrize(
    ("name", "unit", "instrument", "expected"),
    [
        ("http.server.request.duration", "s", "histogram", "http_server_request_duration_seconds"),
        ("process.cpu.time", "s", "counter", "process_cpu_time_seconds_total"),
        ("process.memory.usage", "By", "updowncounter", "process_memory_usage_bytes"),
        ("process.cpu.utilization", "1", "gauge", "process_cpu_utilization_ratio"),
        ("driftwatch.predictions", "{prediction}", "counter", "driftwatch_predictions_total"),
        ("driftwatch.feature.drift.p_value", "1", "gauge", "driftwatch_feature_drift_p_value_ratio"),
        ("driftwatch.feature.drift.statistic", "", "gauge", "driftwatch_feature_drift_statistic"),
        ("driftwatch.stream.lag", "{event}", "gauge", "driftwatch_stream_lag"),
        ("x.duration.seconds", "s", "histogram", "x_duration_seconds"),
    ],
)
def test_prometheus_names(name: str, unit: str, instrument: Any, expected: str) -> None:
    assert prometheus_name(name, unit, instrument) == expected


def test_catalogue_names_are_unique_and_namespaced() -> None:
    names = [s.name for s in CATALOGUE]
    assert len(names) == len(set(names))
    for spec in CATALOGUE:
        assert spec.name.startswith(("driftwatch.", "process.", "http.")), spec.name
        assert spec.meaning.endswith("."), spec.name
        assert "prediction_id" not in spec.attributes and "prediction.id" not in spec.attributes


def test_dropped_events_are_exported_at_zero_before_the_first_drop() -> None:
    """So rate() sees the first drop, and the dashboard's panel has a series from the start."""
    provider, reader = _provider_and_reader()
    svc = ModelServiceMetrics(provider.get_meter("driftwatch"), model="m", model_version="1")
    dropped = _values(_metrics(reader)["driftwatch.events.dropped"])
    assert sorted((dict(k)["reason"], v) for k, v in dropped.items()) == [
        ("kserve_hold_full", 0), ("queue_full", 0), ("spill_full", 0)]
    svc.dropped(2, "queue_full")
    dropped = _values(_metrics(reader)["driftwatch.events.dropped"])
    assert {dict(k)["reason"]: v for k, v in dropped.items()} == {"kserve_hold_full": 0, "queue_full": 2,
                                                                  "spill_full": 0}


def test_events_of_other_models_carry_their_own_model_and_each_new_model_exports_zero_drops() -> None:
    provider, reader = _provider_and_reader()
    svc = ModelServiceMetrics(provider.get_meter("t"), model="served", model_version="1")
    svc.published(5, "predictions")
    svc.published(2, "feedback", model="logged", model_version="")
    svc.track_model("logged", "7")
    svc.missing_values("logged", "7", {"age": 3, "income": 0})
    svc.ingested("logged", "7", "predictions", accepted=4, rejected=1)
    got = _metrics(reader)

    def points(name: str) -> dict[tuple[tuple[str, object], ...], float]:
        return {tuple(sorted(p.attributes.items())): p.value for p in got[name].data.data_points}

    published = points("driftwatch.events.published")
    assert published[(("model", "served"), ("model.version", "1"), ("stream", "predictions"))] == 5
    assert published[(("model", "logged"), ("model.version", ""), ("stream", "feedback"))] == 2
    dropped = points("driftwatch.events.dropped")
    stream = ("stream", "predictions")
    assert dropped[(("model", "logged"), ("model.version", "7"), ("reason", "spill_full"), stream)] == 0
    assert dropped[(("model", "served"), ("model.version", "1"), ("reason", "queue_full"), stream)] == 0
    assert points("driftwatch.ingest.missing_values") == {
        (("feature", "age"), ("model", "logged"), ("model.version", "7")): 3
    }
    rows = points("driftwatch.ingest.rows")
    assert rows[(("model", "logged"), ("model.version", "7"), ("outcome", "accepted"), ("source", "predictions"))] == 4
    assert rows[(("model", "logged"), ("model.version", "7"), ("outcome", "rejected"), ("source", "predictions"))] == 1


def test_a_service_without_a_model_of_its_own_exports_nothing_for_a_nameless_model() -> None:
    provider, reader = _provider_and_reader()
    svc = ModelServiceMetrics(provider.get_meter("t"), model=None)
    svc.published(1, "predictions", model="logged", model_version="1")
    got = _metrics(reader)
    models = {p.attributes["model"] for m in got.values() for p in m.data.data_points if "model" in p.attributes}
    assert models == {"logged"}


def test_a_task_failure_of_a_monitor_with_no_default_model_names_no_model() -> None:
    provider, reader = _provider_and_reader()
    meter = provider.get_meter("test")
    count = TaskFailureCounter(meter, model=None)
    count("model-discovery", ValueError("redis away"))
    count.for_model("churn")("monitor-worker", ValueError("bad window"))
    points = _metrics(reader)["driftwatch.task.failures"].data.data_points
    got = {dict(p.attributes or {})["task"]: dict(p.attributes or {}).get("model") for p in points}
    assert got == {"model-discovery": None, "monitor-worker": "churn"}
