"""The Kubernetes manifests render with kustomize and are valid Kubernetes objects.

Each overlay under ``deploy/kubernetes/overlays`` is rendered with ``kubectl
kustomize`` (the real tool, as a user applies it) and every object is checked
against the Kubernetes OpenAPI schemas that ``kubernetes-validate`` ships (no
network). Then the properties the deployment relies on: probes on ``/livez`` and
``/readyz``, a consumer name per pod, non-root containers with resource requests,
a disruption budget per component, and no secret material outside the trial.
"""

from __future__ import annotations

import functools
import re
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
OVERLAYS = ROOT / "deploy" / "kubernetes" / "overlays"
KUBERNETES_VERSION = "1.30.0"
# Custom resources have no schema in kubernetes-validate; their shape is checked below.
CUSTOM_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor"), ("serving.kserve.io/v1beta1", "InferenceService")}

@functools.cache
def render(overlay: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        ["kubectl", "kustomize", str(OVERLAYS / overlay)], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def containers(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    return list(deployment["spec"]["template"]["spec"]["containers"])


OVERLAY_NAMES = sorted(p.name for p in OVERLAYS.iterdir() if p.is_dir())


def test_every_overlay_is_tested() -> None:
    assert {"production", "trial", "prometheus-operator", "kserve"} <= set(OVERLAY_NAMES)


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_objects_are_valid_kubernetes(overlay: str) -> None:
    objects = render(overlay)
    assert objects
    for obj in objects:
        if (obj["apiVersion"], obj["kind"]) in CUSTOM_KINDS:
            continue
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_probes_security_and_resources(overlay: str) -> None:
    objects = render(overlay)
    deployments = by_kind(objects, "Deployment") | by_kind(objects, "StatefulSet")
    assert deployments
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["automountServiceAccountToken"] is False, name
        for container in containers(deployment):
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, name
            assert container["securityContext"]["capabilities"]["drop"] == ["ALL"], name
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
            if name.startswith("driftwatch-") and name != "driftwatch-redis":
                assert container["livenessProbe"]["httpGet"]["path"] == "/livez", name
                assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_each_driftwatch_deployment_has_a_disruption_budget(overlay: str) -> None:
    objects = render(overlay)
    budgets = [b["spec"]["selector"]["matchLabels"] for b in by_kind(objects, "PodDisruptionBudget").values()]
    for name, deployment in by_kind(objects, "Deployment").items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert any(all(labels.get(k) == v for k, v in selector.items()) for selector in budgets), name


def test_monitor_consumer_name_is_the_pod_name() -> None:
    monitor = by_kind(render("production"), "Deployment")["driftwatch-monitor"]
    env = {e["name"]: e for e in containers(monitor)[0]["env"]}
    assert env["DRIFTWATCH_CONSUMER_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert monitor["spec"]["replicas"] == 3


def test_production_takes_redis_and_key_from_secrets_it_does_not_ship() -> None:
    objects = render("production")
    assert by_kind(objects, "Secret") == {}
    for deployment in by_kind(objects, "Deployment").values():
        env = {e["name"]: e for e in containers(deployment)[0]["env"]}
        assert env["REDIS_URL"]["valueFrom"]["secretKeyRef"]["name"] == "driftwatch-redis"
        assert env["DRIFTWATCH_API_KEY"]["valueFrom"]["secretKeyRef"]["optional"] is True


def test_trial_secret_reference_follows_the_generated_name() -> None:
    objects = render("trial")
    (secret_name,) = by_kind(objects, "Secret")
    assert secret_name.startswith("driftwatch-redis-")
    for deployment in by_kind(objects, "Deployment").values():
        env = {e["name"]: e for e in containers(deployment)[0]["env"]}
        assert env["REDIS_URL"]["valueFrom"]["secretKeyRef"]["name"] == secret_name


def test_service_monitor_scrapes_a_port_every_service_exposes() -> None:
    objects = render("prometheus-operator")
    (monitor,) = by_kind(objects, "ServiceMonitor").values()
    port = monitor["spec"]["endpoints"][0]["port"]
    selector = monitor["spec"]["selector"]["matchLabels"]
    services = [s for s in by_kind(objects, "Service").values() if selector.items() <= s["metadata"]["labels"].items()]
    assert {s["metadata"]["name"] for s in services} == {"driftwatch-monitor", "driftwatch-model-service"}
    for service in services:
        assert port in {p["name"] for p in service["spec"]["ports"]}
    config = by_kind(objects, "ConfigMap")["driftwatch-config"]["data"]
    assert config["OTEL_METRICS_EXPORTER"] == "prometheus"


def test_every_setting_in_the_manifests_is_documented() -> None:
    """A variable the manifests set but the README does not list is a typo or a dead setting."""
    readme = (ROOT / "README.md").read_text()
    names: set[str] = set()
    for overlay in OVERLAY_NAMES:
        for obj in render(overlay):
            if obj["kind"] == "ConfigMap":
                names |= set(obj["data"])
            for deployment in [obj] if obj["kind"] in ("Deployment",) else []:
                for container in containers(deployment):
                    names |= {e["name"] for e in container.get("env", [])}
    driftwatch = {n for n in names if re.match(r"(DRIFTWATCH_|REDIS_URL$)", n)}
    assert driftwatch
    missing = sorted(n for n in driftwatch if f"`{n}`" not in readme)
    assert missing == []


def test_the_kserve_example_logs_to_the_ingest_only_model_service() -> None:
    """The InferenceService's logger URL reaches the rendered model service's /kserve, on a port
    its Service exposes, and that model service serves no model and leaves /kserve without the key;
    the monitor has no default model."""
    from urllib.parse import urlsplit

    objects = render("kserve")
    (service,) = by_kind(objects, "InferenceService").values()
    logger = service["spec"]["predictor"]["logger"]
    assert logger["mode"] == "all"  # the request holds the features, the response the prediction
    url = urlsplit(logger["url"])
    host, _, namespace = (url.hostname or "").partition(".")
    model_service = by_kind(objects, "Service")[host]
    assert namespace.split(".")[0] == model_service["metadata"]["namespace"] and url.path == "/kserve"
    ports = {p["port"]: p["targetPort"] for p in model_service["spec"]["ports"]}
    assert ports[url.port or 80] == "http"
    container = containers(by_kind(objects, "Deployment")[host])[0]
    assert container["args"] == ["driftwatch", "serve", "--ingest-only"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["DRIFTWATCH_PROTECT_KSERVE"] == "false"
    assert "http" in {p["name"] for p in container["ports"]}
    # No model of its own, so the monitor has no default model to list beside the registered ones.
    monitor = containers(by_kind(objects, "Deployment")["driftwatch-monitor"])[0]
    assert {e["name"]: e.get("value") for e in monitor["env"]}["DRIFTWATCH_NO_DEFAULT_MODEL"] == "true"
