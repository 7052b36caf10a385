from __future__ import annotations

from fastapi import APIRouter, Response, status

from monitor.fleet_reads import FleetReadiness, readiness
from monitor.read_deps import FleetDep

router = APIRouter(tags=["health"])


@router.get("/livez")
async def livez() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", response_model=FleetReadiness, responses={503: {"model": FleetReadiness}})
async def readyz(fleet: FleetDep, response: Response) -> FleetReadiness:
    """Ready when Redis answers and the default model's worker runs; the detail shows lag, pending,
    DLQ length and events/s, flags lag near the stream cap (events trimmed unseen), and lists every
    watched model's worker (``models``) and those failing now (``failing_models``)."""
    ready = await readiness(fleet)
    if not ready.ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return ready
