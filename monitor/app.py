"""The monitor's FastAPI app factory: the HTTP API, the consumer worker and alerting in one process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from fastapi import Depends, FastAPI

from monitor.alert_bridge import AlertBridge
from monitor.alerts import AlertService, AlertSettings, alerts_router
from monitor.calibrations import CalibrationCatalog
from monitor.consumer import default_consumer_name
from monitor.routes import drift, health, performance
from monitor.worker import MonitorWorker
from shared.api_auth import require_api_key_for_reads
from shared.http import BodySizeLimitMiddleware, install_error_handlers
from shared.keys import Keys
from shared.settings import MonitorSettings
from shared.telemetry import METER_NAME, MonitorMetrics, instrument_fastapi, setup_telemetry, shutdown_telemetry


def create_app(settings: MonitorSettings | None = None, consumer_name: str | None = None) -> FastAPI:
    settings = settings or MonitorSettings()
    provider = setup_telemetry("driftwatch-monitor")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = aioredis.Redis.from_url(settings.redis_url, socket_timeout=5.0, socket_connect_timeout=2.0)
        metrics = MonitorMetrics(provider.get_meter(METER_NAME), model=settings.model_name)
        worker = MonitorWorker(client, settings, consumer_name or default_consumer_name(), metrics)
        alerts = AlertService.create(client, Keys(settings.model_name), AlertSettings())
        if settings.alerts_enabled:
            bridge = AlertBridge(alerts, worker)
            worker.on_reports = bridge.on_reports
            worker.on_stats = bridge.on_stats
            await alerts.start()
        app.state.redis = client
        app.state.worker = worker
        app.state.alert_store = alerts.store
        app.state.calibrations = CalibrationCatalog(client, worker.keys)
        worker.start()
        try:
            yield
        finally:
            await worker.stop()
            if settings.alerts_enabled:
                await alerts.stop()
            await client.aclose()
            shutdown_telemetry()

    app = FastAPI(
        title="Driftwatch monitor",
        version="0.1.0",
        summary="Drift, performance and alerts for a served model.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.api_key = settings.api_key
    app.state.protect_reads = settings.protect_reads
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    instrument_fastapi(app, provider)
    install_error_handlers(app)
    app.include_router(health.router)
    for router in (drift.router, performance.router, alerts_router):
        app.include_router(router, dependencies=[Depends(require_api_key_for_reads)])
    return app
