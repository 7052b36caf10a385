"""Make each service's OpenAPI document say what the app does.

FastAPI documents what it can see: models it validates, dependencies it
solves, statuses a route declares. It cannot see what both services do
around that, so this module adds it once, for every operation:

- bodies that routes parse from raw bytes (their models go into the
  components, built when the document is first asked for, so the served
  model's own request shape is documented);
- the API-key scheme only on operations that really check the key with the
  app's configuration (``shared.api_auth.enforced_schemes``), with their 401 and 403;
- the statuses every route may answer: 503 (Redis away or saturated, model
  not loaded), and for a JSON body 413, 415 and 422.

Schemathesis checks the live services against these documents (tests/e2e/test_fuzz.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import validation_error_definition, validation_error_response_definition
from pydantic import BaseModel

from shared.api_auth import API_KEY_HEADER, enforced_schemes

SCHEME = "APIKey"
# Paths that answer without touching Redis or the model.
_ALWAYS_UP = frozenset({"/livez"})


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"detail": {"type": "string"}},
                    "required": ["detail"],
                }
            }
        },
    }


_VALIDATION_ERROR = {
    "description": "Malformed input: each error's `loc` names the field at fault (at most 20 listed)",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}},
}
_BODY_ERRORS = {
    "400": _error("Body is not valid UTF-8 JSON (FastAPI's own parsing, on the monitor)"),
    "413": _error("Request body larger than the configured limit"),
    "415": _error("Content-Type is not application/json"),
    "422": _VALIDATION_ERROR,
}
_KEY_ERRORS = {
    "401": _error("Missing X-API-Key header"),
    "403": _error("Wrong X-API-Key"),
}
_UNAVAILABLE = _error("Redis is unreachable or its connections are all busy (see Retry-After), or the model is loading")


def _document(app: FastAPI, schema: dict[str, Any]) -> None:
    components = schema.setdefault("components", {})
    checked = enforced_schemes(app.state)
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            guards = {name for requirement in operation.pop("security", []) for name in requirement}
            if guards & checked:
                operation["security"] = [{SCHEME: []}]
                for code, response in _KEY_ERRORS.items():
                    responses.setdefault(code, response)
            if "requestBody" in operation:
                for code, response in _BODY_ERRORS.items():
                    responses.setdefault(code, response)
            if path not in _ALWAYS_UP:
                responses.setdefault("503", _UNAVAILABLE)
    components.pop("securitySchemes", None)
    if checked:
        components["securitySchemes"] = {
            SCHEME: {"type": "apiKey", "in": "header", "name": API_KEY_HEADER, "description": "The service's API key"}
        }
    schemas = components.setdefault("schemas", {})
    schemas.setdefault("ValidationError", validation_error_definition)
    schemas.setdefault("HTTPValidationError", validation_error_response_definition)
    schemas["HTTPValidationError"] = {
        **schemas["HTTPValidationError"],
        "properties": {
            **schemas["HTTPValidationError"].get("properties", {}),
            "error_count": {"type": "integer", "description": "How many errors there were (at most 20 are listed)"},
        },
    }


def install_openapi(app: FastAPI, body_models: Callable[[], Iterable[type[BaseModel]]] = tuple) -> None:
    """Build ``app``'s document with the additions above, once, when first asked for.

    ``body_models`` gives the models of bodies that routes parse themselves;
    those routes refer to ``#/components/schemas/<Model>`` in ``openapi_extra``,
    and FastAPI only collects models it validates itself: without this the
    references dangle and clients generated from the schema break.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in body_models():
                generated = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(generated.pop("$defs", {}))
                components[model.__name__] = generated
            _document(app, schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
