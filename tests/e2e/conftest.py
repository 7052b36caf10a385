"""The local stack as real processes, started once per e2e module that asks for it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from driftwatch.local_processes import free_port, wait_for_http

# Below digits' 360 held-out rows, so a window of unshifted traffic never repeats a row.
STACK_WINDOW = 300


@dataclass
class Stack:
    model_url: str
    monitor_url: str
    model_dir: Path
    process: subprocess.Popen[bytes]


@pytest.fixture(scope="module")
def stack(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("stack")
    model_port, monitor_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}  # the stack starts its own redis
    env["OTEL_SDK_DISABLED"] = "true"
    process = subprocess.Popen(
        [sys.executable, "-m", "driftwatch.cli", "up", "--model-dir", str(model_dir), "--model-port", str(model_port),
         "--monitor-port", str(monitor_port), "--window-size", str(STACK_WINDOW)],
        cwd=workdir, env=env,
    )
    stack = Stack(f"http://127.0.0.1:{model_port}", f"http://127.0.0.1:{monitor_port}", model_dir, process)
    try:
        wait_for_http(f"{stack.model_url}/readyz", timeout_s=90, processes=[process])
        wait_for_http(f"{stack.monitor_url}/readyz", timeout_s=90, processes=[process])
        yield stack
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0


