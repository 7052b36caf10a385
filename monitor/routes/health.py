from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response, status
from pydantic import BaseModel
from redis.exceptions import RedisError

from monitor.deps import Redis, Worker

router = APIRouter(tags=["health"])


class MonitorReadiness(BaseModel):
    ready: bool
    redis: bool
    worker_running: bool
    predictions_processed: int
    feedback_processed: int
    duplicates_ignored: int
    dead_lettered: int


@router.get("/livez")
async def livez() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", response_model=MonitorReadiness, responses={503: {"model": MonitorReadiness}})
async def readyz(worker: Worker, redis: Redis, response: Response) -> MonitorReadiness:
    try:
        redis_ok = bool(await asyncio.wait_for(redis.ping(), 0.5))
    except (TimeoutError, OSError, RedisError):
        redis_ok = False
    stats = worker.consumer.stats
    readiness = MonitorReadiness(
        ready=redis_ok and worker.running,
        redis=redis_ok,
        worker_running=worker.running,
        predictions_processed=stats.predictions,
        feedback_processed=stats.feedback,
        duplicates_ignored=stats.duplicates,
        dead_lettered=stats.dead_lettered,
    )
    if not readiness.ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return readiness
