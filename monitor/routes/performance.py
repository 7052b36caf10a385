from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from monitor.deps import Redis, Settings, Worker
from monitor.performance import PerformanceReport, performance_report

router = APIRouter(tags=["performance"])


@router.get("/performance", response_model=PerformanceReport)
async def performance(worker: Worker, redis: Redis, settings: Settings) -> PerformanceReport:
    """Accuracy, per-class metrics and label coverage on the feedback received so far."""
    entry = await worker.catalog.latest()
    if entry is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no model {worker.keys.model!r} registered yet")
    metadata, _ = entry
    return await performance_report(redis, worker.keys, metadata.class_names, settings.window_size)
