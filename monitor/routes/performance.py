from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from monitor.deps import Redis, Settings, Worker
from monitor.performance import PerformanceReport, performance_report
from shared.registry import read_current_version

router = APIRouter(tags=["performance"])


@router.get("/performance", response_model=PerformanceReport)
async def performance(worker: Worker, redis: Redis, settings: Settings) -> PerformanceReport:
    """Accuracy, per-class metrics and label coverage on the feedback received so far."""
    version = await read_current_version(redis, worker.keys)
    entry = await worker.catalog.get(version) if version else None
    if entry is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no model {worker.keys.model!r} registered yet")
    metadata, _ = entry
    return await performance_report(redis, worker.keys, metadata.class_names, settings.window_size)
