"""KServe's inference-logger CloudEvents, read from an HTTP request.

KServe's logger (``pkg/logger``) sends each logged request and response as a
CloudEvent in binary mode: the attributes in ``ce-*`` headers, the body as it
was. ``ce-type`` is ``org.kubeflow.serving.inference.request`` or
``.response``; both halves carry the same ``ce-id`` (the inference request's
id), ``ce-inferenceservicename``, ``ce-namespace``, ``ce-component`` and
``ce-endpoint``. The body keeps the content type of the inference request,
which is not always ``application/json`` (``curl -d`` sends a form type), so
it is read as JSON whatever it says. Structured mode
(``application/cloudevents+json``: attributes and ``data`` in one JSON
object) is read too.

No browser can send either without a CORS preflight (``ce-*`` headers, the
CloudEvents media type), and this service answers none: a web page cannot
post into the windows through this route.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pydantic_core
from pydantic import AwareDatetime, TypeAdapter, ValidationError

REQUEST_TYPE = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE = "org.kubeflow.serving.inference.response"
STRUCTURED = "application/cloudevents+json"
_KINDS = {REQUEST_TYPE: "q", RESPONSE_TYPE: "s"}
_TIME = TypeAdapter(AwareDatetime)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_ATTRIBUTE_CHARS = 1_000


class EventError(ValueError):
    """An event that is not a KServe inference-logger CloudEvent; ``loc`` names the attribute."""

    def __init__(self, loc: tuple[str | int, ...], msg: str) -> None:
        super().__init__(msg)
        self.loc = loc
        self.msg = msg


@dataclass(frozen=True, slots=True)
class InferenceEvent:
    """One half of a logged inference: its attributes and its parsed JSON body."""

    id: str
    kind: str  # "q": the request, "s": the response
    time_ms: int | None
    service: str | None  # ce-inferenceservicename
    namespace: str
    component: str
    data: Any

    @property
    def is_request(self) -> bool:
        return self.kind == "q"


def _time_ms(value: str | None, loc: tuple[str | int, ...]) -> int | None:
    if not value:
        return None
    try:
        return int((_TIME.validate_python(value) - _EPOCH).total_seconds() * 1000)
    except ValidationError:
        raise EventError(loc, f"must be an RFC 3339 time, got {value[:100]!r}") from None


def _attribute(value: Any, loc: tuple[str | int, ...], required: bool = False) -> str:
    if value is None or value == "":
        if required:
            raise EventError(loc, "required: KServe's inference logger sets it")
        return ""
    if not isinstance(value, str) or len(value) > MAX_ATTRIBUTE_CHARS:
        raise EventError(loc, f"must be a string of at most {MAX_ATTRIBUTE_CHARS} characters")
    return value


def _event(attributes: Mapping[str, Any], data: Any, where: str) -> InferenceEvent:
    def loc(name: str) -> tuple[str, str]:
        return (where, f"ce-{name}" if where == "header" else name)

    specversion = _attribute(attributes.get("specversion"), loc("specversion"), required=True)
    if not specversion.startswith("1."):
        raise EventError(loc("specversion"), f"CloudEvents 1.x expected, got {specversion!r}")
    kind = _KINDS.get(_attribute(attributes.get("type"), loc("type"), required=True))
    if kind is None:
        raise EventError(loc("type"), f"expected {REQUEST_TYPE!r} or {RESPONSE_TYPE!r}")
    _attribute(attributes.get("source"), loc("source"), required=True)
    return InferenceEvent(
        id=_attribute(attributes.get("id"), loc("id"), required=True),
        kind=kind,
        time_ms=_time_ms(_attribute(attributes.get("time"), loc("time")), loc("time")),
        service=_attribute(attributes.get("inferenceservicename"), loc("inferenceservicename")) or None,
        namespace=_attribute(attributes.get("namespace"), loc("namespace")),
        component=_attribute(attributes.get("component"), loc("component")),
        data=data,
    )


def _json(body: bytes, loc: tuple[str | int, ...]) -> Any:
    try:
        return pydantic_core.from_json(body, allow_inf_nan=True)
    except ValueError as exc:
        raise EventError(loc, f"not JSON: {str(exc)[:200]}") from None


def read_event(headers: Mapping[str, str], body: bytes) -> InferenceEvent:
    """The event of one HTTP request, binary mode (``ce-*`` headers) or structured mode."""
    content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type == STRUCTURED:
        envelope = _json(body, ("body",))
        if not isinstance(envelope, dict):
            raise EventError(("body",), "a structured CloudEvent is a JSON object")
        if "data_base64" in envelope:
            try:
                data = _json(base64.b64decode(envelope["data_base64"], validate=True), ("body", "data_base64"))
            except (TypeError, ValueError) as exc:
                raise EventError(("body", "data_base64"), f"not base64 JSON: {str(exc)[:200]}") from None
        else:
            data = envelope.get("data")
        return _event(envelope, data, "body")
    attributes = {k[3:]: v for k, v in headers.items() if k.startswith("ce-")}
    if not attributes:
        raise EventError(("header", "ce-type"), "not a CloudEvent: no ce-* headers (binary mode) and not "
                         f"{STRUCTURED} (structured mode)")
    return _event(attributes, _json(body, ("body",)), "header")
