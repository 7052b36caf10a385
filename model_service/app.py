"""The model service's FastAPI app factory."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import redis.asyncio as aioredis
from fastapi import FastAPI
from redis.exceptions import RedisError
from starlette.middleware import Middleware

from model_service.publisher import EventPublisher
from model_service.routes import feedback, predict, status
from model_service.runtime import LiteRTModel
from model_service.schemas import FeedbackRequest, PredictRequest
from model_service.serving import ModelService
from model_service.serving_settings import ModelServiceSettings
from model_service.spill import open_spill_files
from shared.http import service_app
from shared.keys import Keys
from shared.model_metadata import ModelMetadata, Reference
from shared.openapi import install_openapi
from shared.redis_pool import redis_client
from shared.registry import ModelIdentityConflict, register_model, register_until_done
from shared.request_stats import RequestStats, RequestStatsMiddleware, flush_periodically
from shared.supervision import supervise
from shared.telemetry import METER_NAME, ModelServiceMetrics, setup_telemetry, shutdown_telemetry
from shared.telemetry.task_metrics import TaskFailureCounter

log = logging.getLogger(__name__)


async def _register_later(client: aioredis.Redis, keys: Keys, metadata: ModelMetadata, reference: Reference) -> None:
    """Registration once Redis answers; a conflict found only then is logged loudly (the
    service already serves, and the monitor dead-letters rows that do not fit)."""
    try:
        await register_until_done(client, keys, metadata, reference)
    except ModelIdentityConflict as exc:
        log.critical("model registration refused: %s", exc)


def create_app(settings: ModelServiceSettings | None = None) -> FastAPI:
    """The model service app; ``settings`` default to the environment's (read here, once).

    Over 60 lines because the lifespan is a closure over the settings: start-up
    (model, Redis, spill, publisher, registration, stats flush) and its
    shutdown in reverse order read best side by side.
    """
    settings = settings or ModelServiceSettings()
    provider = setup_telemetry("driftwatch-model-service", settings)
    request_stats = RequestStats()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        model = LiteRTModel(settings.model_dir)
        # Keys follow the served model's name, so one Redis can hold several models.
        keys = Keys(model.metadata.name)
        client = redis_client(settings, socket_timeout_s=2.0)
        reference = Reference.load(settings.model_dir)
        try:
            # First try inline: a name+version Redis holds as another model stops the start-up
            # here, with both identities in the message. Redis away: retried in the background.
            await asyncio.wait_for(register_model(client, keys, model.metadata, reference), 2.0)
            registration: asyncio.Task[None] | None = None
        except ModelIdentityConflict:
            await client.aclose()
            shutdown_telemetry()  # the lifespan's own release below never runs
            raise
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("model registration deferred (%s); retrying in the background", exc)
            registration = asyncio.create_task(_register_later(client, keys, model.metadata, reference))
        meter = provider.get_meter(METER_NAME)
        metrics = ModelServiceMetrics(meter, model=model.metadata.name, model_version=model.metadata.version)
        # Background tasks are supervised: a failure is logged, counted, shown in /readyz, restarted.
        count_failure = TaskFailureCounter(meter, model=model.metadata.name)
        # The spill file keeps events while Redis is away; one left by a stopped or
        # crashed process is replayed before anything this process publishes.
        spill, orphan_spills = open_spill_files(
            settings.spill_dir, model.metadata.name, max_bytes=settings.spill_max_bytes, fsync=settings.spill_fsync
        )
        publisher = EventPublisher(
            client,
            metrics=metrics,
            maxlen=settings.stream_maxlen,
            batch_size=settings.publish_batch_size,
            queue_max=settings.publish_queue_max,
            high_water=settings.publish_high_water,
            spill=spill,
            orphan_spills=orphan_spills,
            dedup_ttl_s=settings.publish_dedup_ttl_s,
            linger_s=settings.publish_linger_ms / 1000,
            on_failure=count_failure,
        )
        metrics.set_queue_depth_callback(lambda: publisher.queued)
        publisher.start()
        app.state.service = ModelService(
            model, client, publisher, keys, metrics,
            publish=settings.publish_enabled, max_batch_rows=settings.max_batch_rows,
        )  # fmt: skip
        # Error rate and latency for the monitor's alert rules (shared/request_stats.py).
        stats_stop = asyncio.Event()
        stats_task = asyncio.create_task(supervise(
            "request-stats", partial(flush_periodically, request_stats, client, keys.service_stats, stats_stop),
            stop=stats_stop, on_failure=count_failure,
        ))
        try:
            yield
        finally:
            app.state.service = None
            if registration is not None:
                registration.cancel()
                await asyncio.gather(registration, return_exceptions=True)
            stats_stop.set()
            await asyncio.wait_for(stats_task, 5.0)
            await publisher.close(settings.publish_close_timeout_s)
            await client.aclose()
            shutdown_telemetry()

    app = service_app(
        title="Driftwatch model service",
        summary="Serves a classifier and streams every prediction to the monitor.",
        lifespan=lifespan,
        settings=settings,
        max_body_bytes=settings.max_body_bytes,
        provider=provider,
        middleware=[Middleware(RequestStatsMiddleware, stats=request_stats)],
    )
    app.state.protect_predict = settings.protect_predict
    app.state.service = None

    def body_models() -> tuple[type[PredictRequest], type[FeedbackRequest]]:
        """The served model's own request shapes once it is loaded (always, in a running server)."""
        service: ModelService | None = app.state.service
        return (service.request_model, service.feedback_model) if service else (PredictRequest, FeedbackRequest)

    install_openapi(app, body_models)
    for module in (predict, feedback, status):
        app.include_router(module.router)
    return app
