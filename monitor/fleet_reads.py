"""What the routes read about the whole fleet: readiness with every model, the models' overview.

``/readyz`` keeps its single-model shape for the default model (ready: Redis
answers and the default model's worker runs; with no default model: Redis
answers and model discovery runs, the counts summed over the watched models)
and adds each watched model
(``models``), the models failing now (``failing_models``: a worker not
running or failed in the last minute), and the registered models this
replica does not watch (past ``DRIFTWATCH_MAX_MODELS``). One model failing
does not make the replica unready: its reads of the other models still
serve, and restarting the replica would not mend a model's bad data.
"""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from pydantic import Field

from monitor.dashboard_reads import ModelSummary, Overview
from monitor.fleet import Fleet, ModelHealth
from monitor.read_services import MonitorReadiness


class FleetReadiness(MonitorReadiness):
    """The default model's readiness (as with one model), plus every watched model's."""

    models: dict[str, ModelHealth] = Field(default_factory=dict, description="Every watched model, the default first")
    failing_models: list[str] = Field(
        default_factory=list, description="Models whose worker is not running or failed in the last minute"
    )
    models_not_watched: list[str] = Field(
        default_factory=list, description="Registered models this replica does not watch (DRIFTWATCH_MAX_MODELS)"
    )


def api_base(fleet: Fleet, model: str) -> str:
    """Prefix of ``model``'s read routes: ``""`` for the default model (today's routes), else ``/models/<name>``."""
    return "" if model == fleet.default else f"/models/{quote(model, safe='')}"


async def readiness(fleet: Fleet) -> FleetReadiness:
    parts = fleet.default_parts
    default = await parts.health.readiness() if parts is not None else await fleet.readiness()
    return FleetReadiness(
        **default.model_dump(),
        models=fleet.health(),
        failing_models=fleet.failing(),
        models_not_watched=sorted(fleet.not_watched),
    )


async def overview(fleet: Fleet) -> Overview:
    """Every watched model's line (read concurrently), the default first."""
    names = fleet.names()
    summaries: list[ModelSummary] = list(
        await asyncio.gather(*(fleet.parts[name].dashboard.summary() for name in names))
    )
    for name, summary in zip(names, summaries, strict=True):
        summary.api_base = api_base(fleet, name)
    return Overview(models=summaries)
