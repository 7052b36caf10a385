"""Prometheus and Alertmanager read our files as we mean them: promtool and amtool, the real binaries.

``scripts/install-system-packages.sh`` installs them (Debian's ``prometheus``
and ``prometheus-alertmanager``); a missing binary fails here rather than
skipping, so CI cannot pass without these checks.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
PROMETHEUS = ROOT / "deploy" / "prometheus"
ALERTMANAGER = ROOT / "deploy" / "alertmanager"


def _run(tool: str, *args: str | Path) -> str:
    binary = shutil.which(tool)
    if binary is None:
        pytest.fail(f"{tool} is not installed: run scripts/install-system-packages.sh")
    done = subprocess.run([binary, *map(str, args)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{tool} {' '.join(map(str, args))}:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus.scrape.yml"])
def test_promtool_check_config(config: str) -> None:
    out = _run("promtool", "check", "config", PROMETHEUS / config)
    assert "SUCCESS: 1 rule files found" in out


def test_promtool_check_rules() -> None:
    assert "SUCCESS" in _run("promtool", "check", "rules", PROMETHEUS / "alerts.yml")


def test_promtool_test_rules() -> None:
    assert "SUCCESS" in _run("promtool", "test", "rules", PROMETHEUS / "alerts.test.yml")


def _alert_names() -> set[str]:
    doc = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    return {rule["alert"] for group in doc["groups"] for rule in group["rules"] if "alert" in rule}


def _cases() -> list[dict[str, Any]]:
    doc = yaml.safe_load((PROMETHEUS / "alerts.test.yml").read_text())
    return [case for test in doc["tests"] for case in test.get("alert_rule_test", [])]


def test_every_alert_is_unit_tested_firing_and_silent() -> None:
    """Each alert has a case where it fires and at least two where it must not (boundary, missing data)."""
    fires: dict[str, int] = {}
    silent: dict[str, int] = {}
    for case in _cases():
        counter = fires if case.get("exp_alerts") else silent
        counter[case["alertname"]] = counter.get(case["alertname"], 0) + 1
    names = _alert_names()
    assert names - set(fires) == set(), "alerts never shown firing"
    assert {n for n in names if silent.get(n, 0) < 2} == set(), "alerts without boundary and missing-data cases"
    assert set(fires) | set(silent) <= names, "test cases for alerts that do not exist"


def test_amtool_check_config() -> None:
    out = _run("amtool", "check-config", ALERTMANAGER / "alertmanager.yml")
    assert "SUCCESS" in out and "1 inhibit rules" in out


def test_alertmanager_groups_by_model_and_rule_and_mutes_feature_alerts() -> None:
    """The parts of alertmanager.yml the alert-fatigue design relies on (run for real in test_alertmanager.py)."""
    config = yaml.safe_load((ALERTMANAGER / "alertmanager.yml").read_text())
    assert config["route"]["group_by"] == ["model", "alertname"]
    (inhibit,) = config["inhibit_rules"]
    assert inhibit["target_matchers"] == ['feature=~".+"'] and inhibit["equal"] == ["model"]
    sources = inhibit["source_matchers"][0]
    assert "DatasetDrift" in sources and "DriftwatchDatasetDrift" in sources
