"""The alert state machine: rules + previous states + a snapshot -> new states + transitions.

Pure and deterministic (the clock is the snapshot's ``at``), so the store can
run it inside an optimistic Redis transaction and retry it freely, and tests
can say exactly at which window or second an alert fires.

The machine follows Prometheus' ``AlertingRule.Eval``:

- condition holds, no instance: a new instance, ``pending`` (or ``firing`` at
  once when ``for`` is absent or already met);
- ``pending`` and ``for`` met: ``firing``. ``for={"windows": n}`` fires on the
  n-th consecutive evaluated window on which the condition held;
  ``for={"seconds": s}`` fires on the first evaluation at least ``s`` after
  ``active_at``;
- ``pending`` and condition clears: gone (``pending -> inactive``);
- ``firing`` and condition clears: ``resolved``, unless ``keep_firing_for``
  holds it: ``{"windows": n}`` survives n clear windows and resolves on the
  (n+1)-th, ``{"seconds": s}`` resolves on the first clear evaluation at least
  ``s`` after the condition first cleared; a holding evaluation resets it;
- ``resolved`` stays visible until the condition holds again (a new episode,
  same fingerprint) or ``resolved_retention_s`` has passed.

Idempotence: an instance only moves on a snapshot newer than the last one it
saw (a higher window index; by ``at`` when either has no window). Evaluating
the same window twice, on one replica or two, changes nothing the second time.

Scope: a model's versions each have their own window series (window numbers
restart at 0), so a snapshot of a version's window (``model_version`` set)
evaluates only the window rules, on instances labelled with that version
(``model_version``); the periodic snapshot of the service (``service_only``)
evaluates only the service rules (lag, error rate, latency), on instances
without a version. Instances outside a snapshot's scope are left as they are.
A retired version (``version_retired``) has no rule left: its instances are
orphans, so a firing one resolves and a pending one ends; ``version_retired``
without a version does the same to the instances without one (a model no
longer watched: every version retired, or removed).

Unknown metrics (``None``, too few samples) leave an instance as it is: no
data is neither good nor bad news. Rules counting windows skip snapshots
without a window. An instance whose rule was deleted or whose labels changed
is an orphan: resolved if firing, dropped if pending.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from monitor.alerts.instances import AlertInstance, AlertStatus, Transition, fingerprint
from monitor.alerts.rules import FEATURE_METRICS, MODEL_VERSION_LABEL, SERVICE_METRICS, AlertRule, Duration
from monitor.alerts.snapshot import MetricSnapshot

DEFAULT_RESOLVED_RETENTION_S = 15 * 60.0
_TEMPLATE = re.compile(
    r"\{\{\s*\$(value|drifted_features|report_url|labels\.([A-Za-z_][A-Za-z0-9_]*))\s*\}\}"
)


@dataclass(slots=True)
class Evaluation:
    """The outcome of one evaluation: every instance after it and what changed."""

    states: dict[str, AlertInstance]
    transitions: list[Transition] = field(default_factory=list)

    def changes(self, before: Mapping[str, AlertInstance]) -> tuple[dict[str, AlertInstance], set[str]]:
        """Instances to write and fingerprints to delete, relative to ``before``."""
        written = {fp: inst for fp, inst in self.states.items() if before.get(fp) != inst}
        return written, set(before) - set(self.states)


def render(
    template: str, value: float | None, labels: Mapping[str, str], context: Mapping[str, str] | None = None
) -> str:
    """Expand ``{{ $value }}``, ``{{ $labels.<name> }}`` and the snapshot's ``context``
    (``$drifted_features``, ``$report_url``); unknown names become empty."""

    def expand(match: re.Match[str]) -> str:
        if match.group(2) is not None:
            return labels.get(match.group(2), "")
        if match.group(1) != "value":
            return (context or {}).get(match.group(1), "")
        return "" if value is None else f"{value:.4g}"

    return _TEMPLATE.sub(expand, template)


def instance_labels(rule: AlertRule, feature: str | None, extra: Mapping[str, str]) -> dict[str, str]:
    """The identifying labels of one instance: extra (e.g. model) + rule labels + alertname + feature."""
    labels = {**extra, **rule.labels, "alertname": rule.name}
    if rule.metric in FEATURE_METRICS and feature is not None:
        labels["feature"] = feature
    return labels


def _counts_windows(rule: AlertRule) -> bool:
    return any(d is not None and d.windows is not None for d in (rule.for_, rule.keep_firing_for))


def _is_newer(snapshot: MetricSnapshot, prev: AlertInstance) -> bool:
    if snapshot.window is not None and prev.last_window is not None:
        return snapshot.window > prev.last_window
    return snapshot.at > prev.last_at


def _held_long_enough(hold: Duration | None, count: int, since: float, at: float) -> bool:
    if hold is None:
        return True
    if hold.windows is not None:
        return count >= hold.windows
    return at - since >= (hold.seconds or 0.0)


def _features_of(rule: AlertRule, snapshot: MetricSnapshot, states: Iterable[AlertInstance]) -> Sequence[str | None]:
    if rule.metric not in FEATURE_METRICS:
        return [None]
    if not rule.per_feature:
        return [rule.feature]
    # Features the snapshot reports, plus those with an instance already: a feature
    # missing from this window is unknown, and its instance must be kept as is.
    names = set(snapshot.features)
    names.update(s.labels["feature"] for s in states if s.rule == rule.name and "feature" in s.labels)
    return sorted(names)


class _Step:
    """Moves one instance by one evaluation; collects the transitions it makes."""

    def __init__(self, snapshot: MetricSnapshot, transitions: list[Transition]) -> None:
        self.snapshot = snapshot
        self.at = snapshot.at
        self.window = snapshot.window
        self.transitions = transitions
        self.context = snapshot.template_context()

    def _record(self, before: AlertStatus, after: AlertInstance) -> None:
        self.transitions.append(Transition.of(before, after, self.window, self.at))

    def holding(
        self, rule: AlertRule, prev: AlertInstance | None, labels: dict[str, str], value: float
    ) -> AlertInstance:
        annotations = {k: render(v, value, labels, self.context) for k, v in rule.annotations.items()}
        if prev is None or prev.state is AlertStatus.resolved:
            inst = AlertInstance(
                fingerprint=fingerprint(labels),
                rule=rule.name,
                state=AlertStatus.pending,
                labels=labels,
                annotations=annotations,
                value=value,
                active_at=self.at,
                last_window=self.window,
                last_at=self.at,
                hold_count=1,
            )
            before = AlertStatus.inactive
        else:
            update = {"last_window": self.window, "last_at": self.at, "value": value, "annotations": annotations}
            inst = prev.model_copy(
                update={**update, "hold_count": prev.hold_count + 1, "clear_count": 0, "keep_firing_since": None}
            )
            before = prev.state
        if inst.state is AlertStatus.pending and _held_long_enough(rule.for_, inst.hold_count, inst.active_at, self.at):
            inst = inst.model_copy(update={"state": AlertStatus.firing, "starts_at": self.at})
        if inst.state is not before:
            self._record(before, inst)
        return inst

    def clear(self, rule: AlertRule | None, prev: AlertInstance | None) -> AlertInstance | None:
        if prev is None or prev.state is AlertStatus.resolved:
            return prev
        seen = {"last_window": self.window, "last_at": self.at, "hold_count": 0}
        if prev.state is AlertStatus.pending:
            self._record(AlertStatus.pending, prev.model_copy(update={**seen, "state": AlertStatus.inactive}))
            return None
        keep = rule.keep_firing_for if rule is not None else None
        if keep is not None:
            since = prev.keep_firing_since if prev.keep_firing_since is not None else self.at
            cleared = prev.clear_count + 1
            still = cleared <= keep.windows if keep.windows is not None else self.at - since < (keep.seconds or 0.0)
            if still:
                return prev.model_copy(update={**seen, "clear_count": cleared, "keep_firing_since": since})
        resolved = prev.model_copy(update={**seen, "state": AlertStatus.resolved, "ends_at": self.at})
        self._record(AlertStatus.firing, resolved)
        return resolved


def evaluate(
    rules: Iterable[AlertRule],
    states: Mapping[str, AlertInstance],
    snapshot: MetricSnapshot,
    *,
    extra_labels: Mapping[str, str] | None = None,
    resolved_retention_s: float = DEFAULT_RESOLVED_RETENTION_S,
) -> Evaluation:
    """Apply every rule to ``snapshot``; see the module docstring for the state machine and scopes."""
    extra = dict(extra_labels or {})
    if snapshot.version_retired:
        rules = []  # every instance of the snapshot's scope is an orphan
    elif snapshot.model_version is not None:
        extra[MODEL_VERSION_LABEL] = snapshot.model_version
        rules = [r for r in rules if r.metric not in SERVICE_METRICS]
    elif snapshot.service_only:
        rules = [r for r in rules if r.metric in SERVICE_METRICS]
    out: dict[str, AlertInstance] = dict(states)
    states = {fp: s for fp, s in states.items() if s.labels.get(MODEL_VERSION_LABEL) == snapshot.model_version}
    transitions: list[Transition] = []
    step = _Step(snapshot, transitions)
    visited: set[str] = set()

    for rule in rules:
        skip_all = _counts_windows(rule) and snapshot.window is None
        for feature in _features_of(rule, snapshot, states.values()):
            labels = instance_labels(rule, feature, extra)
            fp = fingerprint(labels)
            visited.add(fp)
            prev = states.get(fp)
            if skip_all or (prev is not None and not _is_newer(snapshot, prev)):
                continue
            value = snapshot.observe(rule, feature)
            if value is None:
                continue
            inst = step.holding(rule, prev, labels, value) if rule.holds(value) else step.clear(rule, prev)
            if inst is None:
                out.pop(fp, None)
            else:
                out[fp] = inst

    for fp, prev in states.items():
        if fp not in visited:  # orphan: its rule is gone or now makes other labels
            inst = step.clear(None, prev)
            if inst is None:
                out.pop(fp, None)
            else:
                out[fp] = inst

    for fp, inst in list(out.items()):
        expired = inst.ends_at is not None and snapshot.at - inst.ends_at > resolved_retention_s
        if inst.state is AlertStatus.resolved and expired:
            del out[fp]

    return Evaluation(states=out, transitions=transitions)
