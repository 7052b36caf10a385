"""``driftwatch up`` leaves a child that fails at start-up stopped, and says why, once.

A real ``driftwatch serve`` pointed at a folder with no model fails in its
start-up (uvicorn exits with code 3). Restarting it would repeat the same
error every 30 s forever; a child that crashed after starting is still
restarted (tests/e2e/test_stack_supervision.py).
"""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from rich.console import Console

from driftwatch.cli.stack import STARTUP_FAILURE, Child, LocalStack
from driftwatch.local_processes import free_port
from shared.keys import Keys
from shared.model_metadata import ModelMetadata, Reference
from shared.registry import register_model
from tests.integration.monitor.helpers import small_model


def test_a_child_that_fails_at_start_up_is_not_restarted(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    stack = LocalStack(tmp_path, 0, 0, "redis://127.0.0.1:1/0", None, Console(file=out, width=200))
    env = {"OTEL_SDK_DISABLED": "true", "REDIS_URL": "redis://127.0.0.1:1/0", "PATH": "/usr/bin:/bin"}
    child = Child("model service", ["serve", "--model-dir", str(tmp_path / "no-model"), "--port", "0"], env)
    child.spawn()
    stack._children.append(child)
    assert child.process is not None
    assert child.process.wait(timeout=120) == STARTUP_FAILURE
    deadline = time.monotonic() + 5  # well past the first backoff (0.5 s)
    while time.monotonic() < deadline:
        stack.supervise_once()
        time.sleep(0.1)
    assert child.restarts == 0 and child.given_up
    assert child.exit_codes == [STARTUP_FAILURE]
    assert out.getvalue().count("failed at start-up") == 1
    # Its log says why in one line (it was a 40-line traceback of FileNotFoundError, the reason last).
    logged = capfd.readouterr().err
    assert f"start-up refused: no model in {tmp_path / 'no-model'}" in logged and "Traceback" not in logged


def test_up_over_another_model_of_the_same_version_says_why_in_one_line_and_not_that_the_stack_is_up(
    model_dir: Path,
    tmp_path: Path,
    redis_url: str,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Retraining into models/ under a fixed --version on other data: the refusal was uvicorn's
    40-line traceback of the lifespan with the reason last, and up then printed the model
    service's URL and "Stack is up" before saying that it failed at start-up."""
    digits = ModelMetadata.load(model_dir)
    other, other_reference = small_model(digits.name, digits.version)
    asyncio.run(_register(redis_url, other, other_reference))
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    monkeypatch.setenv("DRIFTWATCH_SPILL_DIR", str(tmp_path / "spill"))
    out = io.StringIO()
    stack = LocalStack(model_dir, free_port(), free_port(), redis_url, None, Console(file=out, width=300))
    try:
        stack.start()
        assert [c.name for c in stack.refused_at_start] == ["model service"]
    finally:
        stack.stop()
    text = out.getvalue()
    assert "model service exited at start-up" in text and f":{stack.model_port}" not in text
    logged = capfd.readouterr().err
    assert f"start-up refused: model {digits.name!r} version {digits.version!r} is already registered" in logged
    assert "Traceback" not in logged


async def _register(redis_url: str, metadata: ModelMetadata, reference: Reference) -> None:
    client = aioredis.Redis.from_url(redis_url)
    await register_model(client, Keys(metadata.name), metadata, reference)
    await client.aclose()
