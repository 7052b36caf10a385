"""``http.server.request.duration`` recorded by one lean ASGI middleware.

Why not ``opentelemetry-instrumentation-fastapi``: on the model service's
``/predict`` it cost ~110 us of CPU per request (the request itself, LiteRT
included, costs ~15 us): a no-op server span and its context, the route found
by re-matching every route, request attributes collected from the headers,
three histograms and an up-down counter, each record hashing its attributes
again. The dashboards and alert rules use one of those instruments. This
middleware records that one with the same name, unit, buckets and attributes
(new semantic conventions, ``OTEL_SEMCONV_STABILITY_OPT_IN=http``) and pays one
``Histogram.record`` per request with an attribute dict built once per
(method, route, status).

Attributes: ``http.request.method`` (``_OTHER`` for unknown methods),
``url.scheme``, ``network.protocol.version``, ``http.response.status_code``,
``http.route`` (the route template, when a route matched) and ``error.type``
(the exception's class name, or the status code, for 5xx). Excluded URLs are
regular expressions searched in the request path (comma-separated, as in
``OTEL_PYTHON_FASTAPI_EXCLUDED_URLS``).
"""

from __future__ import annotations

import re
import time
from typing import Any, Final

from opentelemetry.metrics import Histogram, Meter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HTTP_SERVER_REQUEST_DURATION: Final = "http.server.request.duration"
DURATION_BUCKETS: Final[tuple[float, ...]] = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip
"""The semantic conventions' advice, as the OpenTelemetry instrumentation uses."""

_KNOWN_METHODS: Final = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY", "TRACE"}
)
_MAX_CACHED = 4_096  # attribute dicts; bounded by methods x routes x statuses in practice

AttrKey = tuple[str, str, str, int, str | None, str | None]


def create_http_server_request_duration(meter: Meter) -> Histogram:
    return meter.create_histogram(
        name=HTTP_SERVER_REQUEST_DURATION,
        unit="s",
        description="Duration of HTTP server requests.",
        explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
    )


def excluded_paths(spec: str | None) -> re.Pattern[str] | None:
    """``"/livez,/readyz"`` as one pattern searched in the path; None when nothing is excluded."""
    parts = [p.strip() for p in (spec or "").split(",") if p.strip()]
    return re.compile("|".join(parts)) if parts else None


class HttpServerMetricsMiddleware:
    def __init__(self, app: ASGIApp, meter: Meter, excluded_urls: str | None = None) -> None:
        self.app = app
        self._duration = create_http_server_request_duration(meter)
        self._excluded = excluded_paths(excluded_urls)
        self._excluded_cache: dict[str, bool] = {}
        self._attrs: dict[AttrKey, dict[str, Any]] = {}

    def _is_excluded(self, path: str) -> bool:
        found = self._excluded_cache.get(path)
        if found is None:
            assert self._excluded is not None
            found = self._excluded.search(path) is not None
            if len(self._excluded_cache) < _MAX_CACHED:
                self._excluded_cache[path] = found
        return found

    def _attributes(self, key: AttrKey) -> dict[str, Any]:
        found = self._attrs.get(key)
        if found is None:
            method, scheme, version, status, route, error = key
            found = {
                "http.request.method": method,
                "url.scheme": scheme,
                "network.protocol.version": version,
                "http.response.status_code": status,
            }
            if route is not None:
                found["http.route"] = route
            if error is not None:
                found["error.type"] = error
            if len(self._attrs) < _MAX_CACHED:
                self._attrs[key] = found
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (self._excluded is not None and self._is_excluded(scope["path"])):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        error: str | None = None
        try:
            await self.app(scope, receive, send_status)
        except BaseException as exc:
            error = type(exc).__qualname__
            if not status:
                status = 500
            raise
        finally:
            if error is None and (status >= 500 or not status):
                error = str(status) if status else "incomplete_response"
            method = scope.get("method", "")
            route = scope.get("route")
            key: AttrKey = (
                method if method in _KNOWN_METHODS else "_OTHER",
                scope.get("scheme", "http"),
                scope.get("http_version", "1.1"),
                status,
                getattr(route, "path", None),
                error,
            )
            self._duration.record(max(time.perf_counter() - started, 0.0), self._attributes(key))
