"""Read routes the web UI polls: the models' overview, a compact timeline, window histograms."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status

from monitor import fleet_reads
from monitor.dashboard_reads import Overview, Timeline
from monitor.histograms import WindowHistograms
from monitor.read_deps import UNKNOWN_VERSION, Dashboard, FleetDep, Version
from shared.http import query_error

# Per model (mounted at the root for the default model and under /models/{model}).
router = APIRouter(tags=["dashboard"], responses={404: {"description": UNKNOWN_VERSION}})
# The whole monitor.
overview_router = APIRouter(tags=["dashboard"], responses={404: {"description": UNKNOWN_VERSION}})


@overview_router.get("/overview", response_model=Overview)
async def overview(fleet: FleetDep) -> Overview:
    """Every model this monitor watches (the default first), with its status, last window, firing
    alerts, accuracy and lag, and the prefix of its read routes (``api_base``).

    A model whose state cannot be read (Redis away) is listed with status ``error`` and the reason."""
    return await fleet_reads.overview(fleet)


@router.get("/drift/timeline", response_model=Timeline)
async def drift_timeline(
    dashboard: Dashboard, limit: Annotated[int, Query(ge=1, le=100)] = 30, version: Version = None
) -> Timeline:
    """The newest reported windows of one version's series (default: the current version's), oldest
    first: drift, effect size per feature, accuracy and coverage."""
    return await dashboard.timeline(limit, version)


@router.get(
    "/drift/histograms/{window}",
    response_model=WindowHistograms,
    responses={404: {"description": "No histograms for this window (not reported yet, or trimmed)"}},
)
async def drift_histograms(
    dashboard: Dashboard,
    window: Annotated[int, Path(ge=0)],
    feature: Annotated[list[str] | None, Query(description="Only these features (repeatable)")] = None,
    version: Version = None,
) -> WindowHistograms:
    """Reference and window counts per feature in bins fixed from the reference (bounded, see
    ``monitor.histograms``), with each feature's test from the window's report: what the UI
    overlays, never raw rows."""
    histograms = await dashboard.window_histograms(window, version)
    if histograms is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no histograms for window {window}")
    if feature:
        unknown = sorted(set(feature) - {f.name for f in histograms.features})
        if unknown:
            raise query_error("feature", f"unknown feature(s): {', '.join(unknown)}", unknown)
        histograms.features = [f for f in histograms.features if f.name in set(feature)]
    return histograms
