"""Feeds the monitor's OpenTelemetry instruments from what the worker learns.

Drift gauges after each new report, and after each stats refresh from the
newest stored report whichever replica made it; processed counts and the
performance gauges after each stats refresh; stream lag, pending and DLQ length through
observable callbacks that read :class:`StreamHealth`'s cache (the exporter
calls them from its own thread, so they must not touch Redis).
"""

from __future__ import annotations

from functools import partial

from monitor.consumer import ConsumerStats
from monitor.read_services import PerformanceReads, ReportReads
from monitor.reports import WindowDriftReport
from monitor.stream_health import StreamHealth
from shared.telemetry import MonitorMetrics


class MetricFeed:
    def __init__(
        self,
        metrics: MonitorMetrics,
        consumer_stats: ConsumerStats,
        stream_health: StreamHealth,
        performance: PerformanceReads,
        reports: ReportReads,
    ) -> None:
        self.metrics = metrics
        self.consumer_stats = consumer_stats
        self.performance = performance
        self.reports = reports
        self._reported_counts = {"predictions": 0, "feedback": 0}
        # Per model version: the newest window whose report the drift gauges show.
        self._exported_window: dict[str, int] = {}
        for stream in ("predictions", "feedback"):
            metrics.set_stream_stats_callback(partial(stream_health.stream_stats, stream), stream=stream)
        metrics.set_dlq_length_callback(stream_health.dlq_length)

    async def on_reports(self, reports: list[WindowDriftReport]) -> None:
        for report in sorted(reports, key=lambda r: r.window):
            self._export_drift(report)

    def _export_drift(self, report: WindowDriftReport) -> None:
        """Each version has its own window series (numbered from 0): newer is per version."""
        if report.status == "error":  # a window that could not be tested has no values to show
            return
        if report.window <= self._exported_window.get(report.model_version, -1):
            return
        self.metrics.update_drift(report.model_dump(mode="json"), model_version=report.model_version)
        self._exported_window[report.model_version] = report.window

    async def _export_newest_report(self) -> None:
        """Show the newest report whichever replica made it.

        A window's report is made by the replica that closed it; without this,
        another replica keeps exporting the last report it made itself (a drift
        long over), and ``max by (model)`` over replicas, as the alert rules
        take it, never resolves.
        """
        version = await self.reports.current_version()
        if version is None:
            return
        newest = await self.reports.newest_window(version)
        if newest is not None and newest > self._exported_window.get(version, -1):
            report = await self.reports.stored(newest, version)
            if report is not None:
                self._export_drift(report)

    async def on_stats(self) -> None:
        await self._export_newest_report()
        stats = self.consumer_stats
        for name, total in (("predictions", stats.predictions), ("feedback", stats.feedback)):
            self.metrics.processed(total - self._reported_counts[name], stream=name)
            self._reported_counts[name] = total
        # Only the totals are exported, read alone (not the whole report: see performance_totals).
        perf = await self.performance.totals()
        if perf is not None:
            self.metrics.update_performance(
                perf.accuracy, perf.label_coverage, perf.labelled, model_version=perf.model_version
            )
