"""Driftwatch: what users run and import (the ``driftwatch`` command, the trainer, the client).

Nothing here is imported by the services; this package may import them. It
imports nothing at package level, so ``import driftwatch.cli`` stays light and
TensorFlow loads only inside ``driftwatch train`` (the ``train`` extra).
``from driftwatch import Client`` loads the client (numpy, httpx, orjson) on
first use, never TensorFlow, FastAPI or uvicorn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from driftwatch.client import Client, ClientStats

__all__ = ["Client", "ClientStats"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from driftwatch import client

        return getattr(client, name)
    raise AttributeError(f"module 'driftwatch' has no attribute {name!r}")
