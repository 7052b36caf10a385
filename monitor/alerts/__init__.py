"""Alerting for Driftwatch: threshold rules on the monitor's metrics, Prometheus-style.

Modules, one job each:

- ``rules``: ``AlertRule`` (validated, with ``for``/``keep_firing_for``) and ``default_rules()``.
- ``snapshot``: ``MetricSnapshot``, what the monitor hands over after each window report.
- ``state``: ``AlertInstance`` and ``Transition``, with label fingerprints.
- ``evaluator``: the pure state machine (inactive/pending/firing/resolved).
- ``store``: ``AlertStore``, Redis persistence and the transactional evaluation.
- ``lease``, ``payloads``, ``notifier``: who sends, what is sent, sending with retries.
- ``service``: ``AlertService``, what the monitor app holds (evaluate, start, stop).
- ``routes``: the ``/alerts`` API router.

Wiring in the monitor app::

    from monitor.alerts import AlertService, MetricSnapshot, alerts_router

    alerts = AlertService.create(redis_client, Keys(model), settings.alerts)  # MonitorSettings.alerts
    app.state.alert_store = alerts.store
    app.include_router(alerts_router)
    await alerts.start()          # on startup: default rules (first run only), notifier task
    await alerts.evaluate(MetricSnapshot(window=w, at=time.time(), ...))  # after each report
    await alerts.stop()           # on shutdown
"""

from monitor.alerts.instances import AlertInstance, AlertStatus, Transition
from monitor.alerts.routes import router as alerts_router
from monitor.alerts.rules import AlertRule, Duration, Metric, default_rules
from monitor.alerts.service import AlertService
from monitor.alerts.snapshot import FeatureStats, MetricSnapshot
from monitor.alerts.store import AlertStore

__all__ = [
    "AlertInstance",
    "AlertRule",
    "AlertService",
    "AlertStatus",
    "AlertStore",
    "Duration",
    "FeatureStats",
    "Metric",
    "MetricSnapshot",
    "Transition",
    "alerts_router",
    "default_rules",
]
