"""The monitor's FastAPI app factory: the HTTP API, the consumer worker and alerting in one process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from monitor.alerts import AlertService, alerts_router
from monitor.assembly import assemble_monitor
from monitor.consumer import default_consumer_name
from monitor.monitor_settings import MonitorSettings
from monitor.routes import dashboard, drift, health, models, performance
from monitor.ui import install_ui
from shared.api_auth import require_api_key_for_reads
from shared.http import service_app
from shared.keys import Keys
from shared.openapi import install_openapi
from shared.redis_pool import redis_client
from shared.supervision import TaskSupervisor
from shared.telemetry import METER_NAME, MonitorMetrics, setup_telemetry, shutdown_telemetry
from shared.telemetry.task_metrics import TaskFailureCounter


def create_app(settings: MonitorSettings | None = None, consumer_name: str | None = None) -> FastAPI:
    """The monitor app; ``settings`` default to the environment's (read here, once)."""
    settings = settings or MonitorSettings()
    name = consumer_name or settings.consumer_name or default_consumer_name()
    provider = setup_telemetry("driftwatch-monitor", settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Longer than the worker's blocking read (DRIFTWATCH_READ_BLOCK_MS), which holds its connection.
        client = redis_client(settings, socket_timeout_s=5.0 + settings.read_block_ms / 1000)
        meter = provider.get_meter(METER_NAME)
        metrics = MonitorMetrics(meter, model=settings.model_name)
        # Every background task here is supervised: a failure is logged, counted, shown in /readyz, restarted.
        count_failure = TaskFailureCounter(meter, model=settings.model_name)
        alerts = AlertService.create(client, Keys(settings.model_name), settings.alerts, on_failure=count_failure)
        if settings.alerts_enabled:
            await alerts.start()
        parts = assemble_monitor(
            client, settings, name, metrics=metrics, alerts=alerts if settings.alerts_enabled else None,
            supervisor=TaskSupervisor(on_failure=count_failure),
        )
        app.state.monitor = parts
        app.state.redis = client
        app.state.alert_store = alerts.store
        parts.start()

        async def feature_names() -> list[str] | None:
            metadata = await parts.catalog.latest_metadata()
            return metadata.feature_names if metadata is not None else None

        app.state.alert_feature_names = feature_names
        try:
            yield
        finally:
            await parts.stop()
            if settings.alerts_enabled:
                await alerts.stop()
            await client.aclose()
            shutdown_telemetry()

    app = service_app(
        title="Driftwatch monitor",
        summary="Drift, performance and alerts for a served model.",
        lifespan=lifespan,
        settings=settings,
        max_body_bytes=settings.max_body_bytes,
        provider=provider,
        larger_bodies=models.larger_bodies(settings),
    )
    install_ui(app)
    app.include_router(health.router)
    app.include_router(models.router)  # its routes name their own guards (reads and writes differ)
    for router in (drift.router, dashboard.router, performance.router, alerts_router):
        app.include_router(router, dependencies=[Depends(require_api_key_for_reads)])
    install_openapi(app)
    return app
