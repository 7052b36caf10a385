from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from monitor.performance_report import PerformanceReport
from monitor.read_deps import Performance, Settings

router = APIRouter(tags=["performance"])


@router.get("/performance", response_model=PerformanceReport, responses={404: {"description": "No model registered"}})
async def performance(
    reads: Performance,
    settings: Settings,
    windows: Annotated[int, Query(ge=1, le=100, description="How many recent windows to detail")] = 10,
) -> PerformanceReport:
    """Realised accuracy, per-class precision/recall/F1, confusion matrix, label
    coverage and label delay, in total and per window of prediction time, with a
    label-free accuracy estimate per window for while labels are missing."""
    report = await reads.report(last_windows=windows)
    if report is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no model {settings.model_name!r} registered yet")
    return report
