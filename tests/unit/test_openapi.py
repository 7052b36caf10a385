"""Both services publish an OpenAPI document a client generator can use: every
reference resolves, and every request body carries an example."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI

from model_service.app import create_app as create_model_service
from monitor.app import create_app as create_monitor
from shared.telemetry import shutdown_telemetry


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for item in node for r in _refs(item)]
    return []


@pytest.fixture(params=["model_service", "monitor"])
def spec(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    app: FastAPI = create_model_service() if request.param == "model_service" else create_monitor()
    yield app.openapi()
    # The app's lifespan never ran to release its telemetry provider: do it here,
    # or the next test that exports metrics in this process finds it taken.
    shutdown_telemetry()


def test_every_reference_resolves(spec: dict[str, Any]) -> None:
    components = spec["components"]["schemas"]
    dangling = {r for r in _refs(spec) if r.split("/")[-1] not in components}
    assert dangling == set()


def test_every_request_body_has_an_example(spec: dict[str, Any]) -> None:
    components = spec["components"]["schemas"]
    missing = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if content is None:
                continue
            schema = content.get("schema", {})
            target = components.get(schema.get("$ref", "").split("/")[-1], schema)
            item = components.get(target.get("items", {}).get("$ref", "").split("/")[-1], {})
            documented = (content.get(k) or target.get(k) or item.get(k) for k in ("examples", "example"))
            if not any(documented):
                missing.append(f"{method.upper()} {path}")
    assert missing == []
