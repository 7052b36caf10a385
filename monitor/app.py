"""The monitor's FastAPI app factory: the HTTP API and the consumer worker in one process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from fastapi import FastAPI

from monitor.consumer import default_consumer_name
from monitor.routes import drift, health, performance
from monitor.worker import MonitorWorker
from shared.http import install_error_handlers
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
        app.state.redis = client
        app.state.worker = worker
        worker.start()
        try:
            yield
        finally:
            await worker.stop()
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
    instrument_fastapi(app, provider)
    install_error_handlers(app)
    for module in (drift, performance, health):
        app.include_router(module.router)
    return app
