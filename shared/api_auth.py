"""Optional API-key protection for write endpoints.

When a key is configured, a request must carry it in ``X-API-Key``: missing is
401, wrong is 403. Keys are compared with ``secrets.compare_digest`` so timing
does not reveal how much of a guess was right. With no key configured the
dependency lets everything through (local use).
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader
from pydantic import SecretStr

API_KEY_HEADER = "X-API-Key"

_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="Required when the service has an API key")


def configured_key(request: Request) -> SecretStr | None:
    """The key the app was configured with (``app.state.api_key``), if any."""
    key: SecretStr | None = getattr(request.app.state, "api_key", None)
    return key


def require_api_key(
    request: Request, presented: Annotated[str | None, Depends(_header)]
) -> None:
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


WriteAccess = Annotated[None, Depends(require_api_key)]


def require_api_key_for_reads(
    request: Request, presented: Annotated[str | None, Depends(_header)]
) -> None:
    """Reads need the key too when the app was configured with ``protect_reads``."""
    if getattr(request.app.state, "protect_reads", False):
        require_api_key(request, presented)


ReadAccess = Annotated[None, Depends(require_api_key_for_reads)]
