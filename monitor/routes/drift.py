from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from monitor.read_deps import Redis, Settings, Worker
from monitor.reports import ReportPage, WindowDriftReport

router = APIRouter(tags=["drift"])


class NoReportYet(BaseModel):
    """No window has filled yet: too little data to test, which is not "no drift"."""

    status: Literal["insufficient_data"] = "insufficient_data"
    predictions_in_window: int
    window_size: int
    reason: str = Field(default="no window has filled yet")


@router.get("/drift", response_model=WindowDriftReport | NoReportYet)
async def latest_drift(worker: Worker, redis: Redis, settings: Settings) -> WindowDriftReport | NoReportYet:
    """The drift report of the most recent full window."""
    report = await worker.reporter.latest()
    if report is not None:
        return report
    ingested = int(await redis.get(worker.keys.ingested) or 0)
    return NoReportYet(predictions_in_window=ingested % settings.window_size, window_size=settings.window_size)


class WindowProgress(BaseModel):
    window: int = Field(description="Index of the window being filled")
    filled: int
    size: int


@router.get("/drift/window", response_model=WindowProgress)
async def current_window(worker: Worker, redis: Redis, settings: Settings) -> WindowProgress:
    """How far the current window is from its report."""
    ingested = int(await redis.get(worker.keys.ingested) or 0)
    return WindowProgress(
        window=ingested // settings.window_size, filled=ingested % settings.window_size, size=settings.window_size
    )


@router.get("/drift/history", response_model=ReportPage)
async def drift_history(worker: Worker, limit: Annotated[int, Query(ge=1, le=1000)] = 20) -> ReportPage:
    """Past reports, newest first."""
    return ReportPage(reports=await worker.reporter.history(limit))
