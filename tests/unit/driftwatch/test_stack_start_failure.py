"""``driftwatch up`` leaves a child that fails at start-up stopped, and says why, once.

A real ``driftwatch serve`` pointed at a folder with no model fails in its
start-up (uvicorn exits with code 3). Restarting it would repeat the same
error every 30 s forever; a child that crashed after starting is still
restarted (tests/e2e/test_stack_supervision.py).
"""

from __future__ import annotations

import io
import time
from pathlib import Path

from rich.console import Console

from driftwatch.cli.stack import STARTUP_FAILURE, Child, LocalStack


def test_a_child_that_fails_at_start_up_is_not_restarted(tmp_path: Path) -> None:
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
