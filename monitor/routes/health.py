from __future__ import annotations

from fastapi import APIRouter, Response, status
from pydantic import BaseModel

from monitor.read_deps import Redis, Worker
from shared.probes import redis_answers

router = APIRouter(tags=["health"])


class MonitorReadiness(BaseModel):
    ready: bool
    redis: bool
    worker_running: bool
    predictions_processed: int
    feedback_processed: int
    duplicates_ignored: int
    dead_lettered: int
    failed_deliveries: int = 0
    claimed: int = 0
    trimmed_unprocessed: int = 0
    # Refreshed every few seconds by the worker (XINFO GROUPS, XLEN of the DLQ).
    streams: dict[str, dict[str, int | None]] = {}
    dlq_length: int | None = None
    events_per_second: float | None = None
    lag_near_cap: bool = False
    lag_warn_threshold: int | None = None


@router.get("/livez")
async def livez() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", response_model=MonitorReadiness, responses={503: {"model": MonitorReadiness}})
async def readyz(worker: Worker, redis: Redis, response: Response) -> MonitorReadiness:
    """Ready when Redis answers and the worker runs; the detail shows lag, pending,
    DLQ length and events/s, and flags lag near the stream cap (events trimmed unseen)."""
    redis_ok = await redis_answers(redis)
    stats = worker.consumer.stats
    readiness = MonitorReadiness(
        ready=redis_ok and worker.running,
        redis=redis_ok,
        worker_running=worker.running,
        predictions_processed=stats.predictions,
        feedback_processed=stats.feedback,
        duplicates_ignored=stats.duplicates,
        dead_lettered=stats.dead_lettered,
        failed_deliveries=stats.failed,
        claimed=stats.claimed,
        trimmed_unprocessed=stats.trimmed,
        **worker.health,
    )
    if not readiness.ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return readiness
