from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel

from model_service.kserve_pairing import KServePairing
from model_service.publisher import EventPublisher
from model_service.schemas import ModelInfo, Readiness
from model_service.serving import ModelService
from model_service.serving_deps import Service
from shared.api_auth import ReadAccess
from shared.probes import RedisProbe

router = APIRouter(tags=["health"])


class PublisherDetail(BaseModel):
    """Where the events stand: in memory, in the spill file, in Redis, or dropped (by reason)."""

    spilling: bool
    queued: int
    spill_pending: int
    spill_bytes: int
    spilled: int
    replayed: int
    published: int
    duplicate_batches: int
    failed_writes: int
    dropped_queue_full: int
    dropped_spill_full: int
    last_error: str | None
    writer_running: bool = True
    # The writer task's last failure (it is restarted with backoff) and how many so far.
    task_error: str | None = None
    task_failures: int = 0


class KServeDetail(BaseModel):
    """KServe halves held in this process while Redis is away, and those refused for lack of room."""

    held: int
    held_bytes: int
    refused_hold_full: int
    last_error: str | None


class ReadinessDetail(Readiness):
    publisher: PublisherDetail | None = None
    kserve: KServeDetail | None = None


@router.get("/livez")
async def livez() -> dict[str, str]:
    """The process answers; says nothing about Redis or the model."""
    return {"status": "ok"}


@router.get("/readyz", response_model=ReadinessDetail, responses={503: {"model": ReadinessDetail}})
async def readyz(request: Request, response: Response) -> ReadinessDetail:
    """Ready when the model is loaded (unless the service runs ingest-only) and Redis answers.

    While Redis is away predictions are still served (events wait in the spill
    file), but the service reports not ready so an operator sees it.
    """
    state = request.app.state
    service: ModelService | None = getattr(state, "service", None)
    ingest_only = bool(getattr(state, "ingest_only", False))
    publisher: EventPublisher | None = getattr(state, "publisher", None)
    probe: RedisProbe | None = getattr(state, "redis_probe", None)
    redis_ok = probe is not None and await probe.answers()
    stats = publisher.stats if publisher else None
    kserve: KServePairing | None = getattr(state, "kserve", None)
    readiness = ReadinessDetail(
        ready=(service is not None or (ingest_only and publisher is not None)) and redis_ok,
        model_loaded=service is not None,
        ingest_only=ingest_only,
        redis=redis_ok,
        events_queued=publisher.queued if publisher else 0,
        events_published=stats.published if stats else 0,
        events_dropped=stats.dropped if stats else 0,
        publisher=None
        if publisher is None or stats is None
        else PublisherDetail(
            spilling=stats.spilling,
            queued=publisher.queued,
            spill_pending=publisher.spill_pending,
            spill_bytes=publisher.spill_bytes,
            spilled=stats.spilled,
            replayed=stats.replayed,
            published=stats.published,
            duplicate_batches=stats.duplicate_batches,
            failed_writes=stats.failed_writes,
            dropped_queue_full=stats.dropped_queue_full,
            dropped_spill_full=stats.dropped_spill_full,
            last_error=stats.last_error,
            writer_running=publisher.running,
            task_error=publisher.health.last_error,
            task_failures=publisher.health.failures,
        ),
        kserve=None
        if kserve is None
        else KServeDetail(held=kserve.held, held_bytes=kserve.held_bytes,
                          refused_hold_full=kserve.stats["hold_full"], last_error=kserve.last_error),
    )
    if not readiness.ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return readiness


@router.get("/model", response_model=ModelInfo, tags=["model"])
async def model_info(service: Service, _: ReadAccess) -> ModelInfo:
    meta = service.metadata
    return ModelInfo(
        name=meta.name,
        version=meta.version,
        feature_names=meta.feature_names,
        class_names=meta.class_names,
        test_accuracy=meta.training.test_accuracy if meta.training is not None else None,
    )
