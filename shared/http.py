"""HTTP pieces both services use: a body-size limit and JSON bodies parsed by pydantic.

The size limit is pure ASGI middleware so an oversized body is refused with
413 before it is buffered, whether or not the client sent Content-Length.
"""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ModelT = TypeVar("ModelT", bound=BaseModel)



class BodySizeLimitMiddleware:
    """413 for a body over ``max_bytes``, declared (Content-Length) or streamed (chunked).

    A body without Content-Length is read here, up to the limit, before the app
    sees it: raising from inside the app's ``receive`` does not work, because
    FastAPI turns any error while it reads a body into a 400 ("error parsing
    the body"), which is how a chunked oversized body got 400 instead of 413.
    At most ``max_bytes`` is held, and only for bodies that came without a length.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = None
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit():
                declared = int(value)
        if declared is not None:
            if declared > self.max_bytes:
                await _send_413(send, self.max_bytes)
                return
            await self.app(scope, receive, send)  # the server never delivers more than declared
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                await _send_413(send, self.max_bytes)
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


async def parse_json_body(
    request: Request, model: type[ModelT], drop_from_loc: frozenset[str] = frozenset()
) -> ModelT:
    """Validate the raw body with pydantic-core's JSON parser (no intermediate dicts).

    ``drop_from_loc`` removes union tags from error locations so the client sees
    the path of its own JSON, e.g. ``body.features.3``.
    """
    body = await request.body()
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        errors = []
        for error in exc.errors(include_url=False):
            loc = tuple(p for p in error["loc"] if p not in drop_from_loc)
            errors.append({**error, "loc": ("body", *loc)})
        raise RequestValidationError(errors, body=body) from None


def query_error(name: str, msg: str, value: object = None) -> RequestValidationError:
    """A 422 naming a query parameter, in FastAPI's own error shape."""
    return RequestValidationError([{"type": "value_error", "loc": ("query", name), "msg": msg, "input": value}])


def _small_input(value: object) -> bool:
    return value is None or (isinstance(value, bool | int | float | str) and len(str(value)) <= 200)


def _echoable(value: object) -> object:
    """The input as orjson can write it: an integer beyond 64 bits (it raises on those) as text."""
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        return str(value)
    return value


async def validation_error_handler(request: Request, exc: Exception) -> Response:
    """FastAPI's 422 shape, made safe for what bad input carries.

    The default handler echoes each error's ``input`` with the stdlib JSON
    encoder, which raises on NaN (a 500 for a bad request); and echoing a
    whole 4 MB batch back is no help to anyone. Scalars are echoed (NaN as
    null, integers beyond 64 bits as text: orjson refuses them, which was a
    500 found by the fuzz test); larger inputs are left out.
    """
    assert isinstance(exc, RequestValidationError)
    errors = []
    for error in exc.errors():
        shown = {k: v for k, v in error.items() if k not in ("input", "ctx", "url")}
        if _small_input(error.get("input")):
            shown["input"] = _echoable(error.get("input"))
        errors.append(shown)
    return Response(orjson.dumps({"detail": errors}, default=str), status_code=422, media_type="application/json")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, validation_error_handler)


def document_body_models(app: FastAPI, *models: type[BaseModel]) -> None:
    """Put models that routes parse from raw bytes into the OpenAPI components.

    Those routes refer to ``#/components/schemas/<Model>`` in ``openapi_extra``,
    but FastAPI only collects models it validates itself; without this the
    references dangle and clients generated from the schema break.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in models:
                generated = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(generated.pop("$defs", {}))
                components[model.__name__] = generated
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
