"""The local stack as real processes, started once per e2e module that asks for it."""

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
import numpy as np
import pytest

from driftwatch.local_processes import LocalRedisServer, free_port, wait_for_http
from shared.api_auth import API_KEY_HEADER

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



API_KEY = "e2e-key"


@dataclass
class KeyedServices:
    """A model service and a monitor as real processes (``driftwatch serve`` / ``monitor``), with an API key."""

    model_url: str
    monitor_url: str
    key: str
    redis: LocalRedisServer


def _seed_traffic(services: KeyedServices, model_dir: Path) -> None:
    """The held-out sample (more than a window) and its labels, so the monitor's reads have a report."""
    with np.load(model_dir / "holdout.npz") as holdout:
        features, labels = holdout["features"].tolist(), holdout["labels"].tolist()
    with httpx.Client(timeout=30, headers={API_KEY_HEADER: services.key}) as client:
        ids: list[str] = []
        for start in range(0, len(features), 100):
            batch = client.post(f"{services.model_url}/predict", json={"instances": features[start : start + 100]})
            ids += [p["prediction_id"] for p in batch.raise_for_status().json()["predictions"]]
        for prediction_id, label in zip(ids, labels, strict=True):
            feedback = {"prediction_id": prediction_id, "label": label}
            client.post(f"{services.model_url}/feedback", json=feedback).raise_for_status()
        deadline = time.monotonic() + 60
        while client.get(f"{services.monitor_url}/drift").json().get("status") == "insufficient_data":
            assert time.monotonic() < deadline, "the monitor reported no window within 60 s"
            time.sleep(0.2)


@pytest.fixture(scope="session")
def keyed_services(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyedServices]:
    """Shared by the fuzz and load tests (started once, ~10 s): a window of traffic is already reported."""
    from tests.fault.procs import start, wait_live

    workdir = tmp_path_factory.mktemp("keyed")
    with LocalRedisServer() as server:
        env = {"REDIS_URL": server.url, "DRIFTWATCH_API_KEY": API_KEY, "DRIFTWATCH_WINDOW_SIZE": str(STACK_WINDOW),
               "DRIFTWATCH_SPILL_DIR": str(workdir / "spill")}
        model = start("serve", env, workdir, "model", "--model-dir", str(model_dir))
        monitor = start("monitor", env, workdir, "monitor")
        try:
            for service in (model, monitor):
                wait_live(service)
                wait_for_http(f"{service.url}/readyz", timeout_s=60, processes=[service.process])
            services = KeyedServices(model.url, monitor.url, API_KEY, server)
            _seed_traffic(services, model_dir)
            yield services
        finally:
            for service in (model, monitor):
                service.signal(signal.SIGTERM)
            for service in (model, monitor):
                try:
                    service.wait(30)
                except subprocess.TimeoutExpired:
                    service.stop()
