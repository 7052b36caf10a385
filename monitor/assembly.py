"""Builds one monitor process's parts from its settings, each with its collaborators passed in.

The only place that knows how the parts fit together: the app's lifespan
calls :func:`assemble_monitor` once, routes get the read services through
:mod:`monitor.read_deps`, and tests assemble a monitor the same way.
Construction order follows the arrows: consumer stats and stream health
first (readers of both exist before the consumer), then the report
listeners (metrics, alerts), then the consumer and the worker.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from monitor.alert_bridge import AlertBridge
from monitor.alerts import AlertService
from monitor.calibrations import CalibrationCatalog
from monitor.consumer import ConsumerStats, StreamConsumer
from monitor.dashboard_reads import DashboardReads
from monitor.histograms import HistogramStore
from monitor.metric_feed import MetricFeed
from monitor.monitor_settings import MonitorSettings
from monitor.read_services import HealthReads, PerformanceReads, ReportReads
from monitor.reports import DriftReporter, ModelCatalog, ReferencePolicy, drift_config
from monitor.stream_health import StreamHealth
from monitor.window_state import WindowState
from monitor.windows import WindowIndex, WindowPolicy
from monitor.worker import MonitorWorker, ReportDispatch, ReportsListener, StatsListener
from shared.keys import Keys
from shared.log_context import bound_model, install
from shared.request_stats import ServiceHealthReader
from shared.series import SeriesOrdinals
from shared.supervision import TaskSupervisor
from shared.telemetry import MonitorMetrics


@dataclass(frozen=True, slots=True)
class MonitorParts:
    """What one monitor process holds: the worker and what the routes read."""

    keys: Keys
    catalog: ModelCatalog
    reporter: DriftReporter
    window_index: WindowIndex
    consumer: StreamConsumer
    stream_health: StreamHealth
    worker: MonitorWorker
    reports: ReportReads
    performance: PerformanceReads
    health: HealthReads
    dashboard: DashboardReads

    def start(self) -> None:
        """Start the worker's loops with the model bound to the log context: their tasks copy it,
        so every line they log names the model (:mod:`shared.log_context`)."""
        install()
        with bound_model(self.keys.model):
            self.worker.start()

    async def stop(self) -> None:
        with bound_model(self.keys.model):
            await self.worker.stop()


def assemble_monitor(
    client: aioredis.Redis,
    settings: MonitorSettings,
    consumer_name: str,
    *,
    metrics: MonitorMetrics | None = None,
    alerts: AlertService | None = None,
    stats_interval_s: float = 5.0,
    supervisor: TaskSupervisor | None = None,
    stream_client: aioredis.Redis | None = None,
    probe_client: aioredis.Redis | None = None,
) -> MonitorParts:
    """The monitor's parts over ``client``; ``alerts`` (started by the caller) gets every report;
    ``supervisor`` runs the worker's loops (restarts them when they raise); ``stream_client``
    (default ``client``) carries the consumer's blocking reads, its ingest scripts and acks, so
    a monitor watching many models keeps them off the pool the HTTP reads use (monitor/fleet.py);
    ``probe_client`` (default ``client``) carries the readiness PING, on a pool the reads do not
    use, so a burst of reads that takes every pooled connection is not reported as Redis down.

    Over 60 lines because it is the composition root: one constructor call per
    part, in dependency order, read top to bottom; it holds no logic.
    """
    keys = Keys(settings.model_name)
    ordinals = SeriesOrdinals(client, keys)  # one cache of the version ordinals for the whole process
    catalog = ModelCatalog(client, keys, drift_config(settings), ReferencePolicy.from_settings(settings))
    windows = WindowPolicy.from_settings(settings)
    window_index = WindowIndex(client, keys, windows)
    reporter = DriftReporter(
        client, keys, catalog, settings.history_max, windows, time_grace_ms=int(settings.window_grace_s * 1000),
        ordinals=ordinals,
    )
    stats = ConsumerStats()
    stream_health = StreamHealth(
        client, keys, stats, stream_maxlen=settings.stream_maxlen, lag_warn_ratio=settings.lag_warn_ratio
    )
    performance = PerformanceReads(
        client, keys, catalog, CalibrationCatalog(client, keys), window_index, retention_s=settings.join_retention_s,
    )
    reports = ReportReads(client, keys, window_index)
    report_listeners: list[ReportsListener] = []
    stats_listeners: list[StatsListener] = []
    if metrics is not None:
        feed = MetricFeed(metrics, stats, stream_health, performance, reports)
        report_listeners.append(feed.on_reports)
        stats_listeners.append(feed.on_stats)
    if alerts is not None:
        bridge = AlertBridge(
            alerts.for_model(keys.model), performance, stream_health, ServiceHealthReader(client, keys.service_stats),
            ordinals,
        )
        report_listeners.append(bridge.on_reports)
        stats_listeners.append(bridge.on_stats)
    dispatch = ReportDispatch(reporter, report_listeners)
    streams = stream_client or client
    state = WindowState(streams, keys, windows, settings.join_retention_s, settings.join_shards, ordinals,
                        label_join=catalog.label_join)
    consumer = StreamConsumer(
        streams,
        keys,
        state,
        consumer=consumer_name,
        read_count=settings.read_count,
        block_ms=settings.read_block_ms,
        claim_idle_ms=settings.claim_idle_ms,
        max_deliveries=settings.max_deliveries,
        stats=stats,
        on_windows_closed=dispatch.on_windows_closed,
        expected_features=catalog.n_features,
        linger_ms=settings.read_linger_ms,
        slow_linger_ms=settings.read_linger_slow_ms,
    )
    worker = MonitorWorker(
        consumer, dispatch, stream_health,
        timed_windows=windows.timed, stats_listeners=stats_listeners, stats_interval_s=stats_interval_s,
        supervisor=supervisor,
    )
    return MonitorParts(
        keys=keys,
        catalog=catalog,
        reporter=reporter,
        window_index=window_index,
        consumer=consumer,
        stream_health=stream_health,
        worker=worker,
        reports=reports,
        performance=performance,
        health=HealthReads(
            probe_client or client, stats, stream_health, lambda: worker.running,
            supervisors=[worker.supervisor, *([alerts.tasks] if alerts is not None else [])],
        ),
        dashboard=DashboardReads(
            keys.model, reports, performance, HistogramStore(client, keys), stream_health,
            alerts.store_for(keys.model) if alerts is not None else None, lambda: worker.running,
        ),
    )
