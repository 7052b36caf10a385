"""The monitor pushes its alerts into a real Alertmanager (Debian's 0.25) running the shipped configuration.

One drift episode (a covariate shift on digits, then clean traffic) through the
real monitor app: Alertmanager's v2 API shows one active alert per rule and
model with Driftwatch's labels and annotations, the webhook behind it gets one
firing and one resolved notification per group; with per-feature alerts opted
in, the shipped inhibition mutes them while the dataset alert fires.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis.asyncio as aioredis
from fastapi.testclient import TestClient

from driftwatch.cli.simulate import SHIFTED_FEATURES, Scenario, make_traffic
from monitor.app import create_app
from monitor.monitor_settings import MonitorSettings
from tests.integration.monitor.alerts.receiver import Receiver
from tests.integration.monitor.helpers import eventually, publish_predictions, register
from tests.support.prom_stack import Alertmanager

WINDOW = 150
EXTERNAL_URL = "http://monitor.test:8001"


@pytest.fixture
def webhook() -> Iterator[Receiver]:
    with Receiver() as rec:
        yield rec


@pytest.fixture
def alertmanager(tmp_path: Path, webhook: Receiver, monkeypatch: pytest.MonkeyPatch) -> Iterator[Alertmanager]:
    with Alertmanager(tmp_path, f"{webhook.url}/am") as am:
        monkeypatch.setenv("DRIFTWATCH_ALERT_ALERTMANAGER_URL", am.url)
        monkeypatch.setenv("DRIFTWATCH_ALERT_EXTERNAL_URL", EXTERNAL_URL)
        monkeypatch.setenv("DRIFTWATCH_ALERT_LEADER_TTL_S", "2")
        monkeypatch.setenv("DRIFTWATCH_ALERT_RESEND_INTERVAL_S", "1")
        yield am


def _groups(notifications: list[dict[str, Any]], status: str) -> Counter[tuple[str, str]]:
    return Counter(
        (n["groupLabels"]["alertname"], n["groupLabels"]["model"]) for n in notifications if n["status"] == status
    )


async def _episode(
    aredis: aioredis.Redis, redis_url: str, model_dir: Path, am: Alertmanager, webhook: Receiver
) -> tuple[list[dict[str, Any]], TestClient, list[str]]:
    """Three shifted windows (every rule's ``for`` met), then returns Alertmanager's alerts while firing."""
    metadata, keys = await register(aredis, model_dir)
    with np.load(model_dir / "holdout.npz") as holdout:
        x, y = holdout["features"], holdout["labels"]
    settings = MonitorSettings(REDIS_URL=redis_url, DRIFTWATCH_WINDOW_SIZE=WINDOW, DRIFTWATCH_READ_BLOCK_MS=50)
    client = TestClient(create_app(settings, consumer_name="am-test"))
    client.__enter__()
    for seed in (1, 2, 3):
        traffic = make_traffic(Scenario.covariate_shift, x, y, WINDOW, seed, window=WINDOW)
        await publish_predictions(aredis, keys, traffic.features, traffic.labels)
    await eventually(lambda: client.get("/drift").json().get("window") == 2, timeout_s=60)

    def dataset_alert_arrived() -> bool:
        names = {a["labels"]["alertname"] for a in am.alerts()}
        return "DatasetDrift" in names and bool(_groups(webhook.bodies("/am"), "firing"))

    await eventually(dataset_alert_arrived, timeout_s=30)
    return am.alerts(), client, metadata.feature_names


async def _resolve(aredis: aioredis.Redis, model_dir: Path, client: TestClient) -> None:
    keys = (await register(aredis, model_dir))[1]
    with np.load(model_dir / "holdout.npz") as holdout:
        x, y = holdout["features"], holdout["labels"]
    traffic = make_traffic(Scenario.none, x, y, WINDOW, seed=4, window=WINDOW)
    await publish_predictions(aredis, keys, traffic.features, traffic.labels)
    await eventually(lambda: client.get("/drift").json().get("window") == 3, timeout_s=60)


async def test_one_drift_episode_is_one_alert_per_rule_and_model(
    alertmanager: Alertmanager, webhook: Receiver, aredis: aioredis.Redis, redis_url: str, model_dir: Path
) -> None:
    alerts, client, feature_names = await _episode(aredis, redis_url, model_dir, alertmanager, webhook)
    try:
        per_rule = Counter((a["labels"]["alertname"], a["labels"]["model"]) for a in alerts)
        assert per_rule[("DatasetDrift", "digits-mlp")] == 1
        assert set(per_rule.values()) == {1}, per_rule
        assert not any("feature" in a["labels"] for a in alerts)
        (dataset,) = (a for a in alerts if a["labels"]["alertname"] == "DatasetDrift")
        assert dataset["status"]["state"] == "active"
        assert dataset["labels"] == {
            "alertname": "DatasetDrift", "model": "digits-mlp", "model_version": "1", "severity": "warning"
        }
        assert dataset["generatorURL"] == f"{EXTERNAL_URL}/models/digits-mlp/alerts?alertname=DatasetDrift"
        notes = dataset["annotations"]
        assert notes["summary"].startswith("Dataset drift on digits-mlp: ")
        listed = notes["drifted_features"]
        shifted = {feature_names[i] for i in SHIFTED_FEATURES}
        named = {part.split(" (")[0] for part in listed.split(" and ")[0].split(", ")}
        assert named and named <= shifted, listed  # the features the shift moved, with their effect sizes
        assert notes["report_url"].startswith(f"{EXTERNAL_URL}/models/digits-mlp/drift/windows/")
        assert notes["report_url"].endswith("?version=1")  # the link names its version's series
        window = int(notes["report_url"].split("?")[0].rsplit("/", 1)[1])
        report = client.get(notes["report_url"].removeprefix(EXTERNAL_URL)).json()
        assert report["window"] == window and report["dataset_drift"] is True
        assert client.get("/drift/windows/999").status_code == 404

        await _resolve(aredis, model_dir, client)

        def resolved() -> bool:
            return not any(a["labels"]["alertname"] == "DatasetDrift" for a in alertmanager.alerts()) and bool(
                _groups(webhook.bodies("/am"), "resolved")[("DatasetDrift", "digits-mlp")]
            )

        await eventually(resolved, timeout_s=30)
    finally:
        client.__exit__(None, None, None)
    notifications = webhook.bodies("/am")
    firing, resolved_groups = _groups(notifications, "firing"), _groups(notifications, "resolved")
    # One notification when the episode starts, one when it ends, for each rule.
    assert firing[("DatasetDrift", "digits-mlp")] == 1, notifications
    assert set(firing.values()) == {1} and resolved_groups[("DatasetDrift", "digits-mlp")] == 1
    print(f"\ndefault rules: {sum(per_rule.values())} alerts in Alertmanager, {dict(per_rule)};"
          f" {sum(firing.values())} firing notifications")  # fmt: skip


async def test_per_feature_alerts_are_opt_in_and_inhibited_by_the_dataset_alert(
    alertmanager: Alertmanager,
    webhook: Receiver,
    aredis: aioredis.Redis,
    redis_url: str,
    model_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DRIFTWATCH_ALERT_PER_FEATURE", "true")
    _, client, _ = await _episode(aredis, redis_url, model_dir, alertmanager, webhook)
    try:
        await eventually(lambda: any("feature" in a["labels"] for a in alertmanager.alerts()), timeout_s=30)

        def settled() -> list[dict[str, Any]] | None:
            # Inhibition is applied when Alertmanager evaluates; wait until every feature alert shows it.
            alerts = alertmanager.alerts()
            features = [a for a in alerts if "feature" in a["labels"]]
            return alerts if features and all(a["status"]["state"] == "suppressed" for a in features) else None

        seen: list[list[dict[str, Any]]] = []
        await eventually(lambda: seen.append(got) or True if (got := settled()) is not None else False, timeout_s=20)
        alerts = seen[-1]
    finally:
        client.__exit__(None, None, None)
    features = [a for a in alerts if "feature" in a["labels"]]
    (dataset,) = (a for a in alerts if a["labels"]["alertname"] == "DatasetDrift")
    dataset_fp = dataset["fingerprint"]
    assert all(a["labels"]["alertname"] == "FeatureDrift" for a in features)
    assert all(a["status"]["inhibitedBy"] == [dataset_fp] for a in features)
    firing = _groups(webhook.bodies("/am"), "firing")
    assert firing[("DatasetDrift", "digits-mlp")] == 1
    assert firing[("FeatureDrift", "digits-mlp")] == 0, "inhibited feature alerts must not notify"
    print(f"\nper-feature opt-in: {len(alerts)} alerts in Alertmanager ({len(features)} FeatureDrift, all"
          f" inhibited); {sum(firing.values())} firing notifications")  # fmt: skip
