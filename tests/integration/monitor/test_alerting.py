"""A drift episode through the real monitor app: a rule goes pending, fires after
`for`, resolves; a webhook receiver gets exactly one firing and one resolved
notification; a restarted monitor keeps rules and states."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from driftwatch.cli.simulate import Scenario, make_traffic
from monitor.app import create_app
from monitor.monitor_settings import MonitorSettings
from tests.integration.monitor.alerts.receiver import Receiver
from tests.integration.monitor.helpers import publish_predictions, register

WINDOW = 150
RULE = {
    "name": "DriftEpisode",
    "metric": "dataset_drift_share",
    "op": ">",
    "value": 0.1,
    "for": {"windows": 2},
    "labels": {"severity": "warning"},
    "annotations": {"summary": "{{ $value }} of features drifted"},
}


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    with Receiver() as rec:
        monkeypatch.setenv("DRIFTWATCH_ALERT_WEBHOOK_URLS", f"{rec.url}/hook")
        monkeypatch.setenv("DRIFTWATCH_ALERT_LEADER_TTL_S", "2")
        yield rec


async def _wait(check: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def _alert(client: TestClient) -> dict | None:
    alerts = [a for a in client.get("/alerts").json()["alerts"] if a["labels"]["alertname"] == "DriftEpisode"]
    return alerts[0] if alerts else None


async def test_episode_pending_firing_resolved_with_one_notification_each(
    receiver: Receiver, redis_url: str, model_dir: Path, aredis
) -> None:
    _, keys = await register(aredis, model_dir)
    with np.load(model_dir / "holdout.npz") as holdout:
        x, y = holdout["features"], holdout["labels"]
    settings = MonitorSettings(REDIS_URL=redis_url, DRIFTWATCH_WINDOW_SIZE=WINDOW, DRIFTWATCH_READ_BLOCK_MS=50)

    async def send(scenario: Scenario, seed: int) -> None:
        traffic = make_traffic(scenario, x, y, WINDOW, seed)
        await publish_predictions(aredis, keys, traffic.features, traffic.labels)

    with TestClient(create_app(settings, consumer_name="alert-test")) as client:
        assert client.put("/alerts/thresholds", json=[RULE]).status_code == 200
        await send(Scenario.covariate_shift, 1)
        await _wait(lambda: (_alert(client) or {}).get("state") == "pending")
        await send(Scenario.covariate_shift, 2)
        await _wait(lambda: (_alert(client) or {}).get("state") == "firing")
        await _wait(lambda: len(receiver.bodies("/hook")) == 1)

    # A restart keeps the rule and the firing state.
    with TestClient(create_app(settings, consumer_name="alert-test-2")) as client:
        assert [r["name"] for r in client.get("/alerts/thresholds").json()] == ["DriftEpisode"]
        assert _alert(client)["state"] == "firing"
        await send(Scenario.none, 3)
        await _wait(lambda: (_alert(client) or {}).get("state") == "resolved")
        await _wait(lambda: len(receiver.bodies("/hook")) == 2)
        history = client.get("/alerts/history").json()["transitions"]

    firing, resolved = receiver.bodies("/hook")
    assert firing["status"] == "firing" and resolved["status"] == "resolved"
    assert firing["alerts"][0]["labels"]["alertname"] == "DriftEpisode"
    episode = sorted((h for h in history if h["alertname"] == "DriftEpisode"), key=lambda h: h["id"])
    assert [(h["from_state"], h["to_state"]) for h in episode] == [
        ("inactive", "pending"), ("pending", "firing"), ("firing", "resolved")
    ]
    assert [h["window"] for h in episode] == [0, 1, 2]
    # Both monitors stopped with every notification acknowledged: none can be sent again.
    (group,) = await aredis.xinfo_groups(keys.alert_history)
    assert group["pending"] == 0 and group["lag"] == 0
    assert len(receiver.bodies("/hook")) == 2  # exactly one of each


async def test_accuracy_rule_fires_on_the_labels_of_recent_windows(
    receiver: Receiver, redis_url: str, model_dir: Path, aredis
) -> None:
    """Accuracy reaches the rules from the confusion counts of recent windows, once
    enough labels exist: 40 right out of 100 labelled fires a rule at 0.9."""
    from tests.integration.monitor.helpers import holdout_rows, publish_feedback

    _, keys = await register(aredis, model_dir)
    settings = MonitorSettings(REDIS_URL=redis_url, DRIFTWATCH_WINDOW_SIZE=WINDOW, DRIFTWATCH_READ_BLOCK_MS=50)
    rule = {"name": "Accuracy", "metric": "accuracy", "op": "<", "value": 0.9, "min_samples": 100,
            "for": {"windows": 1}}
    with TestClient(create_app(settings, consumer_name="accuracy-test")) as client:
        assert client.put("/alerts/thresholds", json=[rule]).status_code == 200
        x = holdout_rows(model_dir, 2 * WINDOW)
        ids = await publish_predictions(aredis, keys, x[:WINDOW], np.zeros(WINDOW, dtype=np.int64))
        labels = [0] * 40 + [1] * 60  # predicted 0 every time: 40% right
        await publish_feedback(aredis, keys, ids[:100], labels)
        await _wait(lambda: client.get("/performance").json()["labelled"] == 100)
        await publish_predictions(aredis, keys, x[WINDOW:], np.zeros(WINDOW, dtype=np.int64))  # next report
        await _wait(lambda: (_alert_named(client, "Accuracy") or {}).get("state") == "firing")
        assert _alert_named(client, "Accuracy")["value"] == pytest.approx(0.4)


def _alert_named(client: TestClient, name: str) -> dict | None:
    alerts = [a for a in client.get("/alerts").json()["alerts"] if a["labels"]["alertname"] == name]
    return alerts[0] if alerts else None
