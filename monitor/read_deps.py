"""Annotated dependencies of the monitor's routes: the read services and the settings.

As in FastAPI's full-stack template (``SessionDep = Annotated[Session,
Depends(get_db)]``): a route names what it reads in its signature, e.g.
``async def drift(reports: Reports)``. The services are built once in the
app's lifespan (:func:`monitor.assembly.assemble_monitor`) and kept on
``app.state.monitor``. The dependencies are ``async def``: FastAPI runs a
plain ``def`` dependency in its thread pool.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from monitor.dashboard_reads import DashboardReads
from monitor.monitor_settings import MonitorSettings
from monitor.read_services import HealthReads, PerformanceReads, ReportReads

if TYPE_CHECKING:
    from monitor.assembly import MonitorParts


def _parts(request: Request) -> MonitorParts:
    parts: MonitorParts = request.app.state.monitor
    return parts


async def get_reports(request: Request) -> ReportReads:
    return _parts(request).reports


async def get_performance(request: Request) -> PerformanceReads:
    return _parts(request).performance


async def get_health(request: Request) -> HealthReads:
    return _parts(request).health


async def get_dashboard(request: Request) -> DashboardReads:
    return _parts(request).dashboard


async def get_settings(request: Request) -> MonitorSettings:
    settings: MonitorSettings = request.app.state.settings
    return settings


Reports = Annotated[ReportReads, Depends(get_reports)]
Performance = Annotated[PerformanceReads, Depends(get_performance)]
Health = Annotated[HealthReads, Depends(get_health)]
Dashboard = Annotated[DashboardReads, Depends(get_dashboard)]
Settings = Annotated[MonitorSettings, Depends(get_settings)]
