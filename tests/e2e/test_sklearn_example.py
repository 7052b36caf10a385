"""examples/sklearn_app as a user runs it, every part a real process: redis-server, the model
service logging only (``driftwatch serve --ingest-only``), the monitor, the example app
(uvicorn, its own process, logging through ``driftwatch.Client``), its reference written and
registered with ``driftwatch register``, its traffic script. Windows of the model are reported
at ``GET /models/breast-cancer/drift``; a shift and nulls sent on purpose are flagged."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from driftwatch.local_processes import LocalRedisServer, free_port, wait_for_http

pytestmark = pytest.mark.timeout(600)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "sklearn_app"
MODEL = "breast-cancer"
WINDOW = 200


@dataclass
class Example:
    app_url: str
    monitor_url: str
    processes: list[subprocess.Popen[bytes]]

    def traffic(self, *args: str) -> None:
        subprocess.run([sys.executable, "traffic.py", "--url", self.app_url, *args], cwd=EXAMPLE, check=True,
                       timeout=300)


def _start(args: list[str], env: dict[str, str], cwd: Path = ROOT) -> subprocess.Popen[bytes]:
    return subprocess.Popen(args, env=env, cwd=cwd)


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Example]:
    workdir = tmp_path_factory.mktemp("example")
    with LocalRedisServer() as redis_server:
        env = {**os.environ, "REDIS_URL": redis_server.url, "OTEL_SDK_DISABLED": "true",
               "DRIFTWATCH_SPILL_DIR": str(workdir / "spill"), "DRIFTWATCH_WINDOW_SIZE": str(WINDOW)}
        reference = workdir / "reference.csv"
        subprocess.run([sys.executable, "model.py", str(reference)], cwd=EXAMPLE, env=env, check=True, timeout=300)
        subprocess.run(
            [sys.executable, "-m", "driftwatch.cli", "register", "--name", MODEL, "--version", "1",
             "--reference", str(reference), "--prediction-column", "prediction",
             "--probability-columns", "p_malignant,p_benign", "--label-column", "label",
             "--class-names", "malignant,benign"],
            env=env, check=True, timeout=300,
        )  # fmt: skip
        service_port, monitor_port, app_port = free_port(), free_port(), free_port()
        cli = [sys.executable, "-m", "driftwatch.cli"]
        processes = [
            _start([*cli, "serve", "--ingest-only", "--port", str(service_port)], env),
            _start([*cli, "monitor", "--port", str(monitor_port)], env),
            _start([sys.executable, "-m", "uvicorn", "app:app", "--port", str(app_port)],
                   {**env, "DRIFTWATCH_URL": f"http://127.0.0.1:{service_port}"}, cwd=EXAMPLE),
        ]
        try:
            for port in (service_port, monitor_port):
                wait_for_http(f"http://127.0.0.1:{port}/readyz", timeout_s=120, processes=processes)
            wait_for_http(f"http://127.0.0.1:{app_port}/stats", timeout_s=120, processes=processes)
            yield Example(f"http://127.0.0.1:{app_port}", f"http://127.0.0.1:{monitor_port}", processes)
        finally:
            for process in reversed(processes):
                process.send_signal(signal.SIGINT)
            for process in processes:
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()


def _reports(example: Example, count: int) -> list[dict[str, object]]:
    """The model's newest ``count`` window reports, oldest first, once there are that many."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        answer = httpx.get(f"{example.monitor_url}/models/{MODEL}/drift/history", params={"limit": count}, timeout=30)
        if answer.status_code == 200:
            reports = answer.json()["reports"]
            if len(reports) >= count:
                return sorted(reports[:count], key=lambda r: r["window"])  # type: ignore[no-any-return]
        time.sleep(0.5)
    raise AssertionError(f"fewer than {count} reports for {MODEL} in time")


def test_the_example_apps_traffic_is_reported_per_window_and_a_shift_is_flagged(example: Example) -> None:
    example.traffic("--rows", str(2 * WINDOW))
    unshifted = _reports(example, 2)
    for report in unshifted:
        assert report["model"] == MODEL and report["window_size"] == WINDOW
        assert "mean_radius" not in report["drifted_features"]  # type: ignore[operator]
    latest = httpx.get(f"{example.monitor_url}/models/{MODEL}/drift", timeout=30).json()
    assert latest["window"] == unshifted[-1]["window"]

    example.traffic("--rows", str(WINDOW), "--shift", "mean_radius=1.4", "worst_radius=1.4",
                    "--nulls", "mean_texture=0.5", "--seed", "2")
    shifted = _reports(example, 3)[-1]
    drifted = set(shifted["drifted_features"])  # type: ignore[arg-type]
    assert {"mean_radius", "worst_radius", "mean_texture"} <= drifted, drifted
    texture = next(f for f in shifted["features"] if f["name"] == "mean_texture")  # type: ignore[union-attr]
    assert texture["missing"]["window"] > WINDOW // 4 and texture["missing"]["drifted"]

    stats = httpx.get(f"{example.app_url}/stats", timeout=30).json()
    assert stats["sent"] == stats["logged"] == 3 * WINDOW and stats["dropped"] == stats["rejected"] == 0
