from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from monitor.performance_report import PerformanceReport
from monitor.read_deps import ModelName, Performance

router = APIRouter(tags=["performance"])

Version = Annotated[
    str | None,
    Query(min_length=1, max_length=200,
          description="A model version's window series; default: the model's current version (registered last)"),
]


@router.get("/performance", response_model=PerformanceReport, responses={404: {"description": "No model registered"}})
async def performance(
    reads: Performance,
    model_name: ModelName,
    windows: Annotated[int, Query(ge=1, le=100, description="How many recent windows to detail")] = 10,
    version: Version = None,
) -> PerformanceReport:
    """Realised accuracy, per-class precision/recall/F1, confusion matrix, label
    coverage and label delay, in total and per window of prediction time, with a
    label-free accuracy estimate per window for while labels are missing."""
    report = await reads.report(last_windows=windows, version=version)
    if report is None:
        what = f"version {version!r} of model" if version else "model"
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no {what} {model_name!r} registered yet")
    return report
