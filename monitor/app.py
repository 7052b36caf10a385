"""The monitor's FastAPI app factory: the HTTP API, every watched model's worker and alerting in one process.

Routes: the default model's reads at the root as with one model (``/drift``,
``/performance``, ``/alerts`` ...), the same reads of every watched model under
``/models/{model}`` (:data:`monitor.read_deps.MODEL_PREFIX`), and the monitor's
own (``/overview``, ``/readyz``, the alert rules). With no default model
(``DRIFTWATCH_NO_DEFAULT_MODEL``) the root's model reads answer 404 saying why
and what to read instead; the monitor's own routes answer as usual. The registry's routes
(``GET /models``, ``/models/{name}``, ``PUT``/``DELETE`` of versions) live in
their own module; the paths here never take those.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from monitor.alerts import AlertService
from monitor.alerts.routes import read_router as alerts_read_router
from monitor.alerts.routes import router as alerts_router
from monitor.alerts.store import AlertStore
from monitor.consumer import default_consumer_name
from monitor.fleet import Fleet, no_default_model
from monitor.monitor_settings import MonitorSettings
from monitor.read_deps import MODEL_PREFIX, watched_model
from monitor.registry_reads import RegistryReader
from monitor.routes import dashboard, drift, health, models, performance
from monitor.ui import install_ui
from shared.api_auth import require_api_key_for_reads
from shared.http import service_app
from shared.openapi import install_openapi
from shared.redis_pool import redis_client
from shared.telemetry import METER_NAME, setup_telemetry, shutdown_telemetry
from shared.telemetry.recorders import MonitorInstruments
from shared.telemetry.task_metrics import TaskFailureCounter

# Read per model: at the root for the default model and under /models/{model} for each.
NOT_WATCHED = "The model is not watched by this monitor (named in the detail)"
MODEL_READ_ROUTERS = (drift.router, dashboard.router, performance.router, alerts_read_router)
# The control pool (readiness PINGs, one coalesced per model, and the alert lease): few, and never busy long.
CONTROL_CONNECTIONS = 4
# One command's round trip on the reads' pool. With Redis stalled (SIGSTOP, a frozen host) a read
# waits for a connection (DRIFTWATCH_REDIS_POOL_TIMEOUT_S, 5 s) and then for its answer: this bound
# is what keeps the 503 within 10 s. It was the blocking read's 5 s + DRIFTWATCH_READ_BLOCK_MS,
# which made reads under load answer after 11-14 s (measured: 2,000 concurrent reads, SIGSTOP).
REQUEST_TIMEOUT_S = 3.0


def install_alert_sources(app: FastAPI, fleet: Fleet, alerts: AlertService) -> None:
    """What the alert routes need from the fleet: each model's store, its features, known names."""

    async def store_for(model: str) -> AlertStore | None:
        return alerts.store_for(model) if await fleet.lookup(model) is not None else None

    async def feature_names(model: str | None) -> Sequence[str] | None:
        names = [model] if model is not None else fleet.names()
        found: list[str] = []
        for name in names:
            parts = await fleet.lookup(name)
            metadata = await parts.catalog.latest_metadata() if parts is not None else None
            found += metadata.feature_names if metadata is not None else []
        return found or None

    async def model_known(model: str) -> bool:
        return model == fleet.default or model in await fleet.registered()

    app.state.alert_store = alerts.store if fleet.default is not None else None
    app.state.alert_rules_store = alerts.store  # rules are shared: with no default model, the rules' own store
    app.state.no_default_model = (lambda: no_default_model(fleet)) if fleet.default is None else None
    app.state.alert_store_for = store_for
    app.state.alert_feature_names = feature_names
    app.state.alert_model_known = model_known


def create_app(settings: MonitorSettings | None = None, consumer_name: str | None = None) -> FastAPI:
    """The monitor app; ``settings`` default to the environment's (read here, once)."""
    settings = settings or MonitorSettings()
    name = consumer_name or settings.consumer_name or default_consumer_name()
    provider = setup_telemetry("driftwatch-monitor", settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Longer than the workers' blocking read (DRIFTWATCH_READ_BLOCK_MS), which holds its connection.
        timeout_s = 5.0 + settings.read_block_ms / 1000
        # The reads', reports' and alerts' pool runs no blocking command (the consumers' reads have
        # their own pool, below), so a stalled Redis fails its commands sooner.
        client = redis_client(settings, socket_timeout_s=REQUEST_TIMEOUT_S)
        # The consumers' blocking reads, ingest scripts and acks on a pool of their own (monitor/fleet.py).
        streams = redis_client(
            settings.model_copy(update={"redis_max_connections": settings.stream_max_connections}),
            socket_timeout_s=timeout_s,
        )
        # The readiness PINGs and the alert leader's lease on a small pool of their own: a burst of
        # reads that holds every request connection must not read as "Redis down" (every replica
        # out of service at its busiest) nor make the leader miss its renewals.
        control = redis_client(
            settings.model_copy(update={"redis_max_connections": CONTROL_CONNECTIONS}), socket_timeout_s=5.0
        )
        meter = provider.get_meter(METER_NAME)
        instruments = MonitorInstruments(meter, max_models=settings.metrics_max_models)
        # Every background task here is supervised: a failure is logged, counted, shown in /readyz, restarted.
        count_failure = TaskFailureCounter(meter, model=settings.default_model)
        alerts = AlertService(client, settings.alerts, default_model=settings.default_model,
                              on_failure=count_failure, lease_redis=control)
        if settings.alerts_enabled:
            await alerts.start()
        fleet = Fleet(
            client, settings, name, stream_client=streams, control_client=control, instruments=instruments,
            alerts=alerts if settings.alerts_enabled else None, count_failure=count_failure,
        )
        app.state.fleet = fleet
        app.state.redis = client
        app.state.registry = RegistryReader(client)
        install_alert_sources(app, fleet, alerts)
        await fleet.start()
        try:
            yield
        finally:
            await fleet.stop()
            if settings.alerts_enabled:
                await alerts.stop()
            await client.aclose()
            await streams.aclose()
            await control.aclose()
            shutdown_telemetry()

    app = service_app(
        title="Driftwatch monitor",
        summary="Drift, performance and alerts for every registered model.",
        lifespan=lifespan,
        settings=settings,
        max_body_bytes=settings.max_body_bytes,
        provider=provider,
        larger_bodies=models.larger_bodies(settings),
    )
    install_ui(app)
    app.include_router(health.router)
    app.include_router(models.router)  # its routes name their own guards (reads and writes differ)
    reads = [Depends(require_api_key_for_reads)]
    for router in (drift.router, dashboard.router, dashboard.overview_router, performance.router, alerts_router):
        app.include_router(router, dependencies=reads)
    for router in MODEL_READ_ROUTERS:
        app.include_router(router, prefix=MODEL_PREFIX, dependencies=[*reads, Depends(watched_model)],
                           responses={404: {"description": NOT_WATCHED}})
    install_openapi(app, body_models=models.body_models)
    return app
