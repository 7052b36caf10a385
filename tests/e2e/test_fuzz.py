"""Schemathesis against both services' OpenAPI schemas, on the running stack: no
generated request, valid or not, gets a server error.

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
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e

EXAMPLES_PER_OPERATION = 25


def fuzz_operation(operation: Any, mode: GenerationMode, statuses: Counter[int]) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck), database=None)
    def check(case: schemathesis.Case) -> None:
        response = case.call_and_validate(checks=[not_a_server_error])
        statuses[response.status_code] += 1

    try:
        check()
    except Unsatisfiable:
        # No parameters or body to break (GET /livez): nothing negative to send.
        assert mode is GenerationMode.NEGATIVE


def fuzz(openapi_url: str) -> dict[str, Counter[int]]:
    """Every operation's positive and negative cases; the statuses seen per operation."""
    fuzzed: dict[str, Counter[int]] = {}
    for result in schemathesis.openapi.from_url(openapi_url).get_all_operations():
        operation = result.ok()
        statuses = fuzzed.setdefault(f"{operation.method.upper()} {operation.path}", Counter())
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz_operation(operation, mode, statuses)
    return fuzzed


def test_model_service_never_answers_a_server_error(stack: Stack) -> None:
    fuzzed = fuzz(f"{stack.model_url}/openapi.json")
    assert {"POST /predict", "POST /feedback", "GET /model", "GET /readyz"} <= set(fuzzed)
    # Malformed bodies reached validation and were refused there, not by a crash.
    assert fuzzed["POST /predict"][422] > 0 and fuzzed["POST /feedback"][422] > 0


def test_monitor_never_answers_a_server_error(stack: Stack) -> None:
    fuzzed = fuzz(f"{stack.monitor_url}/openapi.json")
    assert {"GET /drift", "GET /performance", "PUT /alerts/thresholds", "DELETE /alerts/thresholds/{name}"} <= set(
        fuzzed
    )
    assert fuzzed["PUT /alerts/thresholds"][422] > 0
