"""Delivery: the GitHub workflows and the Cloud Run service descriptions.

Neither GitHub Actions nor Cloud Run can run here, so what can be checked
offline is checked: every workflow against GitHub's workflow schema (with
``check-jsonschema``, as the issue asks; ``actionlint`` cannot be installed
here), the release workflow's promises (multi-arch image, SBOM, provenance,
manifests pinned to the digest), and the Cloud Run services' wiring (VPC
connector, Secret Manager, probes, every variable filled in by the deploy job).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
CLOUDRUN = sorted((ROOT / "deploy" / "cloudrun").glob("*.yaml"))


def check_jsonschema() -> str:
    beside = Path(sys.executable).with_name("check-jsonschema")
    found = str(beside) if beside.exists() else shutil.which("check-jsonschema")
    if found is None:
        pytest.skip("check-jsonschema not installed (dev extra)")
    return found


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def steps(workflow: dict[str, Any], job: str) -> list[dict[str, Any]]:
    return list(workflow["jobs"][job]["steps"])


def test_the_expected_workflows_exist() -> None:
    assert {p.name for p in WORKFLOWS} >= {"ci.yml", "release.yml", "deploy-cloudrun.yml"}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_matches_the_github_schema(path: Path) -> None:
    result = subprocess.run(
        [check_jsonschema(), "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_release_builds_both_architectures_with_sbom_and_provenance() -> None:
    release = load(ROOT / ".github" / "workflows" / "release.yml")
    # PyYAML reads the key `on` as True.
    assert release[True]["push"]["tags"]
    build = next(s for s in steps(release, "image") if s.get("uses", "").startswith("docker/build-push-action"))
    assert set(build["with"]["platforms"].split(",")) == {"linux/amd64", "linux/arm64"}
    assert build["with"]["push"] is True and build["with"]["sbom"] is True
    assert build["with"]["provenance"] == "mode=max"
    assert any(s.get("uses", "").startswith("actions/attest-build-provenance") for s in steps(release, "image"))
    assert release["jobs"]["image"]["permissions"]["packages"] == "write"
    # The published manifests name the image by digest, never by a movable tag.
    render = "\n".join(s.get("run", "") for s in steps(release, "manifests"))
    assert "kustomize edit set image" in render and "digest" in str(release["jobs"]["manifests"])


def test_release_keeps_the_default_token_read_only() -> None:
    release = load(ROOT / ".github" / "workflows" / "release.yml")
    assert release["permissions"] == {"contents": "read"}


def cloudrun_placeholders(text: str) -> set[str]:
    return set(re.findall(r"\$\{([A-Z_]+)\}", text))


def test_deploy_job_fills_in_every_placeholder_of_the_services() -> None:
    deploy = load(ROOT / ".github" / "workflows" / "deploy-cloudrun.yml")
    job = deploy["jobs"]["deploy"]
    substituted = "\n".join(s.get("run", "") for s in job["steps"])
    envsubst_vars = set(re.findall(r"\$\{([A-Z_]+)\}", substituted.split("envsubst", 1)[1].split("<", 1)[0]))
    for path in CLOUDRUN:
        needed = cloudrun_placeholders(path.read_text())
        assert needed, path.name
        assert needed <= envsubst_vars, (path.name, needed - envsubst_vars)
        assert needed <= set(job["env"]), (path.name, needed - set(job["env"]))
    assert deploy[True]["workflow_dispatch"]["inputs"]["version"]["required"] is True
    assert deploy["permissions"]["id-token"] == "write"  # keyless auth, no key in a secret


@pytest.mark.parametrize("path", CLOUDRUN, ids=lambda p: p.name)
def test_cloudrun_service_reaches_memorystore_and_secret_manager(path: Path) -> None:
    service = load(path)
    assert service["apiVersion"] == "serving.knative.dev/v1" and service["kind"] == "Service"
    template = service["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    assert annotations["run.googleapis.com/vpc-access-connector"] == "${VPC_CONNECTOR}"
    assert annotations["run.googleapis.com/vpc-access-egress"] == "private-ranges-only"
    # Both services work between requests (the publisher, the consumer).
    assert annotations["run.googleapis.com/cpu-throttling"] == "false"
    (container,) = template["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    for secret in ("REDIS_URL", "DRIFTWATCH_API_KEY"):
        assert "value" not in env[secret], secret
        assert env[secret]["valueFrom"]["secretKeyRef"]["key"] == "latest"
    assert env["DRIFTWATCH_HOST"]["value"] == "0.0.0.0"
    assert int(env["DRIFTWATCH_PORT"]["value"]) == container["ports"][0]["containerPort"]
    assert container["startupProbe"]["httpGet"]["path"] == "/livez"
    readme = (ROOT / "README.md").read_text()
    undocumented = [n for n in env if n.startswith("DRIFTWATCH_") and f"`{n}`" not in readme]
    assert undocumented == []
