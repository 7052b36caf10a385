"""`driftwatch up` supervises its children (issue 12, item 3): a child killed under
traffic is restarted and logged, the others never stop, and SIGTERM still stops
everything in order."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import psutil
import pytest

from driftwatch.local_processes import free_port, wait_for_http
from tests.fault.procs import Load

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def wait_until(check: Callable[[], object], within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def child(up: subprocess.Popen[bytes], command: str) -> psutil.Process | None:
    for proc in psutil.Process(up.pid).children():
        try:
            if command in proc.cmdline() and proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                return proc
        except psutil.NoSuchProcess:
            continue
    return None


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def start_up(model_dir: Path, tmp_path: Path, **popen: object) -> tuple[subprocess.Popen[bytes], int, int, Path]:
    """``driftwatch up`` on free ports with its own redis-server, its output in ``tmp_path/up.log``:
    the process, the model service's and the monitor's ports, and the log's path."""
    model_port, monitor_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(OTEL_SDK_DISABLED="true", COLUMNS="200")
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        up = subprocess.Popen(
            [sys.executable, "-m", "driftwatch.cli", "up", "--model-dir", str(model_dir),
             "--model-port", str(model_port), "--monitor-port", str(monitor_port), "--window-size", "100"],
            cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, **popen,  # type: ignore[call-overload]
        )
    return up, model_port, monitor_port, log


def test_a_killed_child_is_restarted_and_the_other_keeps_serving(model_dir: Path, tmp_path: Path) -> None:
    up, model_port, monitor_port, log = start_up(model_dir, tmp_path)
    model_url, monitor_url = f"http://127.0.0.1:{model_port}", f"http://127.0.0.1:{monitor_port}"
    load = None
    try:
        wait_for_http(f"{model_url}/readyz", timeout_s=90, processes=[up])
        wait_for_http(f"{monitor_url}/readyz", timeout_s=90, processes=[up])
        with np.load(model_dir / "holdout.npz") as holdout:
            load = Load(model_url, holdout["features"].astype(np.float32), threads=2)
        load.start()
        wait_until(lambda: len(load.answered) >= 50, 30, "traffic")

        monitor = child(up, "monitor")
        assert monitor is not None
        monitor.send_signal(signal.SIGKILL)
        at_kill = len(load.answered)
        wait_until(lambda: (c := child(up, "monitor")) is not None and c.pid != monitor.pid, 30, "a new monitor")
        wait_until(lambda: answers(f"{monitor_url}/readyz"), 60, "the monitor ready again")
        wait_until(lambda: len(load.answered) >= at_kill + 200, 60, "traffic after the restart")
        assert load.failed == []  # every prediction answered 200 while the monitor was down

        served = child(up, "serve")
        assert served is not None
        served.send_signal(signal.SIGKILL)
        load.tolerate_failures()  # the model service is the one down now
        monitor_answers: list[bool] = []
        wait_until(lambda: monitor_answers.append(answers(f"{monitor_url}/livez")) or
                   ((c := child(up, "serve")) is not None and c.pid != served.pid), 30, "a new model service")
        wait_until(lambda: answers(f"{model_url}/readyz"), 60, "the model service ready again")
        assert monitor_answers and all(monitor_answers)  # the monitor never stopped meanwhile
        load.stop()
        assert up.poll() is None

        started = time.monotonic()
        up.send_signal(signal.SIGTERM)
        assert up.wait(timeout=60) == 0
        stop_s = time.monotonic() - started
        text = log.read_text(errors="replace")
        assert "monitor exited with code -9" in text and "model service exited with code -9" in text
        assert "monitor restarted" in text and "model service restarted" in text
        assert stop_s < 10, f"stopping took {stop_s:.1f} s"
        print(f"driftwatch up stopped in {stop_s:.2f} s")  # a figure for the report (pytest -s)
        assert not answers(f"{model_url}/livez") and not answers(f"{monitor_url}/livez")
    finally:
        if load is not None:
            load.stop()
        if up.poll() is None:
            up.kill()
            up.wait()


def test_a_child_killed_while_up_still_starts_is_restarted_and_up_keeps_running(
    model_dir: Path, tmp_path: Path
) -> None:
    """``up`` waits for each service to answer before it supervises them. A monitor
    SIGKILLed in that wait made ``up`` die with a traceback (the CI run that found it
    killed the monitor just after it answered the test, before ``up`` had seen it)."""
    up, _, monitor_port, log = start_up(model_dir, tmp_path)
    try:
        wait_until(lambda: child(up, "monitor") is not None, 60, "the monitor spawned")
        first = child(up, "monitor")
        assert first is not None
        first.send_signal(signal.SIGKILL)  # still importing: it cannot have answered yet
        wait_until(lambda: (c := child(up, "monitor")) is not None and c.pid != first.pid, 30, "a new monitor")
        wait_for_http(f"http://127.0.0.1:{monitor_port}/readyz", timeout_s=90, processes=[up])
        wait_until(lambda: "Stack is up" in log.read_text(errors="replace"), 60, "up's start to finish")
        assert up.poll() is None
        up.send_signal(signal.SIGTERM)
        assert up.wait(timeout=60) == 0
        text = log.read_text(errors="replace")
        assert "monitor exited with code -9" in text and "monitor restarted" in text
        assert "Traceback" not in text and "RuntimeError" not in text, text
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()


def test_ctrl_c_in_a_terminal_stops_the_stack_in_order_without_a_traceback(model_dir: Path, tmp_path: Path) -> None:
    """A terminal's Ctrl-C sends SIGINT to the whole foreground process group. The services
    and Redis run in their own sessions, so only ``up`` gets it, and it stops them one by one:
    the model service, the monitor (Redis still answers: the notifier gives its lease back),
    then Redis. Before, every process got the SIGINT at once, and then ``up``'s SIGTERM too."""
    up, _, monitor_port, log = start_up(model_dir, tmp_path, start_new_session=True)
    try:
        wait_for_http(f"http://127.0.0.1:{monitor_port}/readyz", timeout_s=120, processes=[up])
        children = psutil.Process(up.pid).children()
        assert len(children) == 3 and all(os.getpgid(c.pid) != os.getpgid(up.pid) for c in children)
        redis = next(p for p in children if "redis-server" in " ".join(p.cmdline()))
        os.killpg(up.pid, signal.SIGINT)  # what the terminal does
        assert up.wait(timeout=60) == 0
        assert not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children)
        assert not redis.is_running()
    finally:
        if up.poll() is None:
            up.kill()
    text = log.read_text()
    assert "Traceback" not in text, text[-3000:]
    assert "Redis unavailable" not in text, text[-3000:]


def test_sigint_stops_a_stack_started_in_the_background(model_dir: Path, tmp_path: Path) -> None:
    """A shell starts ``driftwatch up &`` with SIGINT ignored, which Python keeps: ``kill -INT``
    (or a script's Ctrl-C) then did nothing and the stack ran on."""
    up, _, monitor_port, _ = start_up(model_dir, tmp_path, start_new_session=True,
                                      preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        wait_for_http(f"http://127.0.0.1:{monitor_port}/readyz", timeout_s=120, processes=[up])
        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=60) == 0
    finally:
        if up.poll() is None:
            up.terminate()  # stops its children too (they run in their own sessions)
            up.wait(timeout=60)
