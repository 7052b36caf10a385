"""Real Prometheus and Alertmanager processes for tests: Debian's binaries, free ports, generated configs.

Each runs in its own temporary directory (config and storage) and is stopped
when the ``with`` block ends. Alertmanager gets ``--cluster.listen-address=``
(empty): no gossip on the standard 9094, which another process may hold here.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx
import pytest
import yaml

from driftwatch.local_processes import free_port, wait_for_http

ROOT = Path(__file__).resolve().parents[2]
ALERTS_YML = ROOT / "deploy" / "prometheus" / "alerts.yml"
ALERTMANAGER_YML = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
T = TypeVar("T")


def binary(name: str) -> str:
    found = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if found is None:
        pytest.fail(f"{name} is not installed: run scripts/install-system-packages.sh")
    return found


def poll(what: str, fn: Callable[[], T | None], timeout_s: float, every_s: float = 0.25) -> T:
    """``fn()`` once it returns something other than None; fails naming ``what`` after the deadline."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            got = fn()
            if got is not None:
                return got
        except (httpx.HTTPError, OSError, ValueError, KeyError) as exc:
            last = exc
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what} (last error: {last!r})")


class _Process:
    def __init__(self, workdir: Path, name: str) -> None:
        self.workdir = workdir
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def _start(self, args: list[str]) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=self.workdir)
        try:
            wait_for_http(f"{self.url}/-/ready", timeout_s=60, processes=[self.process])
        except RuntimeError as exc:
            self.stop()
            raise AssertionError(f"{self.name} did not start: {exc}\n{self.tail()}") from None

    def tail(self, n: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()


class Alertmanager(_Process):
    """The shipped alertmanager.yml with test timers and a webhook receiver at ``webhook_url``."""

    def __init__(self, workdir: Path, webhook_url: str) -> None:
        super().__init__(workdir, "alertmanager")
        config = yaml.safe_load(ALERTMANAGER_YML.read_text())
        # Same grouping and inhibition as shipped; timers short enough for a test.
        config["route"].update(group_wait="1s", group_interval="1s", repeat_interval="1h")
        for receiver in config["receivers"]:
            receiver["webhook_configs"] = [{"url": webhook_url, "send_resolved": True}]
        self.config = workdir / "alertmanager.yml"
        self.config.write_text(yaml.safe_dump(config))

    def __enter__(self) -> Alertmanager:
        (self.workdir / "data").mkdir(exist_ok=True)
        self._start([
            binary("prometheus-alertmanager"), f"--config.file={self.config}",
            f"--storage.path={self.workdir / 'data'}", f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",
        ])  # fmt: skip
        return self

    def alerts(self, **params: str) -> list[dict[str, Any]]:
        """``GET /api/v2/alerts`` (active, silenced and inhibited; resolved ones are not listed)."""
        response = httpx.get(f"{self.url}/api/v2/alerts", params=params, timeout=5)
        response.raise_for_status()
        return list(response.json())


def alert_rules_for_test(for_override: str = "2s") -> dict[str, Any]:
    """alerts.yml with every ``for`` shortened to ``for_override``; expressions, labels and annotations as shipped.

    The ``for`` durations themselves are covered by ``promtool test rules``
    (deploy/prometheus/alerts.test.yml); here the expressions meet real series.
    """
    doc = yaml.safe_load(ALERTS_YML.read_text())
    for group in doc["groups"]:
        group["interval"] = "1s"
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = for_override
    return dict(doc)


class Prometheus(_Process):
    """Prometheus scraping ``targets`` (job -> host:port), evaluating alerts.yml every second."""

    def __init__(self, workdir: Path, targets: dict[str, str], alertmanager_url: str | None = None) -> None:
        super().__init__(workdir, "prometheus")
        (workdir / "alerts.yml").write_text(yaml.safe_dump(alert_rules_for_test()))
        config: dict[str, Any] = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": ["alerts.yml"],
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": [target]}]} for job, target in targets.items()
            ],
        }
        if alertmanager_url is not None:
            host = alertmanager_url.split("://", 1)[1]
            config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [host]}]}]}
        self.config = workdir / "prometheus.yml"
        self.config.write_text(yaml.safe_dump(config))

    def __enter__(self) -> Prometheus:
        self._start([
            binary("prometheus"), f"--config.file={self.config}", f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
        ])  # fmt: skip
        return self

    def api(self, path: str, **params: str) -> Any:
        response = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=5)
        response.raise_for_status()
        body = response.json()
        assert body["status"] == "success", body
        return body["data"]


# Labels Prometheus adds (job, instance) and the SDK reader's instrumentation scope.
SCRAPE_LABELS = frozenset(
    {"__name__", "job", "instance", "otel_scope_name", "otel_scope_version", "otel_scope_schema_url"}
)


def undocumented(series: list[dict[str, str]]) -> list[str]:
    """What is wrong with ``driftwatch_*`` series as Prometheus has them, against deploy/METRICS.md.

    Each must have a catalogue name (the Collector's naming) and carry the
    documented labels only, ``model`` among them; an empty list means all is well.
    """
    from shared.telemetry.catalogue import CATALOGUE, prometheus_label

    documented = {
        name: {prometheus_label(a) for a in spec.attributes} for spec in CATALOGUE for name in spec.prometheus_series
    }
    problems = []
    for s in series:
        name = s["__name__"]
        if name not in documented:
            problems.append(f"{name} is not in the catalogue (deploy/METRICS.md)")
            continue
        labels = set(s) - SCRAPE_LABELS - {"le"}
        if not labels <= documented[name]:
            problems.append(f"{name}: undocumented labels {sorted(labels - documented[name])}")
        if "model" not in labels:
            problems.append(f"{name} has no model label")
    return problems
