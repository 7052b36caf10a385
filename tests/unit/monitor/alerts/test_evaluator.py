"""The alert state machine: exact transitions, and the window or second they happen at."""

from __future__ import annotations

from typing import Any

from monitor.alerts.evaluator import Evaluation, evaluate, render
from monitor.alerts.instances import AlertInstance, AlertStatus, fingerprint
from monitor.alerts.rules import AlertRule, default_rules
from monitor.alerts.snapshot import FeatureStats, MetricSnapshot

S = AlertStatus


def rule(**kw: Any) -> AlertRule:
    base: dict[str, Any] = {"name": "Drift", "metric": "dataset_drift_share", "op": ">", "value": 0.2}
    return AlertRule.model_validate({**base, **kw})


def snap(window: int | None, share: float | None = None, at: float | None = None, **kw: Any) -> MetricSnapshot:
    return MetricSnapshot(
        window=window, at=at if at is not None else 1000.0 + 60 * (window or 0), dataset_drift_share=share, **kw
    )


class Run:
    """Feeds snapshots through the evaluator like the store would, keeping states between calls."""

    def __init__(self, *rules: AlertRule, **opts: Any) -> None:
        self.rules = list(rules)
        self.states: dict[str, AlertInstance] = {}
        self.opts = opts

    def __call__(self, snapshot: MetricSnapshot) -> list[tuple[S, S]]:
        result: Evaluation = evaluate(self.rules, self.states, snapshot, **self.opts)
        self.states = result.states
        return [(t.from_state, t.to_state) for t in result.transitions]

    def only(self) -> AlertInstance:
        assert len(self.states) == 1, self.states
        return next(iter(self.states.values()))


def test_for_windows_fires_on_the_nth_consecutive_window_and_resolves_when_clear() -> None:
    run = Run(rule(**{"for": {"windows": 2}}))
    assert run(snap(0, 0.1)) == []
    assert run.states == {}
    assert run(snap(1, 0.3)) == [(S.inactive, S.pending)]
    assert run.only().active_at == snap(1).at
    assert run(snap(2, 0.3)) == [(S.pending, S.firing)]
    inst = run.only()
    assert inst.starts_at == snap(2).at and inst.value == 0.3
    assert run(snap(3, 0.5)) == []
    assert run.only().value == 0.5
    assert run(snap(4, 0.1)) == [(S.firing, S.resolved)]
    inst = run.only()
    assert inst.state is S.resolved and inst.ends_at == snap(4).at
    assert inst.value == 0.5  # the last value that held, as Prometheus keeps it


def test_pending_that_clears_goes_back_to_inactive() -> None:
    run = Run(rule(**{"for": {"windows": 3}}))
    assert run(snap(0, 0.3)) == [(S.inactive, S.pending)]
    assert run(snap(1, 0.3)) == []
    assert run(snap(2, 0.1)) == [(S.pending, S.inactive)]
    assert run.states == {}
    # The count starts over: two more holding windows are not enough.
    assert run(snap(3, 0.3)) == [(S.inactive, S.pending)]
    assert run(snap(4, 0.3)) == []
    assert run(snap(5, 0.3)) == [(S.pending, S.firing)]


def test_no_for_and_for_one_window_fire_at_once() -> None:
    for r in (rule(), rule(**{"for": {"windows": 1}}), rule(**{"for": {"seconds": 0}})):
        run = Run(r)
        assert run(snap(0, 0.3)) == [(S.inactive, S.firing)]
        assert run.only().starts_at == run.only().active_at == snap(0).at


def test_for_seconds_uses_active_at() -> None:
    run = Run(rule(**{"for": {"seconds": 300}}))
    assert run(snap(None, 0.3, at=1000)) == [(S.inactive, S.pending)]
    assert run(snap(None, 0.3, at=1299)) == []
    assert run(snap(None, 0.3, at=1300)) == [(S.pending, S.firing)]
    assert run.only().active_at == 1000 and run.only().starts_at == 1300


def test_same_window_again_changes_nothing() -> None:
    run = Run(rule(**{"for": {"windows": 2}}))
    assert run(snap(7, 0.3)) == [(S.inactive, S.pending)]
    before = dict(run.states)
    # Another replica (or a retry) evaluates window 7 again, even with a later clock.
    assert run(snap(7, 0.3, at=5000)) == []
    assert run.states == before
    assert run(snap(6, 0.3)) == []  # an older window is stale
    assert run(snap(8, 0.3)) == [(S.pending, S.firing)]
    assert run(snap(8, 0.3)) == []
    assert run(snap(9, 0.0)) == [(S.firing, S.resolved)]
    assert run(snap(9, 0.0)) == []


def test_keep_firing_for_windows_survives_n_clear_windows() -> None:
    run = Run(rule(keep_firing_for={"windows": 2}))
    assert run(snap(0, 0.3)) == [(S.inactive, S.firing)]
    assert run(snap(1, 0.1)) == []
    assert run(snap(2, 0.1)) == []
    assert run.only().state is S.firing
    assert run(snap(3, 0.1)) == [(S.firing, S.resolved)]
    assert run.only().ends_at == snap(3).at


def test_keep_firing_resets_when_condition_holds_again() -> None:
    run = Run(rule(keep_firing_for={"windows": 1}))
    run(snap(0, 0.3))
    assert run(snap(1, 0.1)) == []
    assert run(snap(2, 0.3)) == []  # holds again: the clear count starts over
    assert run.only().clear_count == 0
    assert run(snap(3, 0.1)) == []
    assert run(snap(4, 0.1)) == [(S.firing, S.resolved)]


def test_keep_firing_for_seconds() -> None:
    run = Run(rule(keep_firing_for={"seconds": 120}))
    run(snap(None, 0.3, at=0))
    assert run(snap(None, 0.1, at=100)) == []  # cleared at 100
    assert run(snap(None, 0.1, at=219)) == []
    assert run(snap(None, 0.1, at=220)) == [(S.firing, S.resolved)]


def test_unknown_metric_keeps_state_and_does_not_count() -> None:
    run = Run(rule(**{"for": {"windows": 2}}))
    assert run(snap(0, 0.3)) == [(S.inactive, S.pending)]
    assert run(snap(1, None)) == []
    assert run.only().state is S.pending and run.only().hold_count == 1
    assert run(snap(2, 0.3)) == [(S.pending, S.firing)]
    assert run(snap(3, None)) == []
    assert run.only().state is S.firing


def test_min_samples_not_met_means_not_evaluated() -> None:
    acc = AlertRule.model_validate(
        {"name": "LowAccuracy", "metric": "accuracy", "op": "<", "value": 0.8, "min_samples": 100}
    )
    run = Run(acc)
    assert run(MetricSnapshot(window=0, at=0, accuracy=0.1, labelled_count=99)) == []
    assert run(MetricSnapshot(window=1, at=1, accuracy=0.1)) == []  # count unknown
    assert run(MetricSnapshot(window=2, at=2, accuracy=0.1, labelled_count=100)) == [(S.inactive, S.firing)]
    # Fewer labels again: the firing alert is left alone, not resolved.
    assert run(MetricSnapshot(window=3, at=3, accuracy=0.95, labelled_count=5)) == []
    assert run.only().state is S.firing
    assert run(MetricSnapshot(window=4, at=4, accuracy=0.95, labelled_count=500)) == [(S.firing, S.resolved)]


def test_min_samples_on_drift_metric_uses_sample_count() -> None:
    run = Run(rule(min_samples=500))
    assert run(snap(0, 0.9, sample_count=499)) == []
    assert run(snap(1, 0.9, sample_count=500)) == [(S.inactive, S.firing)]


def feature_snap(window: int, **p: float) -> MetricSnapshot:
    return MetricSnapshot(
        window=window, at=float(window), features={k: FeatureStats(p_value_adjusted=v) for k, v in p.items()}
    )


def test_any_feature_rule_makes_one_instance_per_feature() -> None:
    r = AlertRule.model_validate(
        {
            "name": "FeatureDrift",
            "metric": "feature_p_value_adjusted",
            "feature": "*",
            "op": "<",
            "value": 0.01,
            "for": {"windows": 2},
            "labels": {"severity": "warning"},
            "annotations": {"summary": "{{ $labels.feature }} p={{ $value }}"},
        }
    )
    run = Run(r, extra_labels={"model": "digits"})
    assert run(feature_snap(0, a=0.001, b=0.5)) == [(S.inactive, S.pending)]
    (inst,) = run.states.values()
    assert inst.labels == {"model": "digits", "severity": "warning", "alertname": "FeatureDrift", "feature": "a"}
    assert inst.fingerprint == fingerprint(inst.labels)
    assert inst.annotations == {"summary": "a p=0.001"}
    assert run(feature_snap(1, a=0.001, b=0.001)) == [(S.pending, S.firing), (S.inactive, S.pending)]
    by_feature = {i.labels["feature"]: i.state for i in run.states.values()}
    assert by_feature == {"a": S.firing, "b": S.pending}
    # Feature "a" missing from the next window: unknown, so it stays firing.
    assert run(feature_snap(2, b=0.001)) == [(S.pending, S.firing)]
    assert {i.labels["feature"]: i.state for i in run.states.values()} == {"a": S.firing, "b": S.firing}
    assert run(feature_snap(3, a=0.9, b=0.9)) == [(S.firing, S.resolved), (S.firing, S.resolved)]


def test_specific_feature_rule_watches_only_that_feature() -> None:
    r = AlertRule.model_validate(
        {"name": "F", "metric": "feature_effect_size", "feature": "b", "op": ">", "value": 0.2}
    )
    run = Run(r)
    s = MetricSnapshot(
        window=0, at=0, features={"a": FeatureStats(effect_size=0.9), "b": FeatureStats(effect_size=0.1)}
    )
    assert run(s) == []
    s = MetricSnapshot(window=1, at=1, features={"b": FeatureStats(effect_size=0.3)})
    assert run(s) == [(S.inactive, S.firing)]
    assert run.only().labels["feature"] == "b"


def test_resolved_is_kept_for_retention_then_dropped_and_replaced_by_a_new_episode() -> None:
    run = Run(rule(), resolved_retention_s=600)
    run(snap(0, 0.3, at=0))
    assert run(snap(1, 0.1, at=100)) == [(S.firing, S.resolved)]
    assert run(snap(2, 0.1, at=700)) == []
    assert run.only().state is S.resolved
    assert run(snap(3, 0.1, at=701)) == []
    assert run.states == {}
    # A new episode after a resolution re-uses the fingerprint with fresh times.
    run(snap(4, 0.3, at=800))
    run(snap(5, 0.1, at=900))
    assert run(snap(6, 0.3, at=1000)) == [(S.inactive, S.firing)]
    inst = run.only()
    assert inst.active_at == inst.starts_at == 1000 and inst.ends_at is None


def test_deleted_rule_resolves_its_firing_alert_and_drops_pending() -> None:
    firing, pending = rule(name="A"), rule(name="B", **{"for": {"windows": 5}})
    run = Run(firing, pending)
    assert run(snap(0, 0.3)) == [(S.inactive, S.firing), (S.inactive, S.pending)]
    run.rules = []
    assert sorted(run(snap(1, 0.3))) == sorted([(S.firing, S.resolved), (S.pending, S.inactive)])
    assert [i.state for i in run.states.values()] == [S.resolved]
    assert run(snap(2, 0.3)) == []


def test_changed_labels_orphan_the_old_instance() -> None:
    run = Run(rule(labels={"severity": "warning"}))
    run(snap(0, 0.3))
    run.rules = [rule(labels={"severity": "critical"})]
    transitions = run(snap(1, 0.3))
    assert sorted(transitions) == sorted([(S.inactive, S.firing), (S.firing, S.resolved)])


def test_windows_rule_skips_windowless_snapshots() -> None:
    run = Run(rule(**{"for": {"windows": 2}}))
    assert run(snap(None, 0.3, at=5)) == []
    assert run.states == {}


def test_comparison_operators_and_nan() -> None:
    cases = {">": (0.3, 0.2), ">=": (0.2, 0.1), "<": (0.1, 0.2), "<=": (0.2, 0.3), "==": (0.2, 0.3), "!=": (0.3, 0.2)}
    for op, (yes, no) in cases.items():
        r = rule(op=op, value=0.2)
        assert r.holds(yes) and not r.holds(no), op
        assert not r.holds(float("nan"))


def test_transitions_carry_what_notifications_need() -> None:
    run = Run(rule(labels={"severity": "warning"}, annotations={"summary": "share {{ $value }}"}))
    result = evaluate(run.rules, {}, snap(3, 0.25))
    (t,) = result.transitions
    assert t.alertname == "Drift" and t.window == 3 and t.at == snap(3).at
    assert t.labels == {"severity": "warning", "alertname": "Drift"}
    assert t.annotations == {"summary": "share 0.25"}
    assert t.starts_at == t.at and t.ends_at is None and t.notifies


def test_render_templates() -> None:
    labels = {"feature": "px"}
    assert render("{{ $labels.feature }}={{$value}} {{ $labels.nope }}", 0.123456, labels) == "px=0.1235 "
    assert render("{{ $value }}", None, labels) == ""
    context = {"drifted_features": "px (0.4)", "report_url": "/drift/windows/3"}
    assert render("{{ $drifted_features }} at {{$report_url}}", 1.0, labels, context) == "px (0.4) at /drift/windows/3"
    assert render("{{ $report_url }}", 1.0, labels) == ""


def test_one_dataset_alert_names_the_drifted_features_and_its_report() -> None:
    """The default DatasetDrift rule: one instance per model whatever the number of drifted features."""
    dataset = next(r for r in default_rules() if r.name == "DatasetDrift")
    features = {f"px{i}": {"p_value_adjusted": 1e-6, "effect_size": 1.0 + i, "drifted": True} for i in range(40)}
    states: dict[str, AlertInstance] = {}
    for window in (1, 2):
        snapshot = MetricSnapshot.model_validate(
            {"window": window, "at": 100.0 * window, "dataset_drift_share": 40 / 64, "features": features,
             "report_url": f"http://monitor:8001/drift/windows/{window}"}
        )  # fmt: skip
        result = evaluate([dataset], states, snapshot, extra_labels={"model": "digits"})
        states = result.states
    (inst,) = states.values()
    assert inst.state is AlertStatus.firing
    assert inst.labels == {"model": "digits", "severity": "warning", "alertname": "DatasetDrift"}
    assert inst.annotations["drifted_features"].startswith("px39 (40), px38 (39)")
    assert inst.annotations["report_url"] == "http://monitor:8001/drift/windows/2"
    assert inst.annotations["summary"] == "Dataset drift on digits: 0.625 of features drifted"


def test_evaluation_is_deterministic() -> None:
    rules = [rule(name=f"R{i}", value=0.1 * i) for i in range(5)]
    a = evaluate(rules, {}, snap(1, 0.35))
    b = evaluate(rules, {}, snap(1, 0.35))
    assert a.states == b.states and a.transitions == b.transitions


def test_each_version_has_its_own_instances_and_windows() -> None:
    """Window numbers restart per version: v2's window 0 after v1's window 7 is not "old", and
    a canary (v1 and v2 reporting in turn) keeps one instance per version, each on its own windows."""
    run = Run(rule(), extra_labels={"model": "fraud"})
    assert run(snap(7, 0.3, model_version="1")) == [(S.inactive, S.firing)]
    assert run(snap(0, 0.3, model_version="2")) == [(S.inactive, S.firing)]
    assert run(snap(8, 0.1, model_version="1")) == [(S.firing, S.resolved)]
    assert run(snap(1, 0.3, model_version="2")) == []  # v2 still firing, untouched by v1's clear window
    by_version = {s.labels["model_version"]: s for s in run.states.values()}
    assert {v: s.state for v, s in by_version.items()} == {"1": S.resolved, "2": S.firing}
    assert by_version["2"].labels == {"model": "fraud", "model_version": "2", "alertname": "Drift"}
    assert run(snap(0, 0.1, model_version="1")) == []  # an older window of v1: stale, nothing moves


def test_service_rules_are_per_model_and_window_rules_per_version() -> None:
    lag = rule(name="Lag", metric="stream_lag", op=">", value=10)
    run = Run(rule(), lag, extra_labels={"model": "fraud"})
    # A version's window carries no lag (and lag rules are not evaluated on it) ...
    assert run(snap(1, 0.3, model_version="1", stream_lag=50)) == [(S.inactive, S.firing)]
    assert [s.rule for s in run.states.values()] == ["Drift"]
    # ... the service snapshot evaluates lag alone, without a version label.
    assert run(snap(None, 0.0, at=5_000, stream_lag=50, service_only=True)) == [(S.inactive, S.firing)]
    lag_instance = next(s for s in run.states.values() if s.rule == "Lag")
    assert lag_instance.labels == {"model": "fraud", "alertname": "Lag"}
    assert next(s for s in run.states.values() if s.rule == "Drift").state is S.firing


def test_a_retired_version_resolves_its_alerts_only() -> None:
    pending = rule(name="Slow", **{"for": {"windows": 3}})
    run = Run(rule(), pending, extra_labels={"model": "fraud"})
    run(snap(1, 0.3, model_version="1"))
    run(snap(1, 0.3, model_version="2"))
    retired = run(MetricSnapshot(at=9_000.0, model_version="1", version_retired=True))
    assert sorted(retired) == [(S.firing, S.resolved), (S.pending, S.inactive)]
    assert {(s.labels["model_version"], s.rule, s.state) for s in run.states.values()} == {
        ("1", "Drift", S.resolved), ("2", "Drift", S.firing), ("2", "Slow", S.pending)}


def test_retired_without_a_version_resolves_the_service_alerts_only() -> None:
    """A model no longer watched: its service instances (no version label) become orphans; the
    versions' own are ended by their own retired snapshots."""
    lag = rule(name="Lag", metric="stream_lag", op=">", value=10)
    run = Run(rule(), lag, extra_labels={"model": "fraud"})
    run(snap(1, 0.3, model_version="1"))
    run(snap(None, 0.0, at=5_000, stream_lag=50, service_only=True))
    assert run(MetricSnapshot(at=9_000.0, version_retired=True)) == [(S.firing, S.resolved)]
    assert {(s.rule, s.state) for s in run.states.values()} == {("Drift", S.firing), ("Lag", S.resolved)}
