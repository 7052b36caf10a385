"""What the web UI reads that the rest of the API does not already give compactly.

Why a reader of its own: the page refreshes every few seconds, so what it polls
must be small. ``/drift/history`` carries every feature's full statistics per
window (~16 kB per window at 64 features); the timeline here carries one
effect size per feature and window plus the drifted features' indexes, and the
per-window performance figures the timeline plots. Built once per process
(:mod:`monitor.assembly`) over the other read services, like them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field
from redis.exceptions import RedisError

from monitor.alerts.instances import AlertStatus
from monitor.alerts.store import AlertStore
from monitor.drift.report import Status
from monitor.histograms import HistogramStore, WindowHistograms
from monitor.performance_report import EstimateMethod
from monitor.read_services import PerformanceReads, ReportReads
from monitor.stream_health import StreamHealth

ModelStatus = Literal["drift", "ok", "insufficient_data", "no_windows", "error"]


class ModelSummary(BaseModel):
    """One watched model, as the overview lists it."""

    name: str
    api_base: str = Field(description="Prefix of this model's read routes ('' for the monitor's default model)")
    model_version: str | None = None
    status: ModelStatus
    error: str | None = Field(default=None, description="Why the status is 'error'")
    last_window: int | None = None
    last_window_end: datetime | None = None
    drifted_features: list[str] = []
    prediction_drift: bool | None = None
    alerts_firing: int = 0
    accuracy: float | None = Field(default=None, description="Realised, on every label received")
    estimated_accuracy: float | None = Field(
        default=None, description="Label-free estimate of the last reported window (last_window)"
    )
    estimate_unavailable: str | None = Field(
        default=None,
        description="Why windows have no label-free estimate, as /performance's estimate_unavailable for "
        "this version (the UI shows it where estimated_accuracy is null)",
    )
    lag: int | None = Field(default=None, description="Predictions on the stream not yet read by the monitor")
    window_filled: int = Field(default=0, description="Predictions in the window being filled")
    window_size: int | None = Field(default=None, description="Rows that fill a window; None for time windows")


class Overview(BaseModel):
    models: list[ModelSummary]


class TimelineWindow(BaseModel):
    window: int
    window_end: datetime
    model_version: str
    status: Status
    dataset_drift: bool
    drifted_share: float
    prediction_drift: bool | None
    prediction_p_value: float | None
    multivariate_drift: bool | None = Field(default=None, description="The numeric features' joint test, if run")
    accuracy: float | None = None
    estimated_accuracy: float | None = None
    estimated_accuracy_interval: tuple[float, float] | None = None
    estimate_method: EstimateMethod | None = Field(
        default=None, description="How estimated_accuracy was made, as /performance says (agreement, doc, doc-capped)")
    label_coverage: float | None = None
    effect_size: list[float | None] = Field(description="Per feature, in `features` order (rounded to 4 digits)")
    drifted: list[int] = Field(description="Indexes into `features` of the features that drifted")


class Timeline(BaseModel):
    model_version: str | None = Field(default=None, description="The version whose window series this is")
    features: list[str]
    effect_size_kinds: list[str] = Field(description="Per feature: what its effect size measures")
    windows: list[TimelineWindow] = Field(description="Oldest first")


def _round(value: float | None) -> float | None:
    return None if value is None else float(f"{value:.4g}")


class DashboardReads:
    """The overview, the timeline and the window histograms, for the web UI."""

    def __init__(
        self,
        model: str,
        reports: ReportReads,
        performance: PerformanceReads,
        histograms: HistogramStore,
        stream_health: StreamHealth,
        alerts: AlertStore | None,
        worker_running: Callable[[], bool],
    ) -> None:
        self.model = model
        self.reports = reports
        self.performance = performance
        self.histograms = histograms
        self.stream_health = stream_health
        self.alerts = alerts
        self.worker_running = worker_running

    async def timeline(self, limit: int, version: str | None = None) -> Timeline:
        """The newest ``limit`` reported windows of ``version``'s series (default: the current
        version's), oldest first, with their performance."""
        version = version or await self.current_version()
        reports = list(reversed(await self.reports.history(limit, version)))
        # Exactly the reported windows: the newest ``limit`` ingest windows include the one being
        # filled, which left the oldest window shown without its accuracy.
        shown = [r.window for r in reports]
        perf = await self.performance.report(limit, version, only_windows=shown) if reports else None
        performance = {w.window: w for w in perf.windows} if perf else {}
        tested = [r for r in reports if r.status != "error"]  # an error window has no features
        names = [f.name for f in tested[-1].features] if tested else []
        kinds: list[str] = [f.effect_size_kind for f in tested[-1].features] if tested else []
        windows = []
        for r in reports:
            position = {f.name: i for i, f in enumerate(r.features)}
            p = performance.get(r.window)
            pred = r.prediction_drift
            windows.append(TimelineWindow(
                window=r.window, window_end=r.window_end, model_version=r.model_version, status=r.status,
                dataset_drift=r.dataset_drift, drifted_share=r.drifted_share,
                prediction_drift=pred.drifted if pred else None, prediction_p_value=pred.p_value if pred else None,
                accuracy=p.accuracy if p else None,
                estimated_accuracy=_round(p.estimated_accuracy) if p else None,
                estimated_accuracy_interval=p.estimated_accuracy_interval if p else None,
                estimate_method=p.estimate_method if p else None,
                multivariate_drift=r.multivariate_drift.drifted if r.multivariate_drift else None,
                label_coverage=p.label_coverage if p else None,
                effect_size=[_round(r.features[position[n]].effect_size) if n in position else None for n in names],
                drifted=[i for i, n in enumerate(names) if n in r.drifted_features],
            ))
        return Timeline(model_version=version, features=names, effect_size_kinds=kinds, windows=windows)

    async def current_version(self) -> str | None:
        """The model's current version (registered last): the series the UI shows by default."""
        return await self.reports.current_version()

    async def window_histograms(self, window: int, version: str | None = None) -> WindowHistograms | None:
        return await self.histograms.read(window, version)

    async def summary(self) -> ModelSummary:
        """The overview's line for the model this monitor watches; Redis errors become status 'error'."""
        summary = ModelSummary(name=self.model, api_base="", status="error", lag=self.stream_health.lag())
        try:
            latest = await self.reports.latest()
            progress = await self.reports.progress()
            firing = sum(a.state is AlertStatus.firing for a in await self.alerts.states()) if self.alerts else 0
            # The estimate of the window the row reports (last_window), not of the one being filled:
            # a window of one prediction since (a DoC of one confidence) replaced a drifted window's
            # estimate of 0.91 with 0.997 beside its "drift" status.
            perf = await self.performance.report(1, only_windows=[latest.window] if latest else [])
        except (RedisError, OSError) as exc:
            summary.error = f"Redis unreachable: {exc}"
            return summary
        if not self.worker_running():
            summary.error = "the monitor's worker is not running"
            return summary
        summary.model_version = perf.model_version if perf else None
        summary.status = latest.status if latest else "no_windows"
        summary.alerts_firing = firing
        summary.window_filled, summary.window_size = progress.filled, progress.size
        if perf is not None:
            summary.accuracy = perf.accuracy
            summary.estimated_accuracy = perf.windows[0].estimated_accuracy if perf.windows else None
            # From the same read: the overview's blank estimate can say why at no extra round trip.
            summary.estimate_unavailable = perf.estimate_unavailable
        if latest is not None:
            summary.last_window, summary.last_window_end = latest.window, latest.window_end
            summary.drifted_features = latest.drifted_features
            summary.prediction_drift = latest.prediction_drift.drifted if latest.prediction_drift else None
        return summary
