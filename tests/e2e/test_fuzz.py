"""Schemathesis, every check, against both services' OpenAPI schemas on live
processes configured with an API key: the documents say what the services do.

Every built-in check runs on every response (``not_a_server_error``,
``status_code_conformance``, ``content_type_conformance``,
``response_schema_conformance``, ``response_headers_conformance``,
``positive_data_acceptance``, ``negative_data_rejection``, ``ignored_auth``,
``missing_required_header``, ``unsupported_method``, ...), on positive and
negative cases of every operation. Bounded and derandomised: the same cases
every run (about 2 minutes here for both services).

``positive_data_acceptance`` expects a schema-valid request to be accepted
(or to name a missing resource, 404/409). Where validity depends on what a
static schema cannot say, :data:`STATEFUL_422` also allows the 422 that
names the reason, operation by operation, each with that reason; every other
operation is held to the check as schemathesis defines it.

The strategies are driven with Hypothesis directly: schemathesis' pytest
fixture loader does not run under pytest 9.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode

from shared.api_auth import API_KEY_HEADER
from tests.e2e.conftest import KeyedServices

pytestmark = pytest.mark.e2e

EXAMPLES_PER_OPERATION = 25

ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]  # schemathesis' own default
STATEFUL_422 = {
    # Which features a rule may name is the watched models' state (models register after the
    # schema is served, and one monitor watches many): an unknown feature is a 422 listing them.
    r"^(/models/[^/]+)?/alerts/thresholds(/[^/]+)?$": "rule features are the models' own",
    # The reference's columns must be the metadata's feature names: a constraint between two
    # fields that JSON Schema cannot state.
    r"^/models/[^/]+/versions/[^/]+$": "reference columns must match the metadata",
    # A CloudEvent is valid through its ce-* headers and its body together (binary or
    # structured mode), which OpenAPI cannot tie to each other.
    r"^/kserve(/[^/]+)?$": "a CloudEvent is headers and body together",
}
CONFIG = SchemathesisConfig.from_dict({"operations": [
    {"include-path-regex": path, "checks": {"positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "422"]}}}
    for path in STATEFUL_422
]})


def fuzz_operation(operation: Any, mode: GenerationMode, headers: dict[str, str], statuses: Counter[int]) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck), database=None)
    def check(case: schemathesis.Case) -> None:
        response = case.call_and_validate(headers=headers)
        statuses[response.status_code] += 1

    try:
        check()
    except Unsatisfiable:
        # No parameters or body to break (GET /livez): nothing negative to send.
        assert mode is GenerationMode.NEGATIVE


def fuzz(openapi_url: str, key: str) -> dict[str, Counter[int]]:
    """Every operation's positive and negative cases; the statuses seen per operation."""
    fuzzed: dict[str, Counter[int]] = {}
    for result in schemathesis.openapi.from_url(openapi_url, config=CONFIG).get_all_operations():
        operation = result.ok()
        statuses = fuzzed.setdefault(f"{operation.method.upper()} {operation.path}", Counter())
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz_operation(operation, mode, {API_KEY_HEADER: key}, statuses)
    print({op: dict(statuses) for op, statuses in fuzzed.items()})  # the figures, with -s
    return fuzzed


def test_model_service_does_what_its_schema_says(keyed_services: KeyedServices) -> None:
    fuzzed = fuzz(f"{keyed_services.model_url}/openapi.json", keyed_services.key)
    assert {"POST /predict", "POST /feedback", "GET /model", "GET /readyz"} <= set(fuzzed)
    # Generated samples of the served model's shape were predicted; malformed ones refused.
    assert fuzzed["POST /predict"][200] > 0 and fuzzed["POST /predict"][422] > 0
    assert fuzzed["POST /feedback"][202] > 0 and fuzzed["POST /feedback"][422] > 0


def test_monitor_does_what_its_schema_says(keyed_services: KeyedServices) -> None:
    fuzzed = fuzz(f"{keyed_services.monitor_url}/openapi.json", keyed_services.key)
    assert {"GET /drift", "GET /performance", "PUT /alerts/thresholds", "DELETE /alerts/thresholds/{name}"} <= set(
        fuzzed
    )
    assert fuzzed["PUT /alerts/thresholds"][422] > 0
    assert fuzzed["PUT /alerts/thresholds/{name}"][200] + fuzzed["PUT /alerts/thresholds/{name}"][201] > 0
