"""Turn the monitor's reports into alert snapshots.

Drift figures come from each new window report. Accuracy is read over the
last few windows of prediction time, not the window just reported: labels
arrive late, so the newest window has almost none when its drift report is
made, and a rule's ``min_samples`` would otherwise never be met. Stream lag,
and the model services' error rate and p99 latency (from the request counts
they share in Redis, over the interval since the last refresh), are
evaluated on every stats refresh, without a window (seconds-based rules).

Each model version has its own window series, numbered from 0, and so its own
alert instances: a window's snapshot names its version (label
``model_version``), and an alert of one version moves only on that version's
windows, so versions served side by side each alert on their own. Accuracy
is read from the reported version's series. The stats snapshot is about the
model's stream and service, whatever version served (``service_only``).
"""

from __future__ import annotations

import time
from urllib.parse import quote, urlencode

import numpy as np

from monitor.alerts import FeatureStats, MetricSnapshot
from monitor.alerts.service import ModelAlerts
from monitor.read_services import PerformanceReads
from monitor.reports import WindowDriftReport
from monitor.stream_health import StreamHealth
from shared.registry import STATUS_RETIRED, status_field
from shared.request_stats import ServiceHealthReader
from shared.series import SeriesOrdinals

ACCURACY_WINDOWS = 5


class AlertBridge:
    def __init__(
        self,
        alerts: ModelAlerts,
        performance: PerformanceReads,
        stream_health: StreamHealth,
        service_health: ServiceHealthReader,
        ordinals: SeriesOrdinals,
    ) -> None:
        self.alerts = alerts
        self.ordinals = ordinals
        self.performance = performance
        self.stream_health = stream_health
        self.service_health = service_health

    def report_url(self, window: int, version: str | None = None) -> str:
        """The window's report on this monitor (``DRIFTWATCH_ALERT_EXTERNAL_URL`` + path; the path alone without it).

        >>> from types import SimpleNamespace
        >>> alerts = SimpleNamespace(model="fraud", settings=SimpleNamespace(external_url="http://mon:8001/"))
        >>> AlertBridge(alerts, None, None, None, None).report_url(7, "2")
        'http://mon:8001/models/fraud/drift/windows/7?version=2'
        """
        query = f"?{urlencode({'version': version})}" if version is not None else ""
        base = f"{self.alerts.settings.external_url.rstrip('/')}/models/{quote(self.alerts.model, safe='')}"
        return f"{base}/drift/windows/{window}{query}"

    def _lag(self) -> int | None:
        return self.stream_health.lag("predictions")

    async def on_reports(self, reports: list[WindowDriftReport]) -> None:
        ordinal = {r.model_version: await self.ordinals.ordinal(r.model_version) for r in reports}
        for version in sorted(ordinal, key=ordinal.__getitem__):
            await self._evaluate([r for r in reports if r.model_version == version], version)

    async def _evaluate(self, reports: list[WindowDriftReport], version: str) -> None:
        recent = await self.performance.report(last_windows=ACCURACY_WINDOWS, version=version)
        # A regressor has no classes and takes no labels: no accuracy or label coverage to alert on
        # (its windows' confusion matrices are empty, which np.trace refuses).
        labelled_windows = recent.windows if recent and recent.classes else []
        labelled = sum(w.labelled for w in labelled_windows)
        correct = sum(int(np.trace(w.confusion_matrix)) for w in labelled_windows)
        predictions = sum(w.predictions for w in labelled_windows)
        for report in sorted(reports, key=lambda r: r.window):
            prediction = report.prediction_drift
            multivariate = report.multivariate_drift
            await self.alerts.evaluate(
                MetricSnapshot(
                    window=report.window,
                    model_version=version,
                    at=time.time(),
                    sample_count=report.window_size,
                    dataset_drift_share=report.drifted_share if report.status != "insufficient_data" else None,
                    prediction_drift_p_value=prediction.p_value if prediction else None,
                    multivariate_drift_p_value=multivariate.p_value if multivariate else None,
                    features={
                        f.name: FeatureStats(
                            p_value_adjusted=f.p_value_adjusted, effect_size=f.effect_size, drifted=f.drifted
                        )
                        for f in report.features
                    },
                    report_url=self.report_url(report.window, version),
                    accuracy=correct / labelled if labelled else None,
                    labelled_count=labelled if labelled_windows else None,
                    label_coverage=labelled / predictions if predictions else None,
                )
            )

    async def _resolve_retired(self) -> None:
        """Alerts of a version retired since (``DELETE /models/{name}/versions/{v}``) resolve: that
        version gets no more windows, so nothing else would end them."""
        versions = sorted(await self.alerts.store.alerted_versions())
        if not versions:
            return
        client, keys = self.performance.client, self.performance.keys
        statuses = await client.hmget(keys.model_info, [status_field(v) for v in versions])
        for version, status in zip(versions, statuses, strict=True):
            if status is not None and status.decode() == STATUS_RETIRED:
                await self.alerts.evaluate(MetricSnapshot(at=time.time(), model_version=version, version_retired=True))

    async def on_stats(self) -> None:
        await self._resolve_retired()
        lag = self._lag()
        health = await self.service_health.read()
        error_rate = health.error_rate if health else None
        p99 = health.latency_p99_seconds if health else None
        if lag is not None or error_rate is not None or p99 is not None:
            await self.alerts.evaluate(
                MetricSnapshot(
                    at=time.time(), service_only=True, stream_lag=lag, error_rate=error_rate, latency_p99_seconds=p99
                )
            )
