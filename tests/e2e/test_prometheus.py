"""A real Prometheus (Debian's 2.42) scrapes both services' own endpoints while covariate-shifted traffic flows.

The services run as processes with ``OTEL_METRICS_EXPORTER=prometheus``; no
Collector sits in between. Through Prometheus's HTTP API: every
``driftwatch_*`` series has a name of the catalogue (the Collector's names,
deploy/METRICS.md) and exactly the documented labels, and the drift alert of
deploy/prometheus/alerts.yml fires in Prometheus's own rule engine (its ``for``
shortened: promtool's unit tests cover the durations).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import redis

from driftwatch.cli.simulate import Scenario, make_traffic, send_traffic
from driftwatch.local_processes import LocalRedisServer, free_port, wait_for_http
from shared.telemetry.catalogue import CATALOGUE
from tests.support.prom_stack import SCRAPE_LABELS, Prometheus, poll, undocumented

pytestmark = pytest.mark.e2e

WINDOW = 150
DRIFTWATCH = Path(sys.executable).with_name("driftwatch")
# Present in this run: traffic, a drift window, stream stats (no feedback, no drops).
EXPECTED = {
    "driftwatch_inference_duration_seconds_count", "driftwatch_predictions_total",
    "driftwatch_events_published_total", "driftwatch_events_processed_total",
    "driftwatch_feature_drift_statistic", "driftwatch_feature_drift_p_value_ratio",
    "driftwatch_feature_drift_effect_size", "driftwatch_feature_drift_detected",
    "driftwatch_dataset_drift_detected", "driftwatch_dataset_drift_share_ratio",
    "driftwatch_prediction_drift_p_value_ratio", "driftwatch_stream_lag",
}  # fmt: skip


@dataclass
class Service:
    process: subprocess.Popen[bytes]
    url: str
    metrics: str
    log: Path


def _start(command: str, env: dict[str, str], workdir: Path, *args: str) -> Service:
    port, metrics_port = free_port(), free_port()
    log = workdir / f"{command}.log"
    full_env = {
        **{k: v for k, v in os.environ.items() if k != "OTEL_SDK_DISABLED"},
        "OTEL_METRICS_EXPORTER": "prometheus",
        "OTEL_EXPORTER_PROMETHEUS_HOST": "127.0.0.1",
        "OTEL_EXPORTER_PROMETHEUS_PORT": str(metrics_port),
        **env,
    }
    with log.open("ab") as out:
        process = subprocess.Popen(
            [str(DRIFTWATCH), command, "--port", str(port), *args],
            env=full_env, stdout=out, stderr=subprocess.STDOUT, cwd=workdir,
        )  # fmt: skip
    service = Service(process, f"http://127.0.0.1:{port}", f"127.0.0.1:{metrics_port}", log)
    try:
        wait_for_http(f"{service.url}/livez", timeout_s=90, processes=[process])
    except RuntimeError as exc:
        process.kill()
        raise AssertionError(f"{exc}\n{log.read_text(errors='replace')[-3000:]}") from None
    return service


@pytest.fixture(scope="module")
def services(
    model_dir: Path, redis_server: LocalRedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Service]]:
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    workdir = tmp_path_factory.mktemp("scraped")
    common = {"REDIS_URL": redis_server.url}
    started: dict[str, Service] = {}
    try:
        started["model-service"] = _start("serve", common, workdir, "--model-dir", str(model_dir))
        started["monitor"] = _start(
            "monitor", {**common, "DRIFTWATCH_WINDOW_SIZE": str(WINDOW), "DRIFTWATCH_READ_BLOCK_MS": "50"}, workdir
        )
        yield started
    finally:
        for service in started.values():
            service.process.send_signal(signal.SIGTERM)
        for service in started.values():
            try:
                service.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                service.process.kill()


def test_prometheus_scrapes_both_services_and_fires_the_drift_alert(
    services: dict[str, Service], model_dir: Path, tmp_path: Path
) -> None:
    targets = {job: s.metrics for job, s in services.items()}
    with Prometheus(tmp_path, targets) as prom:
        with np.load(model_dir / "holdout.npz") as holdout:
            x, y = holdout["features"], holdout["labels"]
        with httpx.Client(timeout=30) as client:
            for seed in (1, 2):
                traffic = make_traffic(Scenario.covariate_shift, x, y, WINDOW, seed, window=WINDOW)
                send_traffic(client, services["model-service"].url, traffic, batch=50)

        def scraped() -> list[dict[str, str]] | None:
            series = prom.api("series", **{"match[]": '{__name__=~"driftwatch_.*"}'})
            names = {s["__name__"] for s in series}
            return series if names >= EXPECTED else None

        series = poll("the driftwatch_* series in Prometheus", scraped, timeout_s=90)
        up = prom.api("query", query="up")["result"]
        assert {(r["metric"]["job"], r["value"][1]) for r in up} == {("model-service", "1"), ("monitor", "1")}

        def firing() -> dict[str, Any] | None:
            alerts = prom.api("alerts")["alerts"]
            drift = [a for a in alerts if a["labels"]["alertname"] == "DriftwatchDatasetDrift"]
            hits = [a for a in drift if a["state"] == "firing"]
            return hits[0] if hits else None

        alert = poll("DriftwatchDatasetDrift to fire in Prometheus", firing, timeout_s=60)
        assert alert["labels"] == {
            "alertname": "DriftwatchDatasetDrift", "model": "digits-mlp", "model_version": "1", "severity": "warning",
        }  # fmt: skip
        assert alert["annotations"]["summary"] == "Input drift on digits-mlp v1"

    assert undocumented(series) == []
    monitor_names = {spec.prometheus_name for spec in CATALOGUE if spec.service == "monitor"}
    for s in series:
        assert s["job"] == ("monitor" if s["__name__"] in monitor_names else "model-service"), s
    shifted = [s for s in series if s["__name__"] == "driftwatch_feature_drift_detected"]
    assert len(shifted) == 64 and all(set(s) - SCRAPE_LABELS == {"model", "model_version", "feature", "test"}
                                      for s in shifted)  # fmt: skip

