"""Annotated dependencies of the monitor's routes: the read services and the settings.

As in FastAPI's full-stack template (``SessionDep = Annotated[Session,
Depends(get_db)]``): a route names what it reads in its signature, e.g.
``async def drift(reports: Reports)``. The services are built per watched
model (:mod:`monitor.fleet`) and kept on ``app.state.fleet``. The same route
serves the default model at its own path (``/drift``) and any watched model
under ``/models/{model}`` (``/models/{model}/drift``): the dependencies read
the model from the path, and a model not watched is a 404 that names it (as is
the root path of a monitor with no default model, saying what to use). The
dependencies are ``async def``: FastAPI runs a plain ``def`` dependency in its
thread pool.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Path, Query, Request, status

from monitor.assembly import MonitorParts
from monitor.dashboard_reads import DashboardReads
from monitor.fleet import Fleet, no_default_model, watched_names
from monitor.monitor_settings import MonitorSettings
from monitor.read_services import HealthReads, PerformanceReads, ReportReads

MODEL_PREFIX = "/models/{model}"
"""Where each watched model's read routes are mounted (the default model's are also at the root)."""

UNKNOWN_VERSION = "A version the model never registered (named in the detail)"
Version = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=200,
        description="A model version's window series; default: the model's current version (registered last)",
    ),
]


def get_fleet(request: Request) -> Fleet:
    fleet: Fleet = request.app.state.fleet
    return fleet


async def _parts(request: Request) -> MonitorParts:
    """The model of the path (``/models/{model}/...``), or the default model."""
    fleet = get_fleet(request)
    model = request.path_params.get("model")
    if model is None:
        default = fleet.default_parts
        if default is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=no_default_model(fleet))
        return default
    parts = await fleet.lookup(model)
    if parts is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            detail=f"model {model!r} is not watched by this monitor (not registered, every version retired, or not"
            f" in DRIFTWATCH_MODELS or past DRIFTWATCH_MAX_MODELS); watched: {watched_names(fleet)}",
        )
    return parts


async def watched_model(
    request: Request, model: Annotated[str, Path(description="A watched model's name", max_length=256)]
) -> str:
    """The dependency of every route under :data:`MODEL_PREFIX`: a model not watched is a 404 before anything runs."""
    await _parts(request)
    return model


async def _registered_version(request: Request, version: str | None) -> MonitorParts:
    """The path's model, and 404 naming ``version`` if the model never registered it: without
    this the drift reads answered a version that does not exist as one with no window yet
    (200, ``insufficient_data``), where ``/performance`` says 404."""
    parts = await _parts(request)
    if version is not None and await parts.catalog.metadata(version) is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=f"no version {version!r} of model {parts.keys.model!r} registered"
        )
    return parts


async def get_reports(request: Request, version: Version = None) -> ReportReads:
    return (await _registered_version(request, version)).reports


async def get_performance(request: Request) -> PerformanceReads:
    return (await _parts(request)).performance


async def get_health(request: Request) -> HealthReads:
    return (await _parts(request)).health


async def get_dashboard(request: Request, version: Version = None) -> DashboardReads:
    return (await _registered_version(request, version)).dashboard


async def get_model_name(request: Request) -> str:
    """The name of the model a route reads (the path's, or the default's)."""
    return (await _parts(request)).keys.model


async def get_settings(request: Request) -> MonitorSettings:
    settings: MonitorSettings = request.app.state.settings
    return settings


Reports = Annotated[ReportReads, Depends(get_reports)]
Performance = Annotated[PerformanceReads, Depends(get_performance)]
Health = Annotated[HealthReads, Depends(get_health)]
Dashboard = Annotated[DashboardReads, Depends(get_dashboard)]
ModelName = Annotated[str, Depends(get_model_name)]
Settings = Annotated[MonitorSettings, Depends(get_settings)]
FleetDep = Annotated[Fleet, Depends(get_fleet)]
