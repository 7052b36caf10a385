from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status

from monitor.calibrations import CalibrationCatalog
from monitor.performance_report import PerformanceReport, performance_report
from monitor.read_deps import Redis, Settings, Worker

router = APIRouter(tags=["performance"])


@router.get("/performance", response_model=PerformanceReport, responses={404: {"description": "No model registered"}})
async def performance(
    request: Request,
    worker: Worker,
    redis: Redis,
    settings: Settings,
    windows: Annotated[int, Query(ge=1, le=100, description="How many recent windows to detail")] = 10,
) -> PerformanceReport:
    """Realised accuracy, per-class precision/recall/F1, confusion matrix, label
    coverage and label delay, in total and per window of prediction time, with a
    label-free accuracy estimate per window for while labels are missing."""
    metadata = await worker.catalog.latest_metadata()
    if metadata is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no model {worker.keys.model!r} registered yet")
    calibrations: CalibrationCatalog = request.app.state.calibrations
    return await performance_report(
        redis,
        worker.keys,
        metadata.class_names,
        worker.window_index,
        last_windows=windows,
        calibration=await calibrations.get(metadata.version),
        model_version=metadata.version,
        retention_s=settings.join_retention_s,
    )
