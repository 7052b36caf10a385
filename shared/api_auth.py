"""Optional API-key protection.

When a key is configured, a guarded request must carry it in ``X-API-Key``:
missing is 401, wrong is 403. Keys are compared with ``secrets.compare_digest``
so timing does not reveal how much of a guess was right. With no key
configured every guard lets everything through (local use).

Four guards, one per kind of endpoint, each with its own switch in the app's
state (set from the settings by the app factory):

- writes (feedback, alert rules): always guarded when a key is set;
- ``/predict``: guarded when a key is set unless ``protect_predict`` is off
  (``DRIFTWATCH_PROTECT_PREDICT=false``, for an internal deployment whose
  callers cannot carry a key);
- reads: guarded only with ``protect_reads`` (``DRIFTWATCH_PROTECT_READS=true``);
- ``/kserve`` (KServe's inference logger, which cannot send a header of its
  own): guarded when a key is set unless ``protect_kserve`` is off
  (``DRIFTWATCH_PROTECT_KSERVE=false``), as ``/predict``.

Each guard reads the header through its own security scheme, so the OpenAPI
document shows which guard an operation has; ``enforced_schemes`` says which
of them check the key in an app (shared/openapi.py keeps the scheme on those
operations only, so the document never declares a check the app does not make).
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader
from pydantic import SecretStr

API_KEY_HEADER = "X-API-Key"

WRITE_SCHEME, READ_SCHEME, PREDICT_SCHEME, KSERVE_SCHEME = "WriteKey", "ReadKey", "PredictKey", "KServeKey"


def _header(scheme: str) -> APIKeyHeader:
    return APIKeyHeader(name=API_KEY_HEADER, scheme_name=scheme, auto_error=False, description="The service's API key")


def configured_key(request: Request) -> SecretStr | None:
    """The key the app was configured with (``app.state.api_key``), if any."""
    key: SecretStr | None = getattr(request.app.state, "api_key", None)
    return key


def check_api_key(request: Request, presented: str | None) -> None:
    """401 when the key is missing, 403 when wrong; nothing when no key is configured."""
    expected = configured_key(request)
    if expected is None:
        return
    if not presented:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail=f"missing {API_KEY_HEADER} header",
            headers={"WWW-Authenticate": API_KEY_HEADER},
        )
    if not secrets.compare_digest(presented.encode(), expected.get_secret_value().encode()):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"wrong {API_KEY_HEADER}")


# ``async def``: FastAPI runs a plain ``def`` dependency in its thread pool (~390 us a request here).
async def require_api_key(
    request: Request, presented: Annotated[str | None, Depends(_header(WRITE_SCHEME))]
) -> None:
    check_api_key(request, presented)


WriteAccess = Annotated[None, Depends(require_api_key)]


async def require_api_key_for_reads(
    request: Request, presented: Annotated[str | None, Depends(_header(READ_SCHEME))]
) -> None:
    """Reads need the key too when the app was configured with ``protect_reads``."""
    if getattr(request.app.state, "protect_reads", False):
        check_api_key(request, presented)


ReadAccess = Annotated[None, Depends(require_api_key_for_reads)]


async def require_api_key_for_predict(
    request: Request, presented: Annotated[str | None, Depends(_header(PREDICT_SCHEME))]
) -> None:
    """``/predict`` needs the key unless the app was configured with ``protect_predict`` off."""
    if getattr(request.app.state, "protect_predict", True):
        check_api_key(request, presented)


async def require_api_key_for_kserve(
    request: Request, presented: Annotated[str | None, Depends(_header(KSERVE_SCHEME))]
) -> None:
    """``/kserve`` needs the key unless the app was configured with ``protect_kserve`` off."""
    if getattr(request.app.state, "protect_kserve", True):
        check_api_key(request, presented)


KServeAccess = Annotated[None, Depends(require_api_key_for_kserve)]


def enforced_schemes(app_state: Any) -> frozenset[str]:
    """The guards' schemes that check the key in an app with ``app_state`` (none without a key)."""
    if getattr(app_state, "api_key", None) is None:
        return frozenset()
    schemes = {WRITE_SCHEME}
    if getattr(app_state, "protect_reads", False):
        schemes.add(READ_SCHEME)
    if getattr(app_state, "protect_predict", True):
        schemes.add(PREDICT_SCHEME)
    if getattr(app_state, "protect_kserve", True):
        schemes.add(KSERVE_SCHEME)
    return frozenset(schemes)
