"""A real ``driftwatch monitor`` process on a free port, for the tests that drive it from outside
(the browser tests): started with the given settings, ready when ``/readyz`` answers, stopped
with SIGINT (its graceful shutdown) when the test is done."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from driftwatch.local_processes import free_port, wait_for_http


@contextmanager
def running_monitor(redis_url: str, cwd: Path, **settings: str) -> Iterator[str]:
    """The monitor's base URL; ``settings`` are environment variables (``DRIFTWATCH_...``)."""
    port = free_port()
    env = os.environ | {"REDIS_URL": redis_url, "DRIFTWATCH_PORT": str(port), "OTEL_SDK_DISABLED": "true", **settings}
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "driftwatch"), "monitor", "--log-level", "warning"], env=env, cwd=cwd
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/readyz", timeout_s=60, processes=[process])
        yield url
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
