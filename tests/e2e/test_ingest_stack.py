"""Models Driftwatch does not serve, end to end as real processes: ``driftwatch register`` from a CSV,
an ingest-only ``driftwatch serve``, one ``driftwatch monitor`` for every registered model. One model
logs over raw HTTP with missing values, another through KServe-shaped CloudEvents; the monitor counts
each model's predictions once and reports drift windows for both."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from driftwatch.local_processes import LocalRedisServer, free_port, wait_for_http

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
WINDOW = 200
FEATURES = ["age", "income", "tenure"]


def _reference_csv(path: Path, rows: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 3))
    p_leave = 1 / (1 + np.exp(-x[:, 0]))
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*FEATURES, "predicted", "p_stay", "p_leave"])
        for row, p in zip(x.round(5).tolist(), p_leave.round(5).tolist(), strict=True):
            writer.writerow([*row, "leave" if p > 0.5 else "stay", round(1 - p, 5), p])


def _wait(check: Callable[[], bool], timeout_s: float = 120.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"{what} not met in {timeout_s}s"
        time.sleep(0.2)


@pytest.fixture
def services(tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    with LocalRedisServer() as redis:
        env = {**os.environ, "REDIS_URL": redis.url, "OTEL_SDK_DISABLED": "true", "DRIFTWATCH_WINDOW_SIZE": str(WINDOW),
               "DRIFTWATCH_SPILL_DIR": str(tmp_path / "spill"), "DRIFTWATCH_PROTECT_KSERVE": "false"}
        ports = free_port(), free_port()
        processes = [
            subprocess.Popen([sys.executable, "-m", "driftwatch.cli", "serve", "--port", str(ports[0])], env=env),
            subprocess.Popen([sys.executable, "-m", "driftwatch.cli", "monitor", "--port", str(ports[1])], env=env),
        ]
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        try:
            for url in urls:
                wait_for_http(f"{url}/livez", timeout_s=90, processes=processes)
            yield urls[0], urls[1], redis.url
        finally:
            for process in processes:
                process.send_signal(signal.SIGTERM)
            for process in processes:
                assert process.wait(timeout=60) in (0, -signal.SIGTERM)


def _register(name: str, csv_path: Path, redis_url: str, *extra: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "driftwatch.cli", "register", "--name", name, "--version", "1", "--reference",
         str(csv_path), *extra], check=True, env={**os.environ, "REDIS_URL": redis_url}, timeout=120,
    )  # fmt: skip


def _kserve_headers(kind: str, ce_id: str) -> dict[str, str]:
    return {"ce-specversion": "1.0", "ce-type": f"org.kubeflow.serving.inference.{kind}",
            "ce-source": "http://localhost:9081/", "ce-id": ce_id, "ce-time": "2026-01-30T10:45:00Z",
            "ce-inferenceservicename": "churn-kserve", "ce-namespace": "default", "ce-component": "predictor",
            "content-type": "application/json"}  # fmt: skip


def test_two_logged_models_are_counted_once_each_and_get_drift_windows(
    services: tuple[str, str, str], tmp_path: Path
) -> None:
    model_url, monitor_url, redis_url = services
    reference = tmp_path / "reference.csv"
    _reference_csv(reference, 2_000, seed=0)
    roles = ["--prediction-column", "predicted", "--probability-columns", "p_stay,p_leave",
             "--class-names", "stay,leave", "--categorical", "none"]
    _register("churn", reference, redis_url, *roles)
    _register("churn-kserve", reference, redis_url, *roles)

    rng = np.random.default_rng(1)
    x = rng.normal(size=(2 * WINDOW, 3)).round(5)
    p = (1 / (1 + np.exp(-x[:, 0]))).round(5)
    with httpx.Client(timeout=30) as client:
        rows: list[dict[str, Any]] = []
        for i in range(2 * WINDOW):
            features: list[float | None] = x[i].tolist()
            if i % 10 == 0:
                features[1] = None  # missing income, one row in ten
            rows.append({"id": f"r{i}", "features": features, "prediction": "leave" if p[i] > 0.5 else "stay",
                         "probabilities": [round(1 - p[i], 5), p[i]]})
        for start in range(0, len(rows), 100):
            answer = client.post(f"{model_url}/models/churn/predictions", json={"rows": rows[start:start + 100]})
            assert answer.status_code == 202, answer.text
        for i in range(WINDOW + 20):
            request = {"instances": [x[i].tolist()]}
            response = {"predictions": [[round(1 - p[i], 5), p[i]]]}
            halves = [("request", request), ("response", response)]
            for kind, body in reversed(halves) if i % 2 else halves:  # both orders
                headers = _kserve_headers(kind, f"k{i}")
                sent = client.post(f"{model_url}/kserve", content=json.dumps(body), headers=headers)
                assert sent.status_code == 200, sent.text

        def counted(model: str, n: int) -> bool:
            report = client.get(f"{monitor_url}/models/{model}/performance")
            return report.status_code == 200 and report.json()["predictions"] == n

        _wait(lambda: counted("churn", 2 * WINDOW), what="churn counted")
        _wait(lambda: counted("churn-kserve", WINDOW + 20), what="churn-kserve counted")
        def reports(model: str) -> list[dict[str, Any]]:
            return list(client.get(f"{monitor_url}/models/{model}/drift/history").json()["reports"])

        _wait(lambda: len(reports("churn")) == 2, what="both churn windows reported")
        _wait(lambda: len(reports("churn-kserve")) == 1, what="the churn-kserve window reported")
        assert sorted(r["window"] for r in reports("churn")) == [0, 1]
        assert all(r["window_size"] == WINDOW for r in reports("churn") + reports("churn-kserve"))
