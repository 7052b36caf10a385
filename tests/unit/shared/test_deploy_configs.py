"""The deployment files agree with the code and with the tools that read them.

- every metric an alert rule or the Grafana dashboard queries is one that
  ``shared/telemetry`` exports, under its Prometheus name (a renamed metric
  fails here, not silently in production);
- ``docker-compose.yml`` is valid against the compose specification and uses
  no key docker-compose 1.29 rejects;
- ``deploy/METRICS.md`` shows the current catalogue.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.telemetry.catalogue import CATALOGUE, markdown_table, prometheus_label, prometheus_series

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
# Labels Prometheus or the Collector add besides our attributes.
BUILTIN_LABELS = {"le", "job", "instance", "otel_scope_name"}
IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "rate", "irate", "increase", "by", "without", "on",
    "and", "or", "unless", "ignoring", "group_left", "group_right", "histogram_quantile",
    "absent", "bool", "offset", "topk", "bottomk", "label_values", "__rate_interval",
    "__all", "model", "clamp_min", "clamp_max", "abs", "delta", "deriv", "vector",
}  # fmt: skip


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _labels() -> set[str]:
    return {prometheus_label(a) for s in CATALOGUE for a in s.attributes} | BUILTIN_LABELS


def metric_names_in(expr: str) -> set[str]:
    """Series names in a PromQL expression (identifiers that are not labels,
    functions, keywords or inside string literals)."""
    without_strings = re.sub(r'"[^"]*"', '""', expr)
    without_durations = re.sub(r"\[[^\]]*\]", "", without_strings)
    found = set(IDENT.findall(without_durations))
    return {n for n in found if n not in PROMQL_WORDS and n not in _labels() and not n[0].isdigit()}


def _alert_rules() -> list[dict[str, Any]]:
    doc = _load(DEPLOY / "prometheus" / "alerts.yml")
    return [rule for group in doc["groups"] for rule in group["rules"]]


def _dashboard_exprs() -> list[str]:
    dash = json.loads((DEPLOY / "grafana" / "dashboards" / "driftwatch.json").read_text())
    return [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]


def test_metric_name_extraction() -> None:
    expr = 'sum by (job) (rate(http_server_request_duration_seconds_count{http_route="/x"}[5m]))'
    assert metric_names_in(expr) == {"http_server_request_duration_seconds_count"}


def test_alert_rules_query_exported_metrics() -> None:
    exported = prometheus_series() | {"up"}
    rules = _alert_rules()
    assert len(rules) >= 8
    for rule in rules:
        assert rule["alert"].startswith("Driftwatch")
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}
        assert rule["annotations"]["summary"]
        names = metric_names_in(rule["expr"])
        assert names, rule["alert"]
        assert names <= exported, f"{rule['alert']} queries unknown {sorted(names - exported)}"


def test_alerts_cover_drift_accuracy_errors_latency() -> None:
    used = set().union(*(metric_names_in(r["expr"]) for r in _alert_rules()))
    assert "driftwatch_dataset_drift_detected" in used
    assert "driftwatch_model_accuracy_ratio" in used
    assert "http_server_request_duration_seconds_count" in used
    assert "http_server_request_duration_seconds_bucket" in used
    assert "driftwatch_stream_lag" in used


def test_dashboard_queries_exported_metrics() -> None:
    exported = prometheus_series()
    exprs = _dashboard_exprs()
    used: set[str] = set()
    for expr in exprs:
        names = metric_names_in(expr)
        assert names, expr
        assert names <= exported, f"dashboard queries unknown {sorted(names - exported)}"
        used |= names
    for needed in (
        "driftwatch_feature_drift_statistic",
        "driftwatch_model_accuracy_ratio",
        "http_server_request_duration_seconds_bucket",
        "http_server_request_duration_seconds_count",
        "process_cpu_time_seconds_total",
        "process_memory_usage_bytes",
    ):
        assert needed in used


def test_grafana_provisioning_points_at_the_dashboard_and_datasource() -> None:
    ds = _load(DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml")
    uid = ds["datasources"][0]["uid"]
    assert ds["datasources"][0]["url"] == "http://prometheus:9090"
    dash = json.loads((DEPLOY / "grafana" / "dashboards" / "driftwatch.json").read_text())
    assert {p["datasource"]["uid"] for p in dash["panels"] if p["type"] != "row"} == {uid}
    prov = _load(DEPLOY / "grafana" / "provisioning" / "dashboards" / "driftwatch.yml")
    compose = _load(ROOT / "docker-compose.yml")
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./deploy/grafana/dashboards:{prov['providers'][0]['options']['path']}:ro" in mounts


def test_collector_config() -> None:
    cfg = _load(DEPLOY / "otel-collector.yaml")
    protocols = cfg["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert protocols["http"]["endpoint"] == "0.0.0.0:4318"
    pipeline = cfg["service"]["pipelines"]["metrics"]
    assert pipeline["processors"][0] == "memory_limiter"
    assert "batch" in pipeline["processors"]
    assert set(pipeline["exporters"]) == {"prometheus", "debug"}
    assert cfg["exporters"]["prometheus"]["endpoint"] == "0.0.0.0:8889"
    prom = _load(DEPLOY / "prometheus" / "prometheus.yml")
    targets = [t for sc in prom["scrape_configs"] for c in sc["static_configs"] for t in c["targets"]]
    assert "otel-collector:8889" in targets
    # Relative to the config file, so promtool checks it in the repository too.
    assert prom["rule_files"] == ["alerts.yml"]
    assert prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]


def test_metrics_md_shows_the_catalogue() -> None:
    assert markdown_table() in (DEPLOY / "METRICS.md").read_text()


def _check_jsonschema() -> list[str]:
    exe = Path(sys.executable).with_name("check-jsonschema")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("check-jsonschema")
    if found is None:
        pytest.skip("check-jsonschema not installed (dev extra)")
    return [found]


@pytest.mark.parametrize("name", ["docker-compose.yml", "deploy/compose.e2e.yml"])
def test_compose_files_match_the_compose_spec(name: str) -> None:
    result = subprocess.run(
        [*_check_jsonschema(), "--builtin-schema", "vendor.compose-spec", str(ROOT / name)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_avoids_keys_compose_v1_rejects_and_is_scalable() -> None:
    compose = _load(ROOT / "docker-compose.yml")
    assert "start_interval" not in json.dumps(compose)
    services = compose["services"]
    assert set(services) >= {"redis", "model-service", "monitor", "otel-collector",
                             "prometheus", "grafana"}  # fmt: skip
    for name, svc in services.items():
        for dep in (svc.get("depends_on") or {}).values():
            assert "required" not in dep, name
        assert "container_name" not in svc, name
        assert svc.get("restart") == "unless-stopped", name
    for name in ("redis", "model-service", "monitor"):
        assert "healthcheck" in services[name], name
    assert all(str(p).startswith("127.0.0.1:") for p in services["redis"]["ports"])
    assert "--requirepass" in " ".join(services["redis"]["command"])
    assert "--appendonly yes" in " ".join(services["redis"]["command"])
    for name in ("model-service", "monitor"):
        env = services[name]["environment"]
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4317"
        assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "grpc"
        assert env["OTEL_SEMCONV_STABILITY_OPT_IN"] == "http"
        assert env["REDIS_URL"].startswith("redis://:${REDIS_PASSWORD")
        deps = services[name]["depends_on"]
        assert deps["redis"]["condition"] == "service_healthy"
        assert "python" in services[name]["healthcheck"]["test"]
    # Replicas of the monitor publish from a range, not one fixed host port.
    assert "MONITOR_HOST_PORTS" in services["monitor"]["ports"][0]
    image = services["otel-collector"]["image"]
    assert image.startswith("otel/opentelemetry-collector-contrib:") and not image.endswith(":latest")


def test_env_example_documents_every_variable_compose_reads() -> None:
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", (ROOT / "docker-compose.yml").read_text()))
    documented = set(re.findall(r"^#?\s*([A-Z_][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), re.M))
    assert used <= documented, sorted(used - documented)


def test_dockerfile_rules() -> None:
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    assert "--mount" not in text  # legacy builder here
    assert "pip install -e" not in text
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", text, re.M)
    assert len(stages) >= 3
    runtime = text.split("AS runtime", 1)[1]
    assert "USER driftwatch" in runtime
    assert "train" not in runtime.replace("--from=trainer", "")
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".git", "models"} <= set(ignore)
