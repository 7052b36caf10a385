"""The model service's FastAPI app factory."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING

import redis.asyncio as aioredis
from fastapi import FastAPI
from pydantic import BaseModel
from redis.exceptions import RedisError
from starlette.middleware import Middleware

from model_service.ingest_bodies import LoggedFeedbackBody, LoggedPredictionsBody
from model_service.ingest_service import IngestService
from model_service.kserve_pairing import KServePairing
from model_service.publisher import EventPublisher
from model_service.registered_models import RegisteredModels
from model_service.routes import feedback, ingest, kserve, predict, status
from model_service.schemas import FeedbackRequest, PredictRequest
from model_service.serving import ModelService
from model_service.serving_settings import ModelServiceSettings
from model_service.spill import open_spill_files
from shared.http import service_app
from shared.keys import Keys
from shared.log_context import install as install_log_context
from shared.model_metadata import LITERT_FILE, METADATA_FILE, ModelMetadata, Reference
from shared.openapi import install_openapi
from shared.probes import RedisProbe
from shared.redis_pool import redis_client
from shared.registry import ModelIdentityConflict, register_model, register_until_done
from shared.request_stats import RequestStats, RequestStatsMiddleware, flush_periodically
from shared.startup import StartupRefused
from shared.supervision import supervise
from shared.telemetry import METER_NAME, ModelServiceMetrics, setup_telemetry, shutdown_telemetry
from shared.telemetry.task_metrics import TaskFailureCounter

if TYPE_CHECKING:
    from model_service.runtime import LiteRTModel

log = logging.getLogger(__name__)

# The spill file's name when no model is served: events of every model share the one file.
INGEST_SPILL_NAME = "ingest"
# Appended to it for the KServe halves held at a shutdown while Redis was away (model_service.kserve_hold).
KSERVE_SPILL_SUFFIX = "-kserve"


async def _register_later(client: aioredis.Redis, keys: Keys, metadata: ModelMetadata, reference: Reference) -> None:
    """Registration once Redis answers; a conflict found only then is logged loudly (the
    service already serves, and the monitor dead-letters rows that do not fit)."""
    try:
        await register_until_done(client, keys, metadata, reference)
    except ModelIdentityConflict as exc:
        log.critical("model registration refused: %s", exc)


def _served_model(settings: ModelServiceSettings) -> LiteRTModel | None:
    """The model this service serves, or None when it only logs (``--ingest-only``, or no model directory).

    LiteRT is imported only here: an ingest-only service never loads it.
    """
    if settings.ingest_only or settings.model_dir is None:
        return None
    missing = [f for f in (METADATA_FILE, LITERT_FILE) if not (settings.model_dir / f).is_file()]
    if missing:
        raise StartupRefused(
            f"no model in {settings.model_dir} ({', '.join(missing)} missing): train one there with "
            f"`driftwatch train --out {settings.model_dir}`, point --model-dir at a model directory, "
            "or run with --ingest-only to log registered models only"
        )
    from model_service.runtime import LiteRTModel

    return LiteRTModel(settings.model_dir)


async def _register_served(client: aioredis.Redis, keys: Keys, model: LiteRTModel) -> asyncio.Task[None] | None:
    """Register the served model inline; if Redis is away, in a background task (returned).

    A name+version Redis holds as another model stops the start-up here, with
    both identities in the message.
    """
    reference = Reference.load(model.model_dir)
    try:
        await asyncio.wait_for(register_model(client, keys, model.metadata, reference), 2.0)
        return None
    except (RedisError, OSError, TimeoutError) as exc:
        log.warning("model registration deferred (%s); retrying in the background", exc)
        return asyncio.create_task(_register_later(client, keys, model.metadata, reference))


def create_app(settings: ModelServiceSettings | None = None) -> FastAPI:
    """The model service app; ``settings`` default to the environment's (read here, once).

    Over 60 lines because the lifespan is a closure over the settings: start-up
    (model, Redis, spill, publisher, registration, stats flush) and its
    shutdown in reverse order read best side by side.
    """
    settings = settings or ModelServiceSettings()
    install_log_context()  # a line about one registered model names it (shared/log_context.py)
    provider = setup_telemetry("driftwatch-model-service", settings)
    request_stats = RequestStats()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            model = _served_model(settings)
        except StartupRefused:
            shutdown_telemetry()  # the lifespan's own release below never runs
            raise
        if model is None:
            log.info("no model to serve: ingest only (POST /models/{name}/predictions, /feedback, /kserve); "
                     "/predict answers 404. Pass --model-dir to serve a model.")
        client = redis_client(settings, socket_timeout_s=2.0)
        registration: asyncio.Task[None] | None = None
        if model is not None:
            # Keys follow the served model's name, so one Redis can hold several models.
            try:
                registration = await _register_served(client, Keys(model.metadata.name), model)
            except ModelIdentityConflict:
                await client.aclose()
                shutdown_telemetry()  # the lifespan's own release below never runs
                raise
        meter = provider.get_meter(METER_NAME)
        served_name = model.metadata.name if model else None
        metrics = ModelServiceMetrics(meter, model=served_name, model_version=model.metadata.version if model else "")
        # Background tasks are supervised: a failure is logged, counted, shown in /readyz, restarted.
        count_failure = TaskFailureCounter(meter, model=served_name or "")
        # The spill file keeps events while Redis is away; one left by a stopped or
        # crashed process is replayed before anything this process publishes.
        spill, orphan_spills = open_spill_files(
            settings.spill_dir, served_name or INGEST_SPILL_NAME, max_bytes=settings.spill_max_bytes,
            fsync=settings.spill_fsync,
        )  # fmt: skip
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
        # Other models' events (the ingest endpoints, KServe) go through the same publisher.
        models = RegisteredModels(
            client, ttl_s=settings.registry_ttl_s, pinned=[model.metadata] if model else [],
            on_new=lambda schema: metrics.track_model(schema.name, schema.version),
        )  # fmt: skip
        app.state.ingest = IngestService(
            models, publisher, metrics, max_rows=settings.max_batch_rows, publish=settings.publish_enabled
        )
        # KServe halves held while Redis was away by a process that then stopped come back first.
        kserve_store, kserve_left = open_spill_files(
            settings.spill_dir, f"{served_name or INGEST_SPILL_NAME}{KSERVE_SPILL_SUFFIX}",
            max_bytes=settings.kserve_hold_max_bytes, fsync=settings.spill_fsync,
        )  # fmt: skip
        kserve = KServePairing(client, app.state.ingest, ttl_s=settings.kserve_pair_ttl_s,
                               hold_max_bytes=settings.kserve_hold_max_bytes, store=kserve_store, left=kserve_left)
        kserve.start()
        app.state.kserve = kserve
        app.state.publisher = publisher
        app.state.redis_probe = RedisProbe(client)
        stats_stop = asyncio.Event()
        stats_task: asyncio.Task[None] | None = None
        if model is not None:
            keys = Keys(model.metadata.name)
            app.state.service = ModelService(
                model, client, publisher, keys, metrics,
                publish=settings.publish_enabled, max_batch_rows=settings.max_batch_rows,
            )  # fmt: skip
            # Error rate and latency for the monitor's alert rules (shared/request_stats.py).
            stats_task = asyncio.create_task(supervise(
                "request-stats", partial(flush_periodically, request_stats, client, keys.service_stats, stats_stop),
                stop=stats_stop, on_failure=count_failure,
            ))
        try:
            yield
        finally:
            app.state.service = None
            app.state.ingest = app.state.kserve = None
            if registration is not None:
                registration.cancel()
                await asyncio.gather(registration, return_exceptions=True)
            stats_stop.set()
            if stats_task is not None:
                await asyncio.wait_for(stats_task, 5.0)
            await kserve.close()  # before the publisher: pairs it completes go out with the rest
            await models.close()
            await publisher.close(settings.publish_close_timeout_s)
            await client.aclose()
            shutdown_telemetry()

    app = service_app(
        title="Driftwatch model service",
        summary="Serves a classifier and streams every prediction to the monitor; logs other models' events.",
        lifespan=lifespan,
        settings=settings,
        max_body_bytes=settings.max_body_bytes,
        provider=provider,
        middleware=[Middleware(RequestStatsMiddleware, stats=request_stats)],
    )
    app.state.protect_predict = settings.protect_predict
    app.state.protect_kserve = settings.protect_kserve
    app.state.ingest_only = settings.ingest_only or settings.model_dir is None
    app.state.service = None
    app.state.ingest = app.state.kserve = None

    def body_models() -> tuple[type[BaseModel], ...]:
        """The served model's own request shapes once it is loaded (always, in a running server)."""
        service: ModelService | None = app.state.service
        served = (service.request_model, service.feedback_model) if service else (PredictRequest, FeedbackRequest)
        return (*served, LoggedPredictionsBody, LoggedFeedbackBody)

    install_openapi(app, body_models)
    for module in (predict, feedback, ingest, kserve, status):
        app.include_router(module.router)
    return app
