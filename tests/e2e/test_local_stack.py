"""The whole stack as a user runs it: `driftwatch up` (its own redis-server,
model service, monitor as real processes), real HTTP traffic from
`driftwatch simulate`'s scenarios, answers checked against what was sent."""

from __future__ import annotations

import time

import httpx
import numpy as np
import pytest

from driftwatch.cli.simulate import (
    SHIFTED_FEATURES,
    Scenario,
    make_traffic,
    send_feedback,
    send_traffic,
    wait_for_windows,
)
from tests.e2e.conftest import STACK_WINDOW, Stack

pytestmark = pytest.mark.e2e

# Below digits' 360 held-out rows, so a window of unshifted traffic never repeats a row.
WINDOW = STACK_WINDOW


def run_scenario(stack: Stack, scenario: Scenario, seed: int) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """Send one whole window of the scenario (after topping up the window in progress)."""
    with np.load(stack.model_dir / "holdout.npz") as holdout:
        features, labels = holdout["features"], holdout["labels"]
    with httpx.Client(timeout=30) as client:
        progress = client.get(f"{stack.monitor_url}/drift/window").json()
        top_up = (WINDOW - progress["filled"]) % WINDOW
        window = progress["window"] + (1 if top_up else 0)
        if top_up:
            send_traffic(client, stack.model_url, make_traffic(scenario, features, labels, top_up, seed + 100), 100)
        traffic = make_traffic(scenario, features, labels, WINDOW, seed)
        _, predicted = send_traffic(client, stack.model_url, traffic, batch=100)
        reports = wait_for_windows(client, stack.monitor_url, window)
    report = next(r for r in reports if r["window"] == window)
    return [report], predicted, traffic.labels


def test_unshifted_traffic_shows_no_dataset_drift(stack: Stack) -> None:
    [report], _, _ = run_scenario(stack, Scenario.none, seed=1)
    assert report["status"] == "ok"
    assert report["dataset_drift"] is False
    assert report["window_size"] == WINDOW


def test_covariate_shift_flags_the_shifted_features_and_the_dataset(stack: Stack) -> None:
    names = httpx.get(f"{stack.model_url}/model").json()["feature_names"]
    shifted = {names[i] for i in SHIFTED_FEATURES}
    [report], _, _ = run_scenario(stack, Scenario.covariate_shift, seed=2)
    flagged = {f["name"] for f in report["features"] if f["drifted"]}
    assert report["dataset_drift"] is True
    assert flagged <= shifted, f"unshifted features flagged: {flagged - shifted}"
    assert len(flagged) >= 0.75 * len(shifted)


def test_accuracy_from_feedback_equals_accuracy_of_the_labels_sent(stack: Stack) -> None:
    with np.load(stack.model_dir / "holdout.npz") as holdout:
        features, labels = holdout["features"], holdout["labels"]
    with httpx.Client(timeout=30) as client:
        before = client.get(f"{stack.monitor_url}/performance").json()
        traffic = make_traffic(Scenario.none, features, labels, 300, seed=3)
        ids, predicted = send_traffic(client, stack.model_url, traffic, batch=50)
        send_feedback(client, stack.model_url, ids, traffic.labels)
        expected_labelled = before["labelled"] + 300
        deadline = time.monotonic() + 30
        after = before
        while after["labelled"] < expected_labelled and time.monotonic() < deadline:
            time.sleep(0.2)
            after = client.get(f"{stack.monitor_url}/performance").json()
    assert after["labelled"] == expected_labelled
    correct_before = round((before["accuracy"] or 0) * before["labelled"])
    correct_now = round(after["accuracy"] * after["labelled"]) - correct_before
    assert correct_now == int((predicted == traffic.labels).sum())
