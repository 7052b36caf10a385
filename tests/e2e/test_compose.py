"""The compose stack for real: build the image, start it, send traffic, read metrics.

Opt-in (it builds an image with TensorFlow in a builder stage: minutes the
first time). Runs when ``DRIFTWATCH_COMPOSE_E2E=1`` and a Docker engine answers::

    eval "$(../shared/containers/docker-up.sh)"      # here: a local engine + stand-in images
    DRIFTWATCH_COMPOSE_E2E=1 .venv/bin/pytest -m docker tests/e2e/test_compose.py

No Collector image exists on the test machines: ``deploy/compose.e2e.yml``
runs the project's OTLP test receiver in its place, and the test reads what it
received over HTTP. Prometheus and Alertmanager run from the Debian stand-in
images; Prometheus scrapes the services' own endpoints. Every host port is a
free one (nothing standard is assumed free: Redis, PostgreSQL... already listen
here). Grafana is not started (no image): its dashboard's queries are checked
against the series this run's Prometheus has.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import numpy as np
import pytest
import yaml

from driftwatch.local_processes import free_port
from tests.support.prom_stack import alert_rules_for_test, poll, undocumented

ROOT = Path(__file__).resolve().parents[2]
# Another name when two checkouts share one engine (DRIFTWATCH_COMPOSE_PROJECT).
PROJECT = os.environ.get("DRIFTWATCH_COMPOSE_PROJECT", "dwtest")
SERVICES = ["redis", "model-service", "monitor", "otel-collector", "prometheus", "alertmanager"]
WINDOW = 200
MONITORS = 2  # replicas: one consumer group, one host port each from a range
T = TypeVar("T")

pytestmark = [pytest.mark.docker, pytest.mark.timeout(3600)]


def _compose_command() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


def _skip_reason() -> str | None:
    if os.environ.get("DRIFTWATCH_COMPOSE_E2E") != "1":
        return "compose e2e is opt-in: set DRIFTWATCH_COMPOSE_E2E=1 (it builds the image)"
    if shutil.which("docker") is None:
        return "no docker CLI on PATH"
    info = subprocess.run(["docker", "info"], capture_output=True, timeout=60)
    if info.returncode != 0:
        return (
            "no Docker engine answers (DOCKER_HOST="
            f"{os.environ.get('DOCKER_HOST', '<unset>')}); here run "
            'eval "$(../shared/containers/docker-up.sh)" first'
        )
    if _compose_command() is None:
        return "neither docker-compose nor `docker compose` is available"
    return None


def free_port_range(n: int) -> int:
    """First port of ``n`` consecutive free ports (monitor replicas publish from a range)."""
    rng = np.random.default_rng()
    for _ in range(200):
        base = int(rng.integers(20_000, 60_000))
        socks = []
        try:
            for port in range(base, base + n):
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError(f"no {n} consecutive free ports")


@dataclass
class Stack:
    model_url: str
    monitor_urls: list[str]
    receiver_url: str
    redis_port: int
    compose: list[str]
    env: dict[str, str]
    prometheus_url: str = ""
    alertmanager_url: str = ""

    def run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.compose, *args], cwd=ROOT, env=self.env, capture_output=True, text=True,
            timeout=timeout,
        )  # fmt: skip


def _prometheus_files(directory: Path) -> dict[str, str]:
    """The shipped scrape config and alert rules with test intervals, readable by the container's user."""
    directory.chmod(0o755)
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.scrape.yml").read_text())
    config["global"].update(scrape_interval="2s", evaluation_interval="1s")
    for job in config["scrape_configs"]:
        for sd in job.get("dns_sd_configs", []):
            sd["refresh_interval"] = "2s"
    paths = {"E2E_PROMETHEUS_CONFIG": directory / "prometheus.yml", "E2E_ALERT_RULES": directory / "alerts.yml"}
    paths["E2E_PROMETHEUS_CONFIG"].write_text(yaml.safe_dump(config))
    paths["E2E_ALERT_RULES"].write_text(yaml.safe_dump(alert_rules_for_test()))
    for path in paths.values():
        path.chmod(0o644)
    return {k: str(v) for k, v in paths.items()}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    compose = [*(_compose_command() or []), "-f", "docker-compose.yml",
               "-f", "deploy/compose.e2e.yml", "-p", PROJECT]  # fmt: skip
    ports = {name: free_port() for name in ("model", "redis", "grpc", "http", "prometheus", "alertmanager")}
    monitor_base = free_port_range(MONITORS)
    env = {
        **os.environ,
        "REDIS_PASSWORD": secrets.token_urlsafe(18),
        "DRIFTWATCH_BIND": "127.0.0.1",
        "MODEL_SERVICE_HOST_PORT": str(ports["model"]),
        "MONITOR_HOST_PORTS": f"{monitor_base}-{monitor_base + MONITORS - 1}",
        "REDIS_HOST_PORT": str(ports["redis"]),
        "OTLP_GRPC_HOST_PORT": str(ports["grpc"]),
        "OTLP_HTTP_HOST_PORT": str(ports["http"]),
        "DRIFTWATCH_WINDOW_SIZE": str(WINDOW),
        "PROMETHEUS_HOST_PORT": str(ports["prometheus"]),
        "ALERTMANAGER_HOST_PORT": str(ports["alertmanager"]),
        "MONITOR_EXTERNAL_URL": f"http://127.0.0.1:{monitor_base}",
        **_prometheus_files(tmp_path_factory.mktemp("prometheus")),
    }
    st = Stack(
        model_url=f"http://127.0.0.1:{ports['model']}",
        monitor_urls=[f"http://127.0.0.1:{monitor_base + i}" for i in range(MONITORS)],
        receiver_url=f"http://127.0.0.1:{ports['http']}",
        redis_port=ports["redis"],
        compose=compose,
        env=env,
        prometheus_url=f"http://127.0.0.1:{ports['prometheus']}",
        alertmanager_url=f"http://127.0.0.1:{ports['alertmanager']}",
    )
    st.run("down", "-v", "--remove-orphans", timeout=300)  # leftovers of an aborted run
    up = st.run("up", "-d", "--build", "--scale", f"monitor={MONITORS}", *SERVICES, timeout=3000)
    try:
        assert up.returncode == 0, f"compose up failed:\n{up.stdout[-4000:]}\n{up.stderr[-4000:]}"
        for url in (st.model_url, *st.monitor_urls):
            poll(f"{url}/readyz", lambda u=url: True if httpx.get(f"{u}/readyz", timeout=5)
                  .status_code == 200 else None, timeout_s=240, every_s=2)  # fmt: skip
        yield st
    except BaseException:
        logs = st.run("logs", "--no-color", "--tail", "60", timeout=120)
        print(logs.stdout[-12000:], logs.stderr[-2000:])
        raise
    finally:
        down = st.run("down", "-v", "--remove-orphans", timeout=300)
        if down.returncode != 0:
            print("compose down failed:", down.stderr[-2000:])


def test_redis_requires_the_password_and_is_local_only(stack: Stack) -> None:
    with socket.create_connection(("127.0.0.1", stack.redis_port), timeout=5) as sock:
        sock.sendall(b"PING\r\n")
        assert sock.recv(64).startswith(b"-NOAUTH")
    ps = stack.run("port", "redis", "6379", timeout=60)
    assert ps.stdout.strip().startswith("127.0.0.1:"), ps.stdout


def test_predictions_feedback_drift_and_metrics(stack: Stack) -> None:
    rng = np.random.default_rng(0)
    rows = rng.integers(0, 17, size=(2 * WINDOW + 10, 64)).astype(float)
    predictions: list[dict[str, Any]] = []
    with httpx.Client(timeout=30) as client:
        one = client.post(f"{stack.model_url}/predict", json={"features": rows[0].tolist()})
        assert one.status_code == 200, one.text
        body = one.json()
        assert {"prediction_id", "class"} <= set(body)
        predictions.append(body)
        for start in range(1, len(rows), 50):
            batch = rows[start : start + 50].tolist()
            resp = client.post(f"{stack.model_url}/predict", json={"instances": batch})
            assert resp.status_code == 200, resp.text
            predictions.extend(resp.json()["predictions"])
        bad = client.post(f"{stack.model_url}/predict", json={"features": [1.0, 2.0]})
        assert bad.status_code == 422
        for p in predictions[:100]:
            resp = client.post(
                f"{stack.model_url}/feedback",
                json={"prediction_id": p["prediction_id"], "label": int(p["class"])},
            )
            assert resp.status_code in (200, 202), resp.text

        def drift_ready() -> dict[str, Any] | None:
            report = client.get(f"{stack.monitor_urls[0]}/drift").json()
            return report if report.get("status") != "insufficient_data" else None

        report = poll("a drift report from the monitor", drift_ready, timeout_s=180, every_s=2)
        assert report["features"] and "dataset_drift" in report
        # Every replica answers from the shared state in Redis (polled: the next
        # window's report may land between two replicas' answers).
        def replicas_agree() -> list[int] | None:
            windows = [client.get(f"{url}/drift").json().get("window") for url in stack.monitor_urls]
            return windows if windows[0] is not None and len(set(windows)) == 1 else None

        poll("every replica to answer the same latest report", replicas_agree, timeout_s=60, every_s=1)
        for url in stack.monitor_urls:
            assert client.get(f"{url}/performance").status_code == 200

    expected = {
        "model-service": {
            "http.server.request.duration", "driftwatch.inference.duration",
            "driftwatch.predictions", "driftwatch.events.published",
            "process.cpu.time", "process.memory.usage",
        },
        "monitor": {
            "http.server.request.duration", "driftwatch.events.processed",
            "driftwatch.feature.drift.statistic", "driftwatch.dataset.drift.share",
            "process.cpu.time", "process.memory.usage",
        },
    }  # fmt: skip

    def received() -> dict[str, set[str]] | None:
        points = httpx.get(f"{stack.receiver_url}/points", timeout=10).json()
        by_service: dict[str, set[str]] = {}
        for p in points:
            by_service.setdefault(p["resource"].get("service.name", "?"), set()).add(p["name"])
        done = all(names <= by_service.get(svc, set()) for svc, names in expected.items())
        return by_service if done else None

    try:
        poll("metrics of both services at the OTLP receiver", received, timeout_s=90, every_s=3)
    except AssertionError:
        points = httpx.get(f"{stack.receiver_url}/points", timeout=10).json()
        got: dict[str, set[str]] = {}
        for p in points:
            got.setdefault(p["resource"].get("service.name", "?"), set()).add(p["name"])
        missing = {svc: sorted(n - got.get(svc, set())) for svc, n in expected.items()}
        raise AssertionError(f"metrics missing at the receiver: {missing}") from None

    def all_counted() -> list[dict[str, Any]] | None:
        # Cumulative counter: the latest export of the model service carries the total.
        points = httpx.get(f"{stack.receiver_url}/points", timeout=10).json()
        mine = [p for p in points if p["name"] == "driftwatch.predictions"
                and p["resource"]["service.name"] == "model-service"]  # fmt: skip
        last = max(p["time_unix_nano"] for p in mine)
        served = sum(p["value"] for p in mine if p["time_unix_nano"] == last)
        return points if served == len(predictions) else None

    points = poll("driftwatch.predictions to count every prediction", all_counted, timeout_s=30)
    routes = {p["attributes"].get("http.route") for p in points
              if p["name"] == "http.server.request.duration"}  # fmt: skip
    assert "/predict" in routes
    assert all(p["transport"] == "grpc" for p in points)
    # Each replica exports under its own service.instance.id (Prometheus `instance`).
    monitor_instances = {p["resource"]["service.instance.id"] for p in points
                         if p["resource"]["service.name"] == "monitor"}  # fmt: skip
    assert len(monitor_instances) == MONITORS


def _send_windows(client: httpx.Client, stack: Stack, rows: np.ndarray) -> tuple[int, list[dict[str, Any]]]:
    """Post ``rows`` after topping up the window in progress with their first rows.

    Returns the index of the last window they fill and the predictions."""
    progress = client.get(f"{stack.monitor_urls[0]}/drift/window").json()
    top_up = (WINDOW - progress["filled"]) % WINDOW
    batch = np.concatenate([rows[:top_up], rows]) if top_up else rows
    predictions: list[dict[str, Any]] = []
    for start in range(0, len(batch), 100):
        resp = client.post(f"{stack.model_url}/predict", json={"instances": batch[start : start + 100].tolist()})
        assert resp.status_code == 200, resp.text
        predictions += resp.json()["predictions"]
    return int(progress["window"]) + (1 if top_up else 0) + len(rows) // WINDOW - 1, predictions


def _prom(stack: Stack, path: str, **params: str) -> Any:
    body = httpx.get(f"{stack.prometheus_url}/api/v1/{path}", params=params, timeout=10).json()
    assert body["status"] == "success", body
    return body["data"]


def _am_alerts(stack: Stack) -> list[dict[str, Any]]:
    return list(httpx.get(f"{stack.alertmanager_url}/api/v2/alerts", timeout=10).json())


def test_drift_alert_fires_in_prometheus_and_alertmanager_then_resolves(stack: Stack) -> None:
    """Prometheus (scraping the services) and the monitor both alert on a drift episode; Alertmanager shows
    one alert per rule and model, then none once clean traffic ends the episode."""
    from sklearn.datasets import load_digits

    rng = np.random.default_rng(7)
    with httpx.Client(timeout=30) as client:
        last, predictions = _send_windows(client, stack, rng.integers(0, 17, size=(2 * WINDOW, 64)).astype(float))
        for p in predictions[:50]:  # labels, so accuracy and coverage are exported (the dashboard shows them)
            fed = client.post(f"{stack.model_url}/feedback", json={"prediction_id": p["prediction_id"], "label": 0})
            assert fed.status_code in (200, 202), fed.text
        poll(f"drift report of window {last}", lambda: True if client.get(f"{stack.monitor_urls[0]}/drift")
              .json().get("window") == last else None, timeout_s=120, every_s=2)  # fmt: skip

        def series() -> list[dict[str, str]] | None:
            got = _prom(stack, "series", **{"match[]": '{__name__=~"driftwatch_.*"}'})
            return got if {"driftwatch_dataset_drift_detected", "driftwatch_predictions_total"} <= {
                s["__name__"] for s in got} else None  # fmt: skip

        scraped = poll("driftwatch_* series in Prometheus", series, timeout_s=120, every_s=2)
        assert undocumented(scraped) == []
        up = _prom(stack, "query", query="up")["result"]
        assert sorted((r["metric"]["job"], r["value"][1]) for r in up) == sorted(
            [("model-service", "1")] + [("monitor", "1")] * MONITORS
        ), up

        # Grafana is not run here: every series its dashboard queries must exist in this Prometheus.
        from tests.unit.shared.test_deploy_configs import _dashboard_exprs, metric_names_in

        queried = set().union(*(metric_names_in(e) for e in _dashboard_exprs()))
        names = set(_prom(stack, "label/__name__/values"))
        assert queried - names == set(), f"dashboard panels query series Prometheus does not have: {queried - names}"

        def firing_in_prometheus() -> dict[str, Any] | None:
            alerts = _prom(stack, "alerts")["alerts"]
            drift = [a for a in alerts if a["labels"]["alertname"] == "DriftwatchDatasetDrift"]
            hits = [a for a in drift if a["state"] == "firing"]
            return hits[0] if hits else None

        prom_alert = poll("DriftwatchDatasetDrift firing in Prometheus", firing_in_prometheus, timeout_s=90, every_s=2)
        assert prom_alert["labels"]["model"] == "digits-mlp"

        def both_in_alertmanager() -> list[dict[str, Any]] | None:
            alerts = _am_alerts(stack)
            names = {a["labels"]["alertname"] for a in alerts}
            return alerts if {"DatasetDrift", "DriftwatchDatasetDrift"} <= names else None

        alerts = poll("both drift alerts in Alertmanager", both_in_alertmanager, timeout_s=90, every_s=2)
        per_rule = {}
        for a in alerts:
            if "model" in a["labels"]:
                key = (a["labels"]["alertname"], a["labels"]["model"])
                per_rule[key] = per_rule.get(key, 0) + 1
        assert set(per_rule.values()) == {1}, per_rule
        (ours,) = (a for a in alerts if a["labels"]["alertname"] == "DatasetDrift")
        assert ours["status"]["state"] == "active"
        assert ours["labels"] == {"alertname": "DatasetDrift", "model": "digits-mlp", "severity": "warning",
                                  "model_version": ours["labels"].get("model_version")}
        assert ours["labels"]["model_version"]  # the version whose window fired it
        assert ours["annotations"]["drifted_features"] and not any("feature" in a["labels"] for a in alerts)
        report_url = ours["annotations"]["report_url"]
        assert report_url.startswith(f"{stack.monitor_urls[0]}/models/digits-mlp/drift/windows/")
        assert "?version=" in report_url
        assert client.get(report_url).json()["dataset_drift"] is True
        print(f"\ncompose: {len(alerts)} alerts in Alertmanager during the episode: {sorted(per_rule)}")

        # Clean traffic ends the episode: the monitor resolves its alert, Prometheus stops firing.
        digits = load_digits().data
        clean = digits[rng.permutation(len(digits))[: 2 * WINDOW]]
        last, _ = _send_windows(client, stack, clean)
        poll(f"drift report of window {last}", lambda: True if client.get(f"{stack.monitor_urls[0]}/drift")
              .json().get("window") == last else None, timeout_s=120, every_s=2)  # fmt: skip

        def drift_alerts_gone() -> bool | None:
            names = {a["labels"]["alertname"] for a in _am_alerts(stack)}
            return True if not names & {"DatasetDrift", "DriftwatchDatasetDrift"} else None

        poll("the drift alerts to resolve in Alertmanager", drift_alerts_gone, timeout_s=120, every_s=2)
        history = client.get(f"{stack.monitor_urls[0]}/alerts/history").json()["transitions"]
        episode = [(h["from_state"], h["to_state"]) for h in history if h["alertname"] == "DatasetDrift"]
        assert ("firing", "resolved") in episode
