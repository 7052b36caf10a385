"""`driftwatch simulate` against a stack with time windows (DRIFTWATCH_WINDOW_MODE=time).

It crashed with a TypeError traceback: it topped up the window in progress by
its row count, which time windows do not have. Now it sends the run, shows
the windows the run reached once they are reported, and, where the last one
closes later than it would wait, says when.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from driftwatch.local_processes import free_port, wait_for_http

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def up_with_time_windows(model_dir: Path, workdir: Path, seconds: int) -> tuple[subprocess.Popen[bytes], str, str]:
    model_port, monitor_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(OTEL_SDK_DISABLED="true", DRIFTWATCH_WINDOW_MODE="time", DRIFTWATCH_WINDOW_SECONDS=str(seconds),
               DRIFTWATCH_WINDOW_GRACE_S="0.5")
    process = subprocess.Popen(
        [sys.executable, "-m", "driftwatch.cli", "up", "--model-dir", str(model_dir),
         "--model-port", str(model_port), "--monitor-port", str(monitor_port)],
        cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    model_url, monitor_url = f"http://127.0.0.1:{model_port}", f"http://127.0.0.1:{monitor_port}"
    wait_for_http(f"{model_url}/readyz", timeout_s=90, processes=[process])
    wait_for_http(f"{monitor_url}/readyz", timeout_s=90, processes=[process])
    return process, model_url, monitor_url


@pytest.fixture
def stopped_at_the_end() -> Iterator[list[subprocess.Popen[bytes]]]:
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0


def simulate(model_dir: Path, model_url: str, monitor_url: str, scenario: str) -> str:
    """``driftwatch simulate`` as a user runs it: its output, once it has exited 0 without a traceback
    and printed the run's accuracy."""
    env = {**os.environ, "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-m", "driftwatch.cli", "simulate", "--scenario", scenario, "--n", "600",
         "--model-dir", str(model_dir), "--model-url", model_url, "--monitor-url", monitor_url],
        env=env, capture_output=True, text=True, timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "Accuracy of this run's predictions on the labels it sent" in done.stdout
    return done.stdout


def test_simulate_shows_the_time_windows_its_traffic_reached(
    model_dir: Path, tmp_path: Path, stopped_at_the_end: list[subprocess.Popen[bytes]]
) -> None:
    process, model_url, monitor_url = up_with_time_windows(model_dir, tmp_path, seconds=2)
    stopped_at_the_end.append(process)
    output = simulate(model_dir, model_url, monitor_url, "covariate-shift")
    assert "Drift, scenario covariate-shift" in output
    assert "YES" in output, output  # a window of the shifted traffic has dataset drift


def test_simulate_does_not_wait_minutes_for_a_long_time_window(
    model_dir: Path, tmp_path: Path, stopped_at_the_end: list[subprocess.Popen[bytes]]
) -> None:
    process, model_url, monitor_url = up_with_time_windows(model_dir, tmp_path, seconds=3600)
    stopped_at_the_end.append(process)
    output = simulate(model_dir, model_url, monitor_url, "none")
    assert "its report follows then" in " ".join(output.split()), output
