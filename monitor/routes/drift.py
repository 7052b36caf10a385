from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel, Field

from monitor.read_deps import UNKNOWN_VERSION, Reports, Version
from monitor.reports import ReportPage, WindowDriftReport
from monitor.windows import WindowProgress

router = APIRouter(tags=["drift"], responses={404: {"description": UNKNOWN_VERSION}})


class NoReportYet(BaseModel):
    """No window has filled yet: too little data to test, which is not "no drift"."""

    status: Literal["insufficient_data"] = "insufficient_data"
    predictions_in_window: int
    window_size: int | None = Field(description="Rows that fill a window; None for time windows")
    reason: str = Field(default="no window has filled yet")


@router.get("/drift", response_model=WindowDriftReport | NoReportYet)
async def latest_drift(reports: Reports, version: Version = None) -> WindowDriftReport | NoReportYet:
    """The drift report of the most recent full window (of the current version's series, or ``version``'s)."""
    report = await reports.latest(version)
    if report is not None:
        return report
    progress = await reports.progress(version=version)
    return NoReportYet(predictions_in_window=progress.filled, window_size=progress.size)


@router.get("/drift/window", response_model=WindowProgress)
async def window_progress(
    reports: Reports,
    window: Annotated[int | None, Query(ge=0, description="A window's index; default: the one being filled")] = None,
    version: Version = None,
) -> WindowProgress:
    """How far a window is from its report: the one being filled, or the one asked for."""
    return await reports.progress(window, version)


@router.get("/drift/history", response_model=ReportPage)
async def drift_history(
    reports: Reports, limit: Annotated[int, Query(ge=1, le=1000)] = 20, version: Version = None
) -> ReportPage:
    """Past reports of one version's window series, newest first."""
    return ReportPage(reports=await reports.history(limit, version))


@router.get("/drift/windows/{window}", response_model=WindowDriftReport, responses={404: {"description": "No report"}})
async def window_report(
    reports: Reports, window: Annotated[int, Path(ge=0)], version: Version = None
) -> WindowDriftReport:
    """The report of one window: the link a drift alert carries (``report_url``)."""
    report = await reports.stored(window, version)
    if report is None:
        raise HTTPException(status_code=404, detail=f"no drift report for window {window} (not yet, or trimmed)")
    return report
