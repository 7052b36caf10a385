from __future__ import annotations

from fastapi import APIRouter, Response, status

from monitor.read_deps import Health
from monitor.read_services import MonitorReadiness

router = APIRouter(tags=["health"])


@router.get("/livez")
async def livez() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", response_model=MonitorReadiness, responses={503: {"model": MonitorReadiness}})
async def readyz(health: Health, response: Response) -> MonitorReadiness:
    """Ready when Redis answers and the worker runs; the detail shows lag, pending,
    DLQ length and events/s, and flags lag near the stream cap (events trimmed unseen)."""
    readiness = await health.readiness()
    if not readiness.ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return readiness
