"""The web UI: a static page at ``/`` and its assets under ``/ui/``, shipped in the package.

Everything the page loads comes from this package (no CDN, no web fonts), so it
works offline and behind a firewall; its Content-Security-Policy says so to
the browser too. The page reads the JSON API with ``fetch`` and polls it;
read protection is the API's own (``DRIFTWATCH_PROTECT_READS``): the page and
its assets hold no data, and the page sends the key a user types in as
``X-API-Key`` (kept in ``sessionStorage``, so it is gone with the tab).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from starlette.middleware.gzip import GZipMiddleware
from starlette.staticfiles import StaticFiles

from monitor.ui.conditional import ConditionalGetMiddleware

STATIC_DIR = Path(__file__).parent / "static"

# Only this origin: a page that tried to load anything from elsewhere would be refused by the browser.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)

router = APIRouter(include_in_schema=False)


@router.get("/")
async def index() -> FileResponse:
    return FileResponse(
        STATIC_DIR / "index.html",
        headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY, "Cache-Control": "no-cache"},
    )


def install_ui(app: FastAPI) -> None:
    """Serve the page at ``/``, its assets (gzipped) at ``/ui/``, and ETags on JSON reads."""
    app.add_middleware(ConditionalGetMiddleware)
    app.include_router(router)
    app.mount("/ui", GZipMiddleware(StaticFiles(directory=STATIC_DIR), minimum_size=512), name="ui")
