"""HTTP pieces both services use: a body-size limit, JSON-only bodies parsed by
pydantic, and the error answers every route shares (422, 415, 503).

The size limit is pure ASGI middleware so an oversized body is refused with
413 before it is buffered, whether or not the client sent Content-Length.
The error handlers are installed on both apps, so a rule such as "Redis away
is a 503, never a 500" holds on every route, not only on those that remember it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import orjson
from fastapi import Depends, FastAPI, HTTPException, Request, Response, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.settings_base import ServiceSettings
from shared.telemetry import instrument_fastapi

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics import MeterProvider

ModelT = TypeVar("ModelT", bound=BaseModel)



@dataclass(frozen=True, slots=True)
class LargerBody:
    """A route whose bodies may exceed the app's limit (a model registration carries its
    reference sample): requests with ``method`` whose path matches ``path`` get ``max_bytes``."""

    method: str
    path: re.Pattern[str]
    max_bytes: int


class BodySizeLimitMiddleware:
    """413 for a body over ``max_bytes``, declared (Content-Length) or streamed (chunked).

    A body without Content-Length is read here, up to the limit, before the app
    sees it: raising from inside the app's ``receive`` does not work, because
    FastAPI turns any error while it reads a body into a 400 ("error parsing
    the body"), which is how a chunked oversized body got 400 instead of 413.
    At most ``max_bytes`` is held, and only for bodies that came without a length.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, larger: Sequence[LargerBody] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = tuple(larger)

    def _limit(self, scope: Scope) -> int:
        for route in self.larger:
            if scope.get("method") == route.method and route.path.fullmatch(scope.get("path", "")):
                return route.max_bytes
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self._limit(scope)
        declared = None
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit():
                declared = int(value)
        if declared is not None:
            if declared > max_bytes:
                await _send_413(send, max_bytes)
                return
            await self.app(scope, receive, send)  # the server never delivers more than declared
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            body += message.get("body", b"")
            if len(body) > max_bytes:
                await _send_413(send, max_bytes)
                return
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(bytes(body), receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the buffered body over once, then waits on the real one (disconnects)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _send_413(send: Send, max_bytes: int) -> None:
    body = orjson.dumps({"detail": f"request body larger than {max_bytes} bytes"})
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def validation_error(loc: tuple[str | int, ...], msg: str, value: object = None) -> RequestValidationError:
    """A 422 in FastAPI's own error shape, naming the field at fault."""
    return RequestValidationError(
        [{"type": "value_error", "loc": ("body", *loc), "msg": msg, "input": value}]
    )


def is_json_media_type(content_type: str | None) -> bool:
    """``application/json`` or ``application/<anything>+json``, with or without parameters."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


async def require_json(request: Request) -> None:
    """415 unless the body is declared JSON.

    A browser sends ``text/plain`` and form bodies to any origin without a
    CORS preflight; refusing them keeps a web page that a visitor opens from
    posting into the drift windows or the alert rules.
    """
    content_type = request.headers.get("content-type")
    if not is_json_media_type(content_type):
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            detail=f"Content-Type must be application/json, got {(content_type or 'none')[:100]!r}",
        )


JsonBody = Annotated[None, Depends(require_json)]


async def parse_json_body(
    request: Request,
    model: type[ModelT],
    drop_from_loc: frozenset[str] = frozenset(),
    context: dict[str, Any] | None = None,
) -> ModelT:
    """Validate the raw body with pydantic-core's JSON parser (no intermediate dicts).

    ``drop_from_loc`` removes union tags from error locations so the client sees
    the path of its own JSON, e.g. ``body.features.3``; ``context`` reaches the
    model's validators.
    """
    await require_json(request)
    body = await request.body()
    try:
        return model.model_validate_json(body, context=context)
    except ValidationError as exc:
        errors = []
        for error in exc.errors(include_url=False):
            loc = tuple(p for p in error["loc"] if p not in drop_from_loc)
            errors.append({**error, "loc": ("body", *loc)})
        raise RequestValidationError(errors) from None


def query_error(name: str, msg: str, value: object = None) -> RequestValidationError:
    """A 422 naming a query parameter, in FastAPI's own error shape."""
    return RequestValidationError([{"type": "value_error", "loc": ("query", name), "msg": msg, "input": value}])



# A 422 lists this many errors and counts the rest: a 4 MB body of wrong items
# once made an 85 MB answer and stalled the service for seconds.
MAX_ERRORS_SHOWN = 20
_MAX_ECHO_CHARS = 200
_INT64_MIN, _UINT64_MAX = -(1 << 63), (1 << 64) - 1


_NOT_SHOWN = object()


def _echo(value: object) -> object:
    """An error's input as shown back, or ``_NOT_SHOWN``: short scalars orjson can write.

    orjson refuses integers beyond 64 bits (JSON allows them, so a client can
    send one): those are shown as their digits, and left out beyond 200 digits
    (``str()`` of one beyond 4,300 digits raises). Anything else long is left out.
    """
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        if _INT64_MIN <= value <= _UINT64_MAX:
            return value
        return str(value) if value.bit_length() <= 660 else _NOT_SHOWN  # 2**660 has 199 digits
    return value if isinstance(value, str) and len(value) <= _MAX_ECHO_CHARS else _NOT_SHOWN


def _short(part: object) -> object:
    """A location part as shown: a mapping key (the client's own text) cut short."""
    if isinstance(part, str) and len(part) > _MAX_ECHO_CHARS:
        return part[:_MAX_ECHO_CHARS] + "..."
    return part if isinstance(part, str | int) else repr(part)[:_MAX_ECHO_CHARS]


async def validation_error_handler(request: Request, exc: Exception) -> Response:
    """FastAPI's 422 shape, made safe for whatever bad input carries.

    The default handler echoes each error's ``input`` with the stdlib JSON
    encoder, which raises on NaN, and orjson raises on integers beyond 64
    bits: either was a 500 for a bad request. Short scalars are echoed (NaN as
    null, a huge integer as its digits); anything else is left out. At most ``MAX_ERRORS_SHOWN`` errors are
    listed; ``error_count`` says how many there were.
    """
    assert isinstance(exc, RequestValidationError)
    return validation_response(exc.errors())


def validation_response(all_errors: Sequence[Any], **extra: object) -> Response:
    """The 422 answer for ``all_errors``: at most ``MAX_ERRORS_SHOWN`` of them, each safe to
    write, their count, and ``extra`` fields (e.g. what a batch accepted in part kept)."""
    errors = []
    for error in all_errors[:MAX_ERRORS_SHOWN]:
        shown: dict[str, Any] = {
            "type": str(error.get("type", "value_error")),
            "loc": [_short(p) for p in error.get("loc", ())],
            "msg": str(error.get("msg", ""))[: _MAX_ECHO_CHARS * 5],
        }
        echoed = _echo(error.get("input"))
        if echoed is not _NOT_SHOWN:
            shown["input"] = echoed
        errors.append(shown)
    body = orjson.dumps({"detail": errors, "error_count": len(all_errors), **extra})
    return Response(body, status_code=422, media_type="application/json")


# How long a client should wait before retrying a request refused for want of Redis.
RETRY_AFTER_S = 1


async def redis_unavailable_handler(request: Request, exc: Exception) -> Response:
    """Redis down, too slow, or every pooled connection busy: 503 with ``Retry-After``.

    None of these is the request's fault or a bug, and each passes on its own
    (the pool reconnects; a waiting request gets a connection), so the answer
    says "try again shortly" instead of a bare 500.
    """
    if isinstance(exc, RedisConnectionError) and "No connection available" in str(exc):
        reason = "redis connection pool saturated"
    else:
        reason = f"redis unavailable: {type(exc).__name__}: {exc}"[: _MAX_ECHO_CHARS * 2]
    return Response(
        orjson.dumps({"detail": reason}),
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        media_type="application/json",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


# What FastAPI answers (400) when its own body parser fails with anything but a JSONDecodeError.
_BODY_PARSE_FAILED = "There was an error parsing the body"


async def http_error_handler(request: Request, exc: Exception) -> Response:
    """FastAPI's answer to an ``HTTPException``, except for a JSON body its parser could not read.

    FastAPI gives a 422 for a ``JSONDecodeError`` but a bare 400 ("There was an
    error parsing the body") for a body that is not UTF-8 (gzip bytes sent
    without their ``Content-Encoding``) or nested past the decoder's recursion
    limit (10,000 levels): both are malformed JSON, answered as such (422,
    ``loc: ["body"]``, what failed), as every other body route here answers them.
    """
    assert isinstance(exc, StarletteHTTPException)
    cause = exc.__cause__
    if isinstance(cause, ClientDisconnect):
        return await client_gone_handler(request, cause)
    if exc.status_code == status.HTTP_400_BAD_REQUEST and exc.detail == _BODY_PARSE_FAILED and cause is not None:
        reason = "nested too deeply" if isinstance(cause, RecursionError) else f"{type(cause).__name__}: {cause}"
        return validation_response([{"type": "json_invalid", "loc": ("body",), "msg": f"Invalid JSON: {reason}"}])
    return await http_exception_handler(request, exc)


# nginx's "client closed request": no one reads it, but the request metrics record it as the client's doing.
CLIENT_CLOSED_REQUEST = 499


async def client_gone_handler(request: Request, exc: Exception) -> Response:
    """The client closed its connection before its body arrived (a dropped upload).

    Not a server error: unhandled, it logged "Exception in ASGI application"
    with a traceback for every upload a client abandons, which anyone can
    repeat at will. No one is left to read the answer.
    """
    return Response(status_code=CLIENT_CLOSED_REQUEST)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(ClientDisconnect, client_gone_handler)
    # redis-py's TimeoutError is not a ConnectionError: both mean "Redis is not answering now".
    app.add_exception_handler(RedisConnectionError, redis_unavailable_handler)
    app.add_exception_handler(RedisTimeoutError, redis_unavailable_handler)


def service_app(
    *,
    title: str,
    summary: str,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]],
    settings: ServiceSettings,
    max_body_bytes: int,
    provider: MeterProvider,
    middleware: Sequence[Middleware] = (),
    larger_bodies: Sequence[LargerBody] = (),
) -> FastAPI:
    """A service's FastAPI app with what both services share: settings and API keys on
    ``app.state``, the body-size limit, ``middleware`` (inside the request metrics),
    ``http.server.request.duration`` and the error handlers. Routes are the caller's."""
    app = FastAPI(title=title, version="0.1.0", summary=summary, lifespan=lifespan)
    app.state.settings = settings
    app.state.api_key = settings.api_key
    app.state.protect_reads = settings.protect_reads
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=max_body_bytes, larger=larger_bodies)
    for layer in middleware:
        app.add_middleware(layer.cls, *layer.args, **layer.kwargs)
    instrument_fastapi(app, provider, excluded_urls=settings.excluded_urls)
    install_error_handlers(app)
    return app
